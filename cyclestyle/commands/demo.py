"""``cyclestyle demo``: the whole toolkit on built-in data, offline, on a CPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("the whole toolkit on built-in data, offline, on a CPU: train CycleGAN, CUT and pix2pix, "
        "evaluate, compare with Gatys")
DESCRIPTION = (
    "Build the demo dataset (photos, and paintings of other photos made by a renderer in this\n"
    "project, so every held-out photo has its true painting), train a small CycleGAN on it within\n"
    "the time budget, evaluate it on every held-out image, run the Gatys baseline and the identity\n"
    "(doing nothing) on the same photos, and write OUTPUT_DIR/report.html, report.png\n"
    "(photo | CycleGAN | Gatys | true painting) and metrics.json (PSNR and SSIM against the true\n"
    "paintings for identity, gatys and cyclegan). Then CUT learns the same mapping with the same\n"
    "budget, and both are scored A→B on every held-out photo. The training runs are logged to\n"
    "wandb (offline without credentials). No GPU, no network and no dataset of your own are needed.")
EPILOG = ("examples:\n"
          "  cyclestyle demo                                   # about 4 minutes on a 2-core Zen 5 CPU\n"
          "  cyclestyle demo --minutes 5 --output-dir runs/demo-short --overwrite\n"
          "  cyclestyle demo --set model.ngf=32                # change the demo config (configs/demo.yaml)")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--output-dir", default="runs/demo", metavar="DIR", help="where everything goes (default runs/demo)")
    p.add_argument("--data-dir", default="data/demo", metavar="DIR",
                   help="where the demo dataset is built, or reused if already there (default data/demo)")
    p.add_argument("--minutes", type=float, default=10.0, metavar="N",
                   help="time budget of the whole demo; training gets what the rest leaves (default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --output-dir")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of configs/demo.yaml (repeatable)")
    p.add_argument("--gatys-steps", type=int, default=100, metavar="N", help="Gatys iterations per photo (default 100)")
    p.add_argument("--gatys-images", type=int, default=12, metavar="N",
                   help="compare the three translators on the first N held-out photos (default 12; Gatys "
                        "optimises each photo on its own); CycleGAN is also evaluated on all of them")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights for Gatys (default: the ImageNet weights if cached, else random, "
                        "which the report says)")
    small = p.add_argument_group("dataset size (for quick checks)")
    small.add_argument("--image-size", type=int, default=64, metavar="PX", help="image side (default 64)")
    small.add_argument("--n-train", type=int, default=400, metavar="N", help="training images per domain (default 400)")
    small.add_argument("--n-test", type=int, default=40, metavar="N", help="held-out images per domain (default 40)")


def run(args: argparse.Namespace) -> int:
    from ..demo.run import DemoData, run_demo
    from ..training.loop import TrainingInterrupted

    data = DemoData(size=args.image_size, n_train=args.n_train, n_test=args.n_test)
    again = f"cyclestyle demo --output-dir {args.output_dir} --overwrite"
    try:
        run_demo(Path(args.output_dir), data_dir=Path(args.data_dir), minutes=args.minutes, data=data,
                 overrides=args.overrides, gatys_steps=args.gatys_steps, gatys_images=args.gatys_images,
                 vgg_weights=args.vgg_weights, overwrite=args.overwrite,
                 started=getattr(args, "began", None))  # --minutes counts loading torch too
    except TrainingInterrupted as e:
        print(f"cyclestyle: demo stopped: {e}; start it again with: {again}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print(f"cyclestyle: demo stopped by Ctrl-C; start it again with: {again}", file=sys.stderr)
        return 130
    return 0

