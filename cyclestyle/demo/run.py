"""``cyclestyle demo``: the whole toolkit on built-in data, offline, on a CPU, in minutes.

1. data      photos (A) and paintings of other photos (B) built by ``demo_data``; every held-out
             photo has its true painting, so quality is measured, not guessed;
2. train     a small CycleGAN (``configs/demo.yaml``), evaluating itself on the held-out set as it
             goes, then CUT (``method: cut``) with the same config and number of steps, then pix2pix
             (``method: pix2pix``) on the same photos paired with their true paintings
             (``demo_data.write_training_pairs``), same config and steps: what pairs buy; the number
             of steps is what ``--minutes`` leaves once every other stage's cost, measured on this
             machine up front, is counted (``budget.py``), and the plan is printed;
3. evaluate  both directions of CycleGAN, and CUT's and pix2pix's A→B, on every held-out image
             (``cyclestyle evaluate``);
4. compare   identity (do nothing), Gatys (one domain-B painting as style) and CycleGAN on the same
             held-out photos, against the true paintings (``cyclestyle compare``);
5. report    ``report.html``, ``report.png`` (input | CycleGAN | Gatys | truth) and ``metrics.json``,
             also logged to the training run's wandb dashboard (offline without credentials).

Whatever ran with reduced settings (random VGG weights offline, fewer steps to fit the time
budget) is said in the report and in ``metrics.json``'s ``reduced`` list.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from ..config import Config
from ..data import DataError, FolderSource
from ..evaluation import registry, reports
from ..evaluation.compare import run_comparison
from ..evaluation.evaluate import evaluate_translators, write_report
from ..inference.run import open_run
from ..models import generator_spec
from ..style import gatys
from ..run_folder import resolve_checkpoint
from ..training.checkpoint import TrainingState, load_state
from ..training.configure import load_config
from ..training.loop import train
from ..training.tracking import Panel, open_tracker
from .budget import Plan, Rates, Stages, measure_rates, plan_demo
from .data import TRUTH_DIR, check_demo_dataset, ensure_demo_dataset, write_training_pairs

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
TRANSLATORS = ("identity", "gatys", "cyclegan")
SCORES = ("psnr", "ssim")  # the metrics the demo reports per translator (against the true paintings)
REPORT_ROWS = 8  # held-out photos shown in report.png
REPORT_SCALE = 2  # 64 px images are shown at 128 px


@dataclass(frozen=True)
class DemoData:
    """The demo dataset's build arguments (``demo_data.build_demo_dataset``)."""

    size: int = 64
    n_train: int = 400
    n_test: int = 40
    seed: int = 0


@dataclass(frozen=True)
class _Training:
    """What the training stage did: the CycleGAN, CUT and pix2pix configs (steps fitted to the
    budget), the steps the demo config asked for and the speeds that decided between them."""

    cfg: Config
    cut_cfg: Config
    pix2pix_cfg: Config
    steps: int
    planned: int
    steps_per_second: float
    cut_steps_per_second: float
    pix2pix_steps_per_second: float
    plan: Plan


def run_demo(
    output_dir: Path, *, data_dir: Path = Path("data/demo"), minutes: float = 10.0, data: DemoData = DemoData(),
    config_path: Path = DEMO_CONFIG, overrides: Sequence[str] = (), gatys_steps: int = 100,
    gatys_images: int | None = 12, vgg_weights: str | None = None, overwrite: bool = False,
    progress: bool = True, started: float | None = None,
) -> dict[str, Any]:
    """Run the demo into ``output_dir`` and return what ``metrics.json`` holds.

    ``minutes``: the time budget of the whole demo, counted from ``started`` (a
    ``time.perf_counter`` time; default: now; the command passes its process's start, so that
    loading the libraries counts too); training gets what the other stages leave.
    ``overrides``: ``key=value`` changes to the demo config (as ``train --set``).
    ``gatys_images``: how many held-out photos Gatys (and so the three-way comparison) uses;
    None: all of them. Gatys optimises each photo on its own (100 steps at 64 px take about 7 s on
    2 cores), so by default the comparison takes the first 12; the evaluation of CycleGAN alone
    covers every held-out photo.
    """
    start = time.perf_counter() if started is None else started
    output_dir, data_dir = Path(output_dir), Path(data_dir)
    _check_inputs(output_dir, data_dir, data, config_path, overrides, vgg_weights, overwrite)  # before any deletion
    _claim(output_dir, overwrite)
    reduced: list[str] = []
    timings: dict[str, float] = {}
    with _timed(timings, "data"):
        root = _build_data(data_dir, data)
    vgg_weights = _vgg_weights(vgg_weights, reduced)
    with _timed(timings, "train"):
        budget = _Budget(minutes * 60, start, data, gatys_steps, gatys_images, vgg_weights)
        training = _train_to_budget(config_path, overrides, root, output_dir, budget, reduced)
    with _timed(timings, "evaluate"):
        evaluation = _evaluate(output_dir / "run", root, training.cfg, output_dir / "eval", progress)
        cut_evaluation = _evaluate(output_dir / CUT_RUN, root, training.cut_cfg, output_dir / "eval_cut", progress)
        pix2pix_evaluation = _evaluate(output_dir / PIX2PIX_RUN, root, training.pix2pix_cfg,
                                       output_dir / "eval_pix2pix", progress)
    with _timed(timings, "compare"):
        comparison = _compare(output_dir, root, vgg_weights, gatys_steps, gatys_images, progress)
    if gatys_images is not None and gatys_images < data.n_test:
        reduced.append(f"comparison: the first {comparison['n']} of {data.n_test} held-out photos "
                       "(Gatys optimises every photo on its own)")
    _say("5/5", "writing the report")
    result = _result(comparison, {"cyclegan": evaluation, "cut": cut_evaluation, "pix2pix": pix2pix_evaluation},
                     training, config_path, reduced, {**timings, "total": time.perf_counter() - start})
    _write_outputs(output_dir, training.cfg, comparison, result, start)
    _print_summary(result, output_dir)
    return result


# --------------------------------------------------------------------------------------------
# Stages


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """``timings[stage]``: the seconds the ``with`` block took, when it ends without an error."""
    began = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - began


def _build_data(data_dir: Path, data: DemoData) -> Path:
    """1. The photos and their paintings (built once; an existing dataset of these arguments is reused)."""
    _say("1/5", f"building the demo dataset in {data_dir} (photos and their paintings)")
    return ensure_demo_dataset(data_dir, size=data.size, n_train=data.n_train, n_test=data.n_test, seed=data.seed)


@dataclass(frozen=True)
class _Budget:
    """The whole demo's time budget (seconds, from ``start``, a ``time.perf_counter`` time) and
    what sets the cost of the stages after training."""

    seconds: float
    start: float
    data: DemoData
    gatys_steps: int
    gatys_images: int | None
    vgg_weights: str | None

    def stages(self, cfg: Config) -> Stages:
        n_test = self.data.n_test
        return Stages(planned_steps=cfg.train.max_steps, eval_every=cfg.eval.every,
                      eval_images=min(cfg.eval.num_images or n_test, n_test), n_test=n_test,
                      gatys_images=n_test if self.gatys_images is None else min(self.gatys_images, n_test),
                      gatys_steps=self.gatys_steps)


def _train_to_budget(config_path: Path, overrides: Sequence[str], root: Path, output_dir: Path, budget: _Budget,
                     reduced: list[str]) -> _Training:
    """2. Train the demo config as CycleGAN, as CUT, and as pix2pix on the photos paired with their
    paintings, each for as many of its steps as leave every later stage its measured time within
    the budget (``budget.plan_demo``): the same number of steps for all three."""
    demo_overrides = [*overrides, f"data.root={root}", f"eval.paired_truth={root / TRUTH_DIR}"]
    pairs = write_training_pairs(root, output_dir / PAIRS)
    cfg = load_config(config_path, [*demo_overrides, f"output_dir={output_dir / 'run'}"])
    runs = {"CycleGAN": [*demo_overrides, f"output_dir={output_dir / 'run'}"],
            "CUT": [*demo_overrides, *_as_cut(cfg), f"output_dir={output_dir / CUT_RUN}"],
            "pix2pix": [*demo_overrides, *_as_pix2pix(pairs), f"output_dir={output_dir / PIX2PIX_RUN}"]}
    configs = {name: load_config(config_path, sets) for name, sets in runs.items()}
    _say("2/5", "timing training, evaluation and Gatys on this machine")
    rates = measure_rates(configs["CycleGAN"], configs["CUT"], configs["pix2pix"], root, output_dir / "calibration",
                          budget.vgg_weights)
    plan = plan_demo(budget.seconds, time.perf_counter() - budget.start, rates, budget.stages(cfg))
    _say("2/5", plan.describe(rates))
    steps, planned = plan.steps, cfg.train.max_steps
    if steps < planned:
        reduced.append(f"training: {steps} of the config's {planned} steps for CycleGAN, CUT and pix2pix, to fit "
                       f"--minutes {budget.seconds / 60:g} on this machine ({plan.describe(rates)})")
        configs = {name: load_config(config_path, [*sets, f"train.max_steps={steps}"])  # validated again
                   for name, sets in runs.items()}
    speeds = {"CycleGAN": 1 / rates.cyclegan_step, "CUT": 1 / rates.cut_step, "pix2pix": 1 / rates.pix2pix_step}
    for name, config in configs.items():
        _say("2/5", f"training {name} for {steps} steps (about {steps / speeds[name] / 60:.1f} min at "
                    f"{speeds[name]:.2f} steps/s)")
        train(config)
    return _Training(configs["CycleGAN"], configs["CUT"], configs["pix2pix"], steps, planned, speeds["CycleGAN"],
                     speeds["CUT"], speeds["pix2pix"], plan)


def _as_cut(cfg: Config) -> list[str]:
    """The overrides that train the demo config with CUT: its encoder layers 0, 4, 8 and 12 and,
    as the paper's 16 (the fifth residual block), the last of the demo's smaller generator's first
    five blocks."""
    n_blocks = generator_spec(cfg.model).arguments["n_blocks"]
    layers = [0, 4, 8] + sorted({12, 12 + min(4, n_blocks - 1)} if n_blocks else set())
    return ["method=cut", f"cut.nce_layers=[{', '.join(map(str, layers))}]"]


def _as_pix2pix(pairs: Path) -> list[str]:
    """The overrides that train the demo config with pix2pix on ``pairs`` (the photos and their
    true paintings): its own objective (the original GAN loss, L1 × 100), the demo's networks (the
    U-Net needs 128 px sides; the demo's images are 64 px), D conditional on the photo."""
    return ["method=pix2pix", f"data.root={pairs}", "loss.gan_mode=vanilla"]


MARKER = ".cyclestyle-demo"  # left in every output folder the demo made: --overwrite needs it
CUT_RUN = "run_cut"  # CUT's training run, beside CycleGAN's "run"
PIX2PIX_RUN = "run_pix2pix"  # pix2pix's, trained on PAIRS
PAIRS = "pairs"  # the training photos with their true paintings, for pix2pix
WRITTEN = ("calibration", "run", CUT_RUN, PIX2PIX_RUN, PAIRS, "eval", "eval_cut", "eval_pix2pix", "compare",
           "report.png", "report.html", "metrics.json")  # what a demo writes


def _check_inputs(output_dir: Path, data_dir: Path, data: DemoData, config_path: Path, overrides: Sequence[str],
                  vgg_weights: str | None, overwrite: bool) -> None:
    """Everything the demo is given, checked before ``--overwrite`` deletes anything: the config
    and its overrides, the dataset's arguments and folder, the output folder, and that neither
    folder lies inside what the other's writing would replace."""
    if not Path(config_path).is_file():
        raise DataError(f"the demo config {config_path} is missing: run the demo from a clone of the repository "
                        "(installed with pip install -e .)")
    cfg = load_config(config_path, [*overrides, f"output_dir={output_dir / 'run'}"], check_paths=False)
    load_config(config_path, [*overrides, *_as_cut(cfg), f"output_dir={output_dir / CUT_RUN}"], check_paths=False)
    load_config(config_path, [*overrides, *_as_pix2pix(output_dir / PAIRS), f"output_dir={output_dir / PIX2PIX_RUN}"],
                check_paths=False)
    if vgg_weights not in (None, "random") and not Path(vgg_weights).expanduser().is_file():
        raise DataError(f"--vgg-weights {vgg_weights}: no such file (or pass random)")
    data_dir_at = data_dir.resolve()
    for name in WRITTEN:
        if data_dir_at.is_relative_to((output_dir / name).resolve()):
            raise DataError(f"--data-dir {data_dir} is inside {output_dir / name}, which the demo writes "
                            "(and --overwrite removes): choose a --data-dir outside it")
    check_demo_dataset(data_dir, size=data.size, n_train=data.n_train, n_test=data.n_test, seed=data.seed)
    _check_claim(output_dir, overwrite)


def _check_claim(output_dir: Path, overwrite: bool) -> None:
    """Raise unless the demo may write into ``output_dir`` (see ``_claim``)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"--output-dir {output_dir} is a file: choose a folder")
    if output_dir.exists() and any(output_dir.iterdir()):
        if not (output_dir / MARKER).is_file():
            raise DataError(f"--output-dir {output_dir} holds files that a demo did not make: choose another "
                            "folder (or remove it yourself)")
        if not overwrite:
            raise DataError(f"--output-dir {output_dir} already holds a demo: pass --overwrite to replace it, "
                            "or choose another folder")


def _claim(output_dir: Path, overwrite: bool) -> None:
    """Never write over an earlier demo unless asked to, and never over anything else: with
    ``--overwrite`` only what a demo wrote goes, and only from a folder that a demo made (its
    marker file says so). ``--output-dir . --overwrite`` in a project deletes nothing of it."""
    _check_claim(output_dir, overwrite)
    if output_dir.exists() and any(output_dir.iterdir()):
        for name in WRITTEN:
            path = output_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MARKER).write_text("made by `cyclestyle demo`: --overwrite replaces only what the demo wrote\n")


def _evaluate(run_dir: Path, root: Path, cfg: Config, output: Path, progress: bool) -> dict[str, Any]:
    """3. ``cyclestyle evaluate`` on every held-out image, with the true paintings for A→B (A→B
    alone for CUT and pix2pix, which have no B→A generator)."""
    run = open_run(run_dir)
    g_a, g_b = run.generator("AtoB", "cpu"), run.generator("BtoA", "cpu") if "BtoA" in run.files else None
    _say("3/5", f"evaluating {'both generators' if g_b else cfg.method + ' (A→B)'} on every held-out image")
    result = evaluate_translators(g_a, g_b, FolderSource(root / "testA"), FolderSource(root / "testB"),
                                  output=output, size=cfg.data.crop_size, truth_dir=root / TRUTH_DIR,
                                  progress=progress,
                                  extractor_note="FID/KID are left out of the demo (they need Inception weights "
                                                 "and many more images than its 40 to mean much)")
    result.step = cfg.train.max_steps
    write_report(result, output, title="cyclestyle demo: held-out evaluation")
    return result.to_json()


def _vgg_weights(vgg_weights: str | None, reduced: list[str]) -> str | None:
    """The VGG19 weights Gatys uses: random ones (a reduced setting, said so) when asked for or
    when torchvision's ImageNet weights are not on this machine."""
    why = "--vgg-weights random"
    if vgg_weights is None and not gatys.imagenet_weights_path().is_file():
        vgg_weights = "random"
        why = (f"torchvision's ImageNet weights are not on this machine: put {gatys.IMAGENET_WEIGHTS_FILE} at "
               f"{gatys.imagenet_weights_path()} for the real baseline")
    if vgg_weights == "random":
        reduced.append(f"Gatys: random VGG19 weights ({why}); its outputs are not real style transfers")
    return vgg_weights


def _compare(output_dir: Path, root: Path, vgg_weights: str | None, gatys_steps: int, gatys_images: int | None,
             progress: bool) -> dict[str, Any]:
    """4. Identity, Gatys (the first domain-B training painting as style) and CycleGAN on the same
    held-out photos, against the true paintings (``cyclestyle compare``)."""
    style = sorted((root / "trainB").glob("*.png"))[0]
    _say("4/5", f"comparing with Gatys ({gatys_steps} steps per photo, style {style.name}) and doing nothing")
    return run_comparison(output_dir / "run", root, output_dir / "compare", style=[style], limit=gatys_images,
                          paired_truth=root / TRUTH_DIR, vgg_weights=vgg_weights, gatys_steps=gatys_steps,
                          device="cpu", progress=progress)


def _result(comparison: dict[str, Any], evaluations: dict[str, dict[str, Any]], training: _Training,
            config_path: Path, reduced: list[str], seconds: dict[str, float]) -> dict[str, Any]:
    """What ``metrics.json`` holds: the three translators' scores and speed on the compared photos,
    the verdict, the evaluation of every held-out image, CycleGAN against CUT, and both against
    pix2pix trained on pairs, on all of them (A→B, the same steps), and what ran reduced."""
    evaluation, cut_evaluation, pix2pix_evaluation = (evaluations[k] for k in ("cyclegan", "cut", "pix2pix"))
    methods = {"identity": "identity", "gatys": "gatys-style", "cyclegan": "cyclegan"}
    scores = {key: {name: comparison["methods"][method][key] for name, method in methods.items()}
              for key in SCORES}
    return {
        **scores,
        "n_images": comparison["n"],
        "cyclegan_beats_both": all(scores["psnr"]["cyclegan"] > scores["psnr"][other] for other in ("identity", "gatys")),
        "seconds_per_image": {name: comparison["methods"][method]["seconds_per_image"] for name, method in methods.items()},
        "held_out": evaluation,
        "training": {"steps": training.steps, "config_steps": training.planned,
                     "steps_per_second": training.steps_per_second, "config": str(config_path),
                     "plan": {"budget": training.plan.budget, "seconds": training.plan.seconds}},
        "cut": {"held_out": cut_evaluation, "steps": training.steps, "steps_per_second": training.cut_steps_per_second,
                "nce_layers": training.cut_cfg.sections["cut"]["nce_layers"]},
        "cyclegan_vs_cut": {key: {"cyclegan": evaluation["AtoB"][key], "cut": cut_evaluation["AtoB"][key]}
                            for key in SCORES},
        "pix2pix": {"held_out": pix2pix_evaluation, "steps": training.steps,
                    "steps_per_second": training.pix2pix_steps_per_second,
                    "gan_mode": training.pix2pix_cfg.loss.gan_mode},
        "unpaired_vs_paired": {key: {name: evaluations[name]["AtoB"][key] for name in ("cyclegan", "cut", "pix2pix")}
                               for key in SCORES},
        "vgg_weights": comparison["vgg_weights"],
        "reduced": reduced,
        "notes": comparison["notes"],
        "seconds": seconds,
    }


def _write_outputs(output_dir: Path, cfg: Config, comparison: dict[str, Any], result: dict[str, Any],
                   start: float) -> None:
    """5. report.png, metrics.json and report.html, and the same on the training run's dashboard;
    metrics.json is written again at the end with the total time."""
    write_report_png(output_dir / "compare", comparison, output_dir / "report.png")
    (output_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    reports.write_page(output_dir / "report.html", "cyclestyle demo: photos → paintings", report_blocks(result))
    _log_to_dashboard(cfg, output_dir / "run", result, output_dir / "report.png")
    result["seconds"]["total"] = time.perf_counter() - start
    (output_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Report


def write_report_png(compare_dir: Path, comparison: dict[str, Any], path: Path) -> Path:
    """The first held-out photos, one per row: input | CycleGAN | Gatys | true painting, enlarged,
    under a row of column titles."""
    columns = [("input", "photo"), ("cyclegan", "CycleGAN"), ("gatys-style", "Gatys"), ("truth", "true painting")]
    rows = [[compare_dir / "images" / folder / f"{name}.png" for folder, _ in columns]
            for name in comparison["images"][:REPORT_ROWS]]
    return reports.write_grid(path, rows, titles=[title for _, title in columns], scale=REPORT_SCALE)


def report_blocks(result: dict[str, Any]) -> list[reports.Block]:
    """report.html: the three translators on the compared photos, the verdict and picture, what
    was reduced, the evaluation of every held-out image, the notes and the time taken."""
    translators = {name: {**{key: result[key][name] for key in SCORES},
                          "seconds_per_image": result["seconds_per_image"][name]} for name in TRANSLATORS}
    scores = reports.metric_columns(registry.get(key) for key in SCORES)
    verdict = ("CycleGAN beats both doing nothing and Gatys on PSNR." if result["cyclegan_beats_both"] else
               "CycleGAN does NOT beat both baselines on PSNR: the demo's training was not good enough.")
    held_out = {direction: result["held_out"][direction] for direction in ("AtoB", "BtoA")}
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items())
    return [
        reports.Paragraph(f"A CycleGAN trained for {result['training']['steps']} steps on unpaired photos and "
                          f"paintings, judged on {result['n_images']} held-out photos against their true "
                          "paintings, next to doing nothing and Gatys et al.'s neural style transfer (one "
                          "domain-B painting as style)."),
        reports.metrics_table("translator", translators, [*scores, ("seconds_per_image", "s / image")]),
        reports.Paragraph(verdict, strong=True),
        reports.Picture("report.png", "input | CycleGAN | Gatys | truth"),
        reports.Heading("Reduced settings"),
        reports.Notes(tuple(result["reduced"]), empty="none"),
        reports.Heading("All held-out images"),
        reports.metrics_table("direction", held_out,
                              [("n", "n"), *reports.metric_columns(registry.registered())]),
        reports.Heading("CycleGAN and CUT, and pix2pix on pairs"),
        reports.Paragraph(f"The same config and {result['training']['steps']} steps trained with CUT (Park et al. "
                          "2020: one generator, PatchNCE instead of a cycle), and with pix2pix (Isola et al. 2017: "
                          "one generator and L1 against the true painting) on the same training photos paired "
                          "with their true paintings, which the other two never see; A→B on every held-out "
                          f"photo. {_cut_verdict(result)} {_pix2pix_verdict(result)}"),
        reports.metrics_table("translator", _cyclegan_vs_cut(result),
                              [("n", "n"), *reports.metric_columns(registry.get(key) for key in SCORES),
                               ("steps_per_second", "timing run, steps / s")]),
        reports.Paragraph("Pages:", links=(("evaluation", "eval/index.html"),
                                           ("CUT's evaluation", "eval_cut/index.html"),
                                           ("pix2pix's evaluation", "eval_pix2pix/index.html"),
                                           ("comparison", "compare/index.html"))),
        reports.Paragraph("Training log run/log.jsonl; best generators run/checkpoints/best/."),
        reports.Heading("Notes"),
        reports.Notes(tuple(result["notes"]), empty="none"),
        reports.Paragraph(f"Time: {seconds}."),
    ]


def _cyclegan_vs_cut(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of the CycleGAN, CUT and pix2pix table: A→B on every held-out photo, and training speed."""
    runs = {"CycleGAN": (result["held_out"], result["training"]), "CUT": (result["cut"]["held_out"], result["cut"]),
            "pix2pix": (result["pix2pix"]["held_out"], result["pix2pix"])}
    return {name: {"n": held_out["AtoB"]["n"], **{key: held_out["AtoB"][key] for key in SCORES},
                   "steps_per_second": training["steps_per_second"]} for name, (held_out, training) in runs.items()}


def _cut_verdict(result: dict[str, Any]) -> str:
    psnr = result["cyclegan_vs_cut"]["psnr"]
    if psnr["cut"] is None or psnr["cyclegan"] is None:
        return "PSNR was not computed for both."
    better = "CUT" if psnr["cut"] > psnr["cyclegan"] else "CycleGAN"
    return f"{better} scores higher on PSNR ({psnr['cyclegan']:.2f} dB CycleGAN, {psnr['cut']:.2f} dB CUT)."


def _pix2pix_verdict(result: dict[str, Any]) -> str:
    psnr = result["unpaired_vs_paired"]["psnr"]
    if any(value is None for value in psnr.values()):
        return ""
    unpaired = max(psnr["cyclegan"], psnr["cut"])
    gap = psnr["pix2pix"] - unpaired
    return (f"Pairs {'buy' if gap > 0 else 'do not buy'} {abs(gap):.2f} dB here: pix2pix {psnr['pix2pix']:.2f} dB "
            f"against {unpaired:.2f} dB for the better of the unpaired two.")


def _log_to_dashboard(cfg: Config, run_dir: Path, result: dict[str, Any], report_png: Path) -> None:
    """Add the demo's results and picture to the training run's wandb run (the same run id)."""
    checkpoint = resolve_checkpoint(run_dir / "checkpoints", "latest")
    run_id = TrainingState.from_dict(load_state(checkpoint / "training_state.pt")).wandb_run_id if checkpoint else None
    if run_id is None:  # the dashboard was off
        return
    with open_tracker(cfg, run_dir, is_main=True, resume_id=run_id) as tracker:
        with Image.open(report_png) as img:
            picture = Panel(img.copy(), "held-out photos: input | CycleGAN | Gatys | true painting")
        values = {f"demo/{key}/{name}": value for key in SCORES
                  for name, value in result[key].items() if value is not None}
        values |= {f"demo/all_held_out/{key}/{name}": value for key, row in result["unpaired_vs_paired"].items()
                   for name, value in row.items() if value is not None}  # A→B, every held-out photo
        tracker.log({**values, "demo/report": picture}, result["training"]["steps"])
        tracker.summarize({**values, "demo/cyclegan_beats_both": result["cyclegan_beats_both"]})


def _print_summary(result: dict[str, Any], output_dir: Path) -> None:
    print(f"\nheld-out PSNR and SSIM against the true paintings ({result['n_images']} photos):")
    for name in TRANSLATORS:
        psnr, ssim = result["psnr"][name], result["ssim"][name]
        print(f"  {name:<9} {psnr:6.2f} dB   SSIM {ssim:.3f}")
    if result["cyclegan_beats_both"]:
        print("CycleGAN beats both doing nothing and Gatys on PSNR.")
    else:
        print("warning: CycleGAN does not beat both baselines on PSNR", file=sys.stderr)
    held_out = _cyclegan_vs_cut(result)
    print(f"A→B on all {held_out['CUT']['n']} held-out photos, {result['training']['steps']} training steps each:")
    for name, row in held_out.items():
        print(f"  {name:<9} {row['psnr']:6.2f} dB   SSIM {row['ssim']:.3f}   {row['steps_per_second']:.1f} steps/s")
    if _pix2pix_verdict(result):
        print(_pix2pix_verdict(result))
    for line in result["reduced"]:
        print(f"reduced: {line}")
    print(f"wrote {output_dir / 'report.html'}, {output_dir / 'report.png'} and {output_dir / 'metrics.json'} "
          f"in {result['seconds']['total'] / 60:.1f} min")


def _say(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", flush=True)
