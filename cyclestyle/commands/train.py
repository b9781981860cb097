"""``cyclestyle train``: train a translator from a YAML config."""

from __future__ import annotations

import argparse
import sys

HELP = ("train a translator on two image folders (CycleGAN; CUT, FastCUT, or pix2pix on paired images, "
        "with method:)")
DESCRIPTION = ("Train CycleGAN as the paper does: two ResNet generators and two 70×70 PatchGAN "
               "discriminators with adversarial, cycle-consistency and identity losses. Writes "
               "checkpoints to OUTPUT_DIR/checkpoints/, a loss log to OUTPUT_DIR/log.jsonl and, at "
               "the end, OUTPUT_DIR/G_A.safetensors (A→B) and G_B.safetensors (B→A). The config's "
               "method: key switches to CUT or FastCUT (one generator, A→B: G_A.safetensors only), "
               "with everything else the same.")
EPILOG = """\
examples:
  cyclestyle train --config configs/tiny.yaml --set data.root=data/toy
  cyclestyle train --config configs/monet2photo.yaml --set train.batch_size=4 --set train.lr_scaling=sqrt  # lr ×2
  cyclestyle train --config configs/horse2zebra_fast.yaml          # one GPU: bf16, channels_last, compile
  cyclestyle train --config configs/monet2photo.yaml --resume latest      # continue after a stop
  cyclestyle train --config configs/horse2zebra_cut.yaml                   # CUT (configs/horse2zebra_fastcut.yaml)
  cyclestyle train --config configs/tiny.yaml --init-from runs/tiny --set output_dir=runs/tiny-ft  # fine-tune
  cyclestyle train --config configs/monet2photo.yaml --init-from pretrained:monet2photo --set output_dir=runs/m2p-ft
  cyclestyle train --config configs/monet2photo.yaml --set train.compile=default   # see docs/speed.md
  accelerate launch --multi_gpu --num_processes 4 -m cyclestyle train --config configs/horse2zebra.yaml

Ctrl-C (SIGINT) or SIGTERM finishes the current step (several GPU processes: the steps up to the
next log record), writes a checkpoint and exits; run the same command with --resume latest to
continue exactly where it stopped.

--init-from starts a NEW run (its own output_dir, dashboard run, optimisers and schedule) from
another run's weights: a run or checkpoint folder (generators and discriminators), a generator
file (.safetensors, or an official CycleGAN .pth), a hub folder or hf://USER/NAME, or
pretrained:NAME (an official pretrained model, see `cyclestyle pretrained --list`). One line says
which networks were loaded and which start fresh; the model keys must build the source's shapes.
"""
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="PATH",
                        help="YAML run config, e.g. configs/tiny.yaml (every key: docs/configuration.md)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set train.lr=1e-4 (repeatable)")
    parser.add_argument("--resume", metavar="latest|PATH",
                        help="continue a run: 'latest' (the newest checkpoint in output_dir, or a fresh "
                             "start if there is none) or a checkpoints/step-N folder")
    parser.add_argument("--init-from", metavar="PATH|hf://USER/NAME|pretrained:NAME",
                        help="start a new run from these weights (fine-tuning): a run or checkpoint folder, a "
                             "generator file, a hub folder or id, or an official pretrained model; the config "
                             "key train.init_from")


def run(args: argparse.Namespace) -> int:
    from ..training.configure import load_config

    overrides = [*args.overrides, *([f"train.init_from={args.init_from}"] if args.init_from else [])]
    cfg = load_config(args.config, overrides)
    if args.init_from and args.resume and _resumes_a_checkpoint(cfg, args.resume):
        print(f"cyclestyle: error: --init-from starts a new run, and --resume {args.resume} continues the one in "
              f"{cfg.output_dir} from its own weights: pass one of them (or another output_dir)", file=sys.stderr)
        return 2
    # The resume hint keeps train.init_from as the key (recorded in config.yaml), not as --init-from.
    again = f"cyclestyle train --config {args.config}" + "".join(f" --set {o}" for o in overrides)
    return run_training(cfg, args.resume, again)


def _resumes_a_checkpoint(cfg, resume: str) -> bool:
    """Whether ``--resume`` finds a checkpoint of ``cfg.output_dir`` to go on from."""
    from pathlib import Path

    from ..run_folder import checkpoints_dir, resolve_checkpoint

    return resolve_checkpoint(checkpoints_dir(Path(cfg.output_dir).expanduser()), resume) is not None


def run_training(cfg, resume: str | None, again: str) -> int:
    """Train; a stop by signal prints ``again`` (the command that started it) with --resume latest.
    Shared with ``style-train``."""
    from ..training.launch import LaunchError
    from ..training.loop import NonFiniteLoss, TrainingInterrupted, train

    try:
        train(cfg, resume=resume)
    except TrainingInterrupted as e:
        print(f"cyclestyle: {e}\n  resume with: {again} --resume latest", file=sys.stderr)
        return 128 + e.signum
    except (NonFiniteLoss, LaunchError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    return 0
