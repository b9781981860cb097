"""CUT and FastCUT before and after issue 22, side by side on the demo's data: loss curves and
held-out PSNR.

    python scripts/compare_cut.py --output runs/compare_cut                    # 1500 steps a run (the demo's)
    python scripts/compare_cut.py --output /tmp/cc --steps 20 --n-train 40 --n-test 8   # a smoke check
    python scripts/compare_cut.py --output runs/compare_cut_in --set model.norm=instance \
        --set model.init_gain=0.02 --set model.init_type=xavier     # with the reference's networks

Each method trains on ``configs/demo.yaml`` (the demo's CUT run: its settings, with CUT's encoder
layers fitted to its 4-block generator) in three variants, each from the same seed:

old        the behaviour before issue 22: N(0, gain) initialisation, CycleGAN's stride-2 and
           transposed sampling (the demo's resize_conv up-sampling), random crops throughout
new        the keys left to the method (issue 22): anti-aliased down-sampling in G and D, no
           random crop once the learning rate decays (the demo's resize_conv up-sampling is
           kept, as a config that chose it keeps it). The demo's config pins N(0, 0.05)
           initialisation for its un-normalised networks; CUT's own xavier is
           ``--set model.init_type=xavier`` (with the reference's instance norm and gain 0.02, the
           second example)
reference  new, with CUT's blur up-sampling instead of resize_conv (model.upsample: transpose):
           the reference's generator

It prints, per run: each loss term's mean over the first and the last quarter of the logged
steps, the held-out A→B PSNR against the true paintings at each evaluation (all held-out photos,
every ``--eval-every`` steps and at the end), and the wall time. Timings on a shared machine are
not speed figures. The demo's data is rebuilt under OUTPUT/data unless ``--data-root`` names it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclestyle.demo.data import build_demo_dataset  # noqa: E402
from cyclestyle.training.configure import load_config  # noqa: E402
from cyclestyle.training.loop import train  # noqa: E402

VARIANTS = {
    "old": ["model.init_type=normal", "model.no_antialias=true", "model.no_antialias_up=true",
            "data.decay_no_crop=false"],
    "new": [],
    "reference": ["model.upsample=transpose"],
}
TERMS = ("G_GAN", "NCE", "NCE_Y", "D")
DEMO_CUT_LAYERS = "cut.nce_layers=[0,4,8,12,15]"  # the demo's: docs/demo.md


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, type=Path, help="folder for the data and the six runs")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per run (default: the demo's 1500)")
    parser.add_argument("--eval-every", type=int, default=None, help="steps between held-out evaluations "
                        "(default: a sixth of --steps)")
    parser.add_argument("--data-root", type=Path, help="the demo dataset, if built already")
    parser.add_argument("--n-train", type=int, default=400, help="training images per domain when building the data")
    parser.add_argument("--n-test", type=int, default=40, help="held-out images per domain when building the data")
    parser.add_argument("--methods", nargs="+", default=["cut", "fastcut"], choices=["cut", "fastcut"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override configs/demo.yaml for every run, before the variant's own keys "
                        "(e.g. --set model.norm=instance --set model.init_gain=0.02: the reference's networks)")
    args = parser.parse_args()
    root = args.data_root or build_demo_dataset(args.output / "data", n_train=args.n_train, n_test=args.n_test)
    every = args.eval_every or max(1, args.steps // 6)
    rows = []
    for method in args.methods:
        for variant in args.variants:
            run_dir = args.output / f"{method}_{variant}"
            began = time.perf_counter()
            train(load_config(REPO / "configs" / "demo.yaml", [
                f"method={method}", DEMO_CUT_LAYERS, f"data.root={root}", f"output_dir={run_dir}",
                f"train.max_steps={args.steps}", f"train.checkpoint_every={args.steps}", "log.with=none",
                f"train.log_every={max(1, args.steps // 40)}",
                f"eval.every={every}", f"eval.paired_truth={root / 'truth'}", *args.set, *VARIANTS[variant]]))
            rows.append(summary(method, variant, run_dir, time.perf_counter() - began))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    return 0


def summary(method: str, variant: str, run_dir: Path, seconds: float) -> dict:
    """The run's loss terms over its first and last quarter, and its held-out PSNR curve."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    losses = [r for r in records if "G_GAN" in r]
    quarter = max(1, len(losses) // 4)
    terms = {}
    for term in TERMS:
        values = [r[term] for r in losses if term in r]
        if values:
            terms[term] = (statistics.fmean(values[:quarter]), statistics.fmean(values[-quarter:]))
    psnr = [(r["step"], r["eval"]["AtoB/psnr"]) for r in records if "AtoB/psnr" in r.get("eval", {})]
    config = load_config(run_dir / "config.yaml", check_paths=False).model
    return {"method": method, "variant": variant, "terms": terms, "psnr": psnr, "seconds": round(seconds, 1),
            "model": {k: getattr(config, k) for k in ("init_type", "no_antialias", "no_antialias_up", "upsample")}}


def print_table(rows: list[dict]) -> None:
    print("\nloss terms: mean of the first quarter -> of the last quarter of the logged steps; "
          "held-out A->B PSNR (dB) at each evaluation")
    print(f"{'run':<20} {'G_GAN':>15} {'NCE':>15} {'NCE_Y':>15} {'D':>15}  {'PSNR':<s}")
    for row in rows:
        cells = [f"{row['terms'][t][0]:6.3f}->{row['terms'][t][1]:6.3f}" if t in row["terms"] else "-" for t in TERMS]
        curve = " ".join(f"{v:.2f}" for _, v in row["psnr"])
        print(f"{row['method'] + ' ' + row['variant']:<20} {cells[0]:>15} {cells[1]:>15} {cells[2]:>15} "
              f"{cells[3]:>15}  {curve}   ({row['seconds']} s)")


if __name__ == "__main__":
    sys.exit(main())
