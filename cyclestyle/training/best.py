"""The best generators of a run: which held-out evaluation counts as the best, kept in
``checkpoints/best/`` beside the last weights (published numbers often quote the best evaluation,
while the last weights are what a run ends with), and how a resumed run knows whether an earlier
best was measured as it measures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelerate import Accelerator
from tqdm.auto import tqdm

from ..evaluation.evaluate import HeldOutEvaluator, flat_metrics, is_better, score
from ..run_folder import BEST, read_best
from .checkpoint import write_best
from .files import generator_metadata
from .launch import gather_objects
from .tracking import Tracker

if TYPE_CHECKING:
    from .state import Run


def evaluate_held_out(run: Run) -> None:
    """Evaluate on the held-out subset, log it, and keep the generators if they are the best yet."""
    evaluator, step = run.evaluator, run.progress.step
    translators = run.translators()
    result = evaluator(translators.get("AtoB"), translators.get("BtoA"))
    result.step = step
    record = {"metric": evaluator.metric, "value": score(result, evaluator.metric), "step": step,
              "setting": evaluator.setting, "evaluation": result.to_json()}
    if is_better(record["value"], run.best["value"] if run.best else None, evaluator.metric):
        try:
            write_best(run.checkpoints_dir, {k: g.state_dict() for k, g in run.generator_files().items()}, record,
                       generator_metadata(run.cfg, step))
            run.best = record
        except OSError as e:  # a full disk costs this best, not the run (the previous best is intact)
            tqdm.write(f"warning: could not write {run.checkpoints_dir / BEST} at step {step}: {e.strerror or e}; "
                       "the previous best is kept", file=sys.stderr)
    values = flat_metrics(result)
    with run.log_path.open("a") as f:
        f.write(json.dumps({"step": step, "eval": values}) + "\n")
    logged: dict[str, Any] = {f"eval/{k}": v for k, v in values.items()}
    if run.best is not None:
        logged[f"eval/best_{evaluator.metric}"] = run.best["value"]
    run.tracker.log(logged, step)
    run.last_eval, run.last_metrics = record, {"step": step, **values}


def follow_plateau(run: Run) -> None:
    """``train.lr_policy plateau``: every process feeds the main process's held-out value (just
    measured) to its schedule, so that all lower the rate together. None (not computed) is skipped."""
    mine = run.last_eval["value"] if run.accelerator.is_main_process and run.last_eval else None
    value = gather_objects(run.accelerator, mine)[0]
    if value is not None:
        run.plateau.observe(value)


def previous_best(checkpoints_dir: Path, evaluator: HeldOutEvaluator, accelerator: Accelerator
                   ) -> dict[str, Any] | None:
    """The best evaluation of an earlier part of this run, if its value can be set beside this
    run's: chosen by the same metric, in the same setting (``held_out_setting``: the held-out
    images, the FID protocol and network, the true translations). Otherwise one note says why,
    and the next evaluation replaces it.

    A best written before the setting was recorded has none: nothing shows that it was measured
    as this run measures, and a stale value that no new evaluation can beat (a legacy FID beside
    clean ones) would keep the run's real best from ever being saved, so it counts as not
    comparable too."""
    best = read_best(checkpoints_dir)
    if best is None:
        return None
    if best.get("metric") != evaluator.metric:
        accelerator.print(f"note: {checkpoints_dir / BEST} was chosen by {best.get('metric')}, not eval.metric "
                          f"{evaluator.metric}: the next evaluation replaces it")
        return None
    differs = _setting_differences(best.get("setting"), evaluator.setting)
    if differs:
        accelerator.print(f"note: {checkpoints_dir / BEST / 'metrics.json'} is not comparable with this run's "
                          f"evaluations ({differs}): the next evaluation replaces it")
        return None
    return best


def _setting_differences(recorded: Any, current: dict[str, Any]) -> str:
    """What differs between a best's recorded setting and this run's, as ``key=old (now new)``
    items; empty when nothing does."""
    if not isinstance(recorded, dict):
        return "it records no evaluation setting: written by an older version"
    keys = sorted(recorded.keys() | current.keys())
    return ", ".join(f"{k}={recorded.get(k)} (now {current.get(k)})" for k in keys if recorded.get(k) != current.get(k))


def report_evaluations(last: dict[str, Any], best: dict[str, Any] | None, metric: str, checkpoints_dir: Path,
                        tracker: Tracker) -> None:
    """Both results: the last generators (what the run ends with) and the best (what papers quote)."""
    def fmt(value: float | None) -> str:
        return "not computed" if value is None else f"{value:.4g}"

    line = f"held-out {metric}: last (step {last['step']}) {fmt(last['value'])}"
    if best is not None:
        line += f"; best (step {best['step']}) {fmt(best['value'])}, generators in {checkpoints_dir / BEST}"
        tracker.summarize({f"best/{metric}": best["value"], "best/step": best["step"]})
    print(line)
    tracker.summarize({f"last/{metric}": last["value"], "last/step": last["step"]})
    protocol = last.get("evaluation", {}).get("fid_protocol")
    if protocol:  # which published tables the run's FIDs can be set beside
        tracker.summarize({"eval/fid_protocol": protocol})
