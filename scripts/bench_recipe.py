"""Does the larger-batch recipe keep the held-out quality? Batch 1 against larger batches with
``train.lr_scaling``, for the same number of images.

    python scripts/bench_recipe.py                                   # the demo, batch 1 (3 seeds) and 4 (2 seeds)
    python scripts/bench_recipe.py --batch-sizes 1 4 16 --scaling sqrt linear
    python scripts/bench_recipe.py --config configs/horse2zebra.yaml --images 20000 \\
        --set train.mixed_precision=bf16 --set train.channels_last=true --set train.compile=default

Each run trains ``--config`` (by default the built-in demo, which scores held-out PSNR against
its true paintings) on ``--images`` images: ``--images / batch`` steps, the last half decaying
linearly, the held-out evaluation ``--evals`` times. Batch 1 runs on ``--seeds`` (fp32's
run-to-run spread), each larger batch with each scaling on ``--recipe-seeds``.

Printed per run: learning rate, steps, s/step, images/s (A and B images), the held-out metric at
each evaluation, and how its summed generator loss compares with batch 1 seed 0's, log record by
log record (each the mean over the same number of images): the largest |difference| over the
second half of the run, and the difference of the last quarter's means ("late"), both relative
to batch 1 seed 0's. Then, for each recipe, whether its final metric is within the range of
batch 1's seeds (or better) and its loss within the spread of batch 1's seeds.
Runs are kept under ``--out`` (each with its ``train.log``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.config import ConfigError  # noqa: E402
from cyclestyle.training.configure import load_config  # noqa: E402
from cyclestyle.evaluation import registry  # noqa: E402
from cyclestyle.evaluation.evaluate import split_metric  # noqa: E402


def overrides_for(args: argparse.Namespace, batch: int, scaling: str, seed: int, out: Path) -> list[str]:
    """The run's ``--set`` values: the same images, evaluations and log records per image for every batch."""
    steps = args.images // batch
    return [f"output_dir={out}", f"seed={seed}", f"train.batch_size={batch}", f"train.lr_scaling={scaling}",
            f"train.max_steps={steps}", f"train.decay_steps={steps // 2}", f"eval.every={steps // args.evals}",
            f"train.log_every={args.log_images // batch}", f"train.checkpoint_every={steps}",
            "train.keep_checkpoints=1", "log.with=none", *args.overrides]


def train_run(args: argparse.Namespace, batch: int, scaling: str, seed: int) -> dict:
    """One training run in its own process; its log records, evaluations and figures."""
    out = args.out / f"batch{batch}-{scaling}-seed{seed}"
    if (out / "log.jsonl").exists() and not args.fresh:
        print(f"  (reusing {out})", flush=True)
    else:
        command = [sys.executable, "-m", "cyclestyle", "train", "--config", str(args.config),
                   *sum([["--set", o] for o in overrides_for(args, batch, scaling, seed, out)], [])]
        out.mkdir(parents=True, exist_ok=True)
        with (out / "train.log").open("w") as log:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        if result.returncode != 0:  # the error's last line, not the progress bar's
            lines = (out / "train.log").read_text().replace("\r", "\n").splitlines()
            said = [line for line in lines if line.strip() and not line.startswith("train:")]
            return {"error": said[-1] if said else f"exit status {result.returncode}"}
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r for r in records if "it_per_s" in r]
    evals = [(r["step"] * batch, r["eval"]) for r in records if "eval" in r]
    seconds = statistics.median(1 / r["it_per_s"] for r in losses[1:] or losses)
    return {"lr": losses[0]["lr"], "steps": records[-1]["step"], "s_step": seconds, "images_s": 2 * batch / seconds,
            "generator_loss": [sum(v for k, v in r.items() if k not in ("step", "epoch", "lr", "it_per_s")
                                   and not k.startswith("D")) for r in losses],
            "evals": evals}


def loss_gap(run: dict, reference: dict) -> float:
    """The largest |difference| of the summed generator loss, record by record over the second half
    of the run (the first is a transient that any two seeds differ in most), over the reference's mean."""
    pairs = list(zip(run["generator_loss"], reference["generator_loss"]))
    pairs = pairs[len(pairs) // 2:]
    return max(abs(a - b) for a, b in pairs) / statistics.fmean(b for _, b in pairs)


def late_difference(run: dict, reference: dict) -> float:
    """How far the summed generator loss ends from the reference's: the difference of their means
    over the last quarter of the records, relative to the reference's (positive: higher)."""
    quarter = max(1, len(reference["generator_loss"]) // 4)
    late = [statistics.fmean(r["generator_loss"][-quarter:]) for r in (run, reference)]
    return late[0] / late[1] - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--images", type=int, default=1536, help="images (of each domain) every run trains on")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--scaling", nargs="+", default=["sqrt"], choices=["none", "sqrt", "linear"],
                        help="train.lr_scaling of the larger batches")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="of batch 1: the spread")
    parser.add_argument("--recipe-seeds", type=int, nargs="+", default=[0, 1], help="of each larger batch")
    parser.add_argument("--evals", type=int, default=4, help="held-out evaluations per run")
    parser.add_argument("--log-images", type=int, default=96, help="images per log record")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_recipe")
    parser.add_argument("--fresh", action="store_true", help="retrain runs whose folder is already there")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    for batch in args.batch_sizes:
        if args.images % (batch * args.evals) or args.log_images % batch:
            parser.error(f"--images {args.images} and --log-images {args.log_images} must divide into batch "
                         f"{batch} × {args.evals} evaluations")
    try:
        cfg = load_config(args.config, args.overrides, check_paths=False)
    except ConfigError as e:
        parser.error(str(e))
    if args.config.name == "demo.yaml" and not Path(cfg.data.root).exists():  # built offline in seconds
        from cyclestyle.demo.data import build_demo_dataset
        build_demo_dataset(cfg.data.root)
    metric, higher = cfg.eval.metric, registry.get(split_metric(cfg.eval.metric)[1]).better == "max"

    plan = [(1, "none", seed) for seed in args.seeds]
    plan += [(b, s, seed) for b in args.batch_sizes if b > 1 for s in args.scaling for seed in args.recipe_seeds]
    print(f"{args.config}  {args.images} images per run  {' '.join(args.overrides)}")
    print(f"{'batch':>5s} {'scaling':>7s} {'seed':>4s} {'lr':>8s} {'steps':>6s} {'s/step':>7s} {'images/s':>8s} "
          f"{'loss gap':>8s} {'late':>6s}  {metric} at images …")
    runs: dict[tuple[int, str, int], dict] = {}
    for key in plan:
        run = runs[key] = train_run(args, *key)
        if "error" in run:
            print(f"{key[0]:5d} {key[1]:>7s} {key[2]:4d}  failed: {run['error']}", flush=True)
            continue
        reference = runs.get(plan[0], {})
        compared = "generator_loss" in reference
        gap = loss_gap(run, reference) if compared else float("nan")
        late = late_difference(run, reference) if compared else float("nan")
        scores = "  ".join(f"{images}: {e.get(metric, float('nan')):.4g}" for images, e in run["evals"])
        print(f"{key[0]:5d} {key[1]:>7s} {key[2]:4d} {run['lr']:8.2g} {run['steps']:6d} {run['s_step']:7.3f} "
              f"{run['images_s']:8.2f} {gap:8.1%} {late:+6.1%}  {scores}", flush=True)
    verdicts(runs, plan, metric, higher)


def verdicts(runs: dict, plan: list, metric: str, higher: bool) -> None:
    """Each recipe's final metric and loss trace against batch 1's spread over seeds."""
    ones = [runs[k] for k in plan if k[0] == 1 and "error" not in runs[k]]
    if len(ones) < 2:
        print("verdict: needs two batch-1 seeds for the spread")
        return
    finals = [r["evals"][-1][1][metric] for r in ones]
    spread = max(loss_gap(r, ones[0]) for r in ones[1:])
    late_spread = max(abs(late_difference(r, ones[0])) for r in ones[1:])
    worst = min(finals) if higher else max(finals)
    print(f"batch 1: final {metric} {min(finals):.4g} … {max(finals):.4g}; between seeds: loss gap up to "
          f"{spread:.1%}, late loss within ±{late_spread:.1%}")
    for batch, scaling in dict.fromkeys((b, s) for b, s, _ in plan if b > 1):
        recipe = [runs[k] for k in plan if k[:2] == (batch, scaling) and "error" not in runs[k]]
        if not recipe:
            continue
        values = [r["evals"][-1][1][metric] for r in recipe]
        gap = max(loss_gap(r, ones[0]) for r in recipe)
        late = max((late_difference(r, ones[0]) for r in recipe), key=abs)
        quality = all((v >= worst) if higher else (v <= worst) for v in values)
        speed = statistics.fmean(r["images_s"] for r in recipe) / statistics.fmean(r["images_s"] for r in ones)
        print(f"batch {batch} ({scaling}): final {metric} {', '.join(f'{v:.4g}' for v in values)} "
              f"({'within or beyond' if quality else 'below'} batch 1's range); loss gap {gap:.1%}, late {late:+.1%} "
              f"({'within' if gap <= spread and abs(late) <= late_spread else 'beyond'} batch 1's spread); "
              f"images/s ×{speed:.2f}")


if __name__ == "__main__":
    main()
