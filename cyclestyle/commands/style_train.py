"""``cyclestyle style-train``: ``train`` with the style, the photos and the run folder as options."""

from __future__ import annotations

import argparse
from pathlib import Path

# style-train's default config, beside the package in a source checkout (as the demo's)
FAST_STYLE_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "fast_style.yaml"

HELP = "train a fast style network (Johnson et al. 2016): one network per style, one pass per image"
DESCRIPTION = (
    "Train the feed-forward style network of Johnson, Alahi and Fei-Fei (ECCV 2016), with instance\n"
    "norm, on a collection of photos: its output keeps each photo's content (VGG-16 relu2_2) and\n"
    "takes the style images' Gram matrices (relu1_2, relu2_2, relu3_3, relu4_3). Trained once (the\n"
    "paper: 40k steps of 4 COCO photos at 256 px), it stylises a photo of any size in one forward\n"
    "pass: cyclestyle translate --weights OUTPUT. Same machinery as `cyclestyle train`:\n"
    "checkpoints, --resume, accelerate, the wandb dashboard, OUTPUT/G_A.safetensors at the end.\n\n"
    "--content is a folder of photos (searched recursively; with trainA/ and testA/ inside, those,\n"
    "testA held out for the dashboard's panels) or a Hugging Face dataset (id or local copy; its\n"
    "'image' column, --set data.image_column=… for another).")
EPILOG = (
    "examples:\n"
    "  cyclestyle style-train --style starry_night.jpg --content data/coco/train2014 --output runs/starry\n"
    "  cyclestyle style-train --style starry_night.jpg --content data/coco/train2014 --output runs/starry \\\n"
    "      --resume latest                                   # continue after a stop\n"
    "  cyclestyle style-train --style wave.jpg --content my_photos/ --output runs/wave \\\n"
    "      --set train.max_steps=5000 --set style.style_weight=5e10\n"
    "  accelerate launch --multi_gpu --num_processes 4 -m cyclestyle style-train --style wave.jpg \\\n"
    "      --content data/coco/train2014 --output runs/wave --set train.mixed_precision=bf16\n\n"
    "The losses need torchvision's VGG-16 ImageNet weights (vgg16-397923af.pth) in torch's hub cache\n"
    "(~/.cache/torch/hub/checkpoints/) or --set style.vgg_weights=PATH; --set style.vgg_weights=random\n"
    "runs offline, for tests and demos only (it learns no real style).")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", nargs="+", required=True, metavar="IMG",
                        help="style image(s); several: the network learns their mean Gram matrices")
    parser.add_argument("--content", required=True, metavar="DIR|HF-ID",
                        help="the photos to train on: a folder (recursively) or a Hugging Face dataset id or copy")
    parser.add_argument("--output", required=True, metavar="RUN", help="the run folder (output_dir)")
    parser.add_argument("--config", default=str(FAST_STYLE_CONFIG), metavar="PATH",
                        help="YAML run config (default configs/fast_style.yaml: the paper's settings)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set train.max_steps=5000 (repeatable)")
    parser.add_argument("--resume", metavar="latest|PATH",
                        help="continue a run: 'latest' (the newest checkpoint in --output, or a fresh start if "
                             "there is none) or a checkpoints/step-N folder")


def run(args: argparse.Namespace) -> int:
    """``train`` with the style, the photos and the run folder turned into config overrides."""
    import json

    from ..data import content_format
    from ..training.configure import load_config
    from .train import run_training

    given = ["method=fast_style", f"style.images={json.dumps(args.style)}", f"output_dir={args.output}"]
    split = load_config(args.config, [*given, *args.overrides], check_paths=False).data.train_split
    data = [f"data.format={content_format(args.content, split)}", f"data.root={args.content}"]
    cfg = load_config(args.config, [*given, *data, *args.overrides])
    again = (f"cyclestyle style-train --style {' '.join(args.style)} --content {args.content} --output {args.output}"
             + (f" --config {args.config}" if args.config != str(FAST_STYLE_CONFIG) else "")
             + "".join(f" --set {o}" for o in args.overrides))
    return run_training(cfg, args.resume, again)
