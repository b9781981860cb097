"""The ``cyclestyle`` command line: one program, one subcommand per job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EPILOG_TRAIN = """\
examples:
  cyclestyle train --config configs/tiny.yaml --set data.root=data/toy
  cyclestyle train --config configs/monet2photo.yaml --set train.batch_size=4 --set output_dir=runs/monet
  cyclestyle train --config configs/monet2photo.yaml --resume latest      # continue after a stop
  accelerate launch --multi_gpu --num_processes 4 -m cyclestyle train --config configs/horse2zebra.yaml

Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and exits; run the same
command with --resume latest to continue exactly where it stopped.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cyclestyle",
        description="Unpaired image-to-image translation with CycleGAN (Zhu et al. 2017).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train", help="train two generators (A→B and B→A) on two unpaired image folders",
        description="Train CycleGAN as the paper does: two ResNet generators and two 70×70 PatchGAN "
                    "discriminators with adversarial, cycle-consistency and identity losses. Writes "
                    "checkpoints to OUTPUT_DIR/checkpoints/, a loss log to OUTPUT_DIR/log.jsonl and, at "
                    "the end, OUTPUT_DIR/G_A.safetensors (A→B) and G_B.safetensors (B→A).",
        epilog=EPILOG_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", required=True, metavar="PATH",
                       help="YAML run config, e.g. configs/tiny.yaml (see the README's configuration reference)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config value, e.g. --set train.lr=1e-4 (repeatable)")
    train.add_argument("--resume", metavar="latest|PATH",
                       help="continue a run: 'latest' (the newest checkpoint in output_dir, or a fresh "
                            "start if there is none) or a checkpoints/step-N folder")

    toy = sub.add_parser(
        "toy-data", help="write a small synthetic two-domain dataset (for quick checks, no download)",
        description="Write ROOT/{trainA,trainB,testA,testB} of synthetic images: domain A has smooth "
                    "shaded shapes, domain B the same kind of scenes posterised and striped like a "
                    "print. Deterministic for a given --seed; takes a second.")
    toy.add_argument("--output", required=True, metavar="ROOT", help="folder to create")
    toy.add_argument("--n-train", type=int, default=32, help="training images per domain (default 32)")
    toy.add_argument("--n-test", type=int, default=8, help="held-out images per domain (default 8)")
    toy.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    toy.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so that --help answers without loading torch.
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "toy-data":
            from .toydata import make_toy_dataset

            root = make_toy_dataset(Path(args.output), args.n_train, args.n_test, args.size, args.seed)
            print(f"wrote {root}/{{trainA,trainB,testA,testB}}")
            return 0
    except ConfigError as e:
        print(f"cyclestyle: config error: {e}", file=sys.stderr)
        return 2
    except (DataError, CheckpointError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import LaunchError, NonFiniteLoss, TrainingInterrupted, train

    cfg = load_config(args.config, args.overrides)
    try:
        train(cfg, resume=args.resume)
    except TrainingInterrupted as e:
        print(f"cyclestyle: {e}\n  resume with: cyclestyle train --config {args.config}"
              + "".join(f" --set {o}" for o in args.overrides) + " --resume latest", file=sys.stderr)
        return 128 + e.signum
    except (NonFiniteLoss, LaunchError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
