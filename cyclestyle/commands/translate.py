"""``cyclestyle translate``: translate image files, folders and globs into an output folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .evaluate import add_test_mode  # torch-free, shared with evaluate

HELP = "translate images of any size, videos and animated GIFs with a trained generator"
DESCRIPTION = ("Translate image files, videos (.mp4 .m4v .mov .mkv .webm .avi), animated GIFs, folders "
               "(recursively) or globs with a trained generator. Each output keeps its input's exact size "
               "and mirrors its name under --output; a video keeps its frame rate and its audio, copied "
               "untouched, and --stable smooths the translation's statistics across frames against flicker "
               "(videos need PyAV: pip install \"cyclestyle[video]\"). "
               "Large images are translated in tiles whose instance-norm statistics are those of "
               "the whole image, so the result matches a full-frame translation without its memory. "
               "A batch-norm generator (pix2pix's U-Net) runs as the official test.py runs it by default, "
               "each image normalised by its own statistics (--batch-norm running: its --eval), full frame.")
EPILOG = ("examples:\n"
          "  cyclestyle translate --weights runs/monet2photo --direction BtoA --output out/ photos/\n"
          "  cyclestyle translate --weights runs/monet2photo/G_B.safetensors --direction BtoA "
          "--output out/ --tile 512 --overlap 64 scan.tif\n"
          "  cyclestyle translate --weights runs/starry --output out/ photos/        # a style-train run\n"
          "  cyclestyle translate --weights runs/starry --output out/ --style-strength 0.6 --preserve-color photo.jpg\n"
          "  cyclestyle translate --weights runs/monet2photo --direction BtoA --output out/ --stable clip.mp4\n"
          "  cyclestyle translate --weights runs/facades_pix2pix --batch-norm running --output out/ labels/\n"
          "  cyclestyle translate --weights runs/facades_pix2pix --dropout --seed 3 --output out/ labels/")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders or glob patterns")
    p.add_argument("--weights", required=True, metavar="W",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a model hub "
                        "folder or hf://USER/NAME (cyclestyle push)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="AtoB uses G_A (domain A to B), BtoA uses G_B (default: the run's only one, as a "
                        "style-train run's AtoB)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the translated images and clips")
    p.add_argument("--style-strength", type=float, default=1.0, metavar="ALPHA",
                   help="blend the output with the input: ALPHA·output + (1−ALPHA)·input (0 to 1, default 1)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the input's colours (chroma) exactly and take only the output's luminance, as "
                        "cyclestyle gatys --preserve-color")
    p.add_argument("--tile", type=int, metavar="N", help="translate in N×N tiles (default: 1024-px tiles above 1536×1536 pixels; 0: never tile)")
    p.add_argument("--overlap", type=int, metavar="M",
                   help="tile overlap in pixels (default: the generator's receptive field, which keeps tiles exact)")
    p.add_argument("--size", type=int, metavar="S", help="resize so the short side is S pixels first")
    p.add_argument("--batch-size", type=int, default=4,
                   help="images of the same size, or frames of a clip, translated together (default 4)")
    p.add_argument("--stable", action="store_true",
                   help="videos: normalise each frame with instance-norm statistics averaged over the frames before "
                        "it (an exponential moving average) instead of its own alone, against flicker")
    p.add_argument("--stable-smoothing", type=float, default=0.9, metavar="A",
                   help="with --stable: the weight of the past frames' statistics, 0 to 1 (default 0.9, about ten "
                        "frames; smaller follows scene changes sooner, 1 keeps the first frame's for the whole clip)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the generator: its first image pays tens of seconds, later ones run "
                        "faster (about 1.5x on a CPU); auto compiles for 32 or more images (default auto)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocast: faster on GPUs; outputs may differ by a few 8-bit levels (default fp32)")
    add_test_mode(p)


def run(args: argparse.Namespace) -> int:
    """0 when every image and clip was translated or skipped, 1 when any failed, 2 for a bad option
    value or videos without PyAV."""
    started = time.perf_counter()
    for name, value, least in (("--batch-size", args.batch_size, 1), ("--size", args.size, 1),
                               ("--tile", args.tile, 0), ("--overlap", args.overlap, 0)):  # --tile 0: never tile
        if value is not None and value < least:
            print(f"cyclestyle: error: {name} must be at least {least}, got {value}", file=sys.stderr)
            return 2
    if not 0 <= args.style_strength <= 1:
        print(f"cyclestyle: error: --style-strength must be between 0 and 1, got {args.style_strength}", file=sys.stderr)
        return 2
    if not 0 <= args.stable_smoothing <= 1:
        print(f"cyclestyle: error: --stable-smoothing must be between 0 and 1, got {args.stable_smoothing}",
              file=sys.stderr)
        return 2
    from ..inference.files import translate_files
    from ..inference.video import VideoSupportMissing

    try:
        tally = translate_files(
            args.weights, args.inputs, args.output, direction=args.direction, style_strength=args.style_strength,
            preserve_color=args.preserve_color, tile=args.tile, overlap=args.overlap, size=args.size,
            batch_size=args.batch_size, device=args.device, overwrite=args.overwrite, compile=args.compile,
            precision=args.precision, stable=args.stable, stable_smoothing=args.stable_smoothing,
            batch_norm=args.batch_norm, dropout=args.dropout, seed=args.seed)
    except VideoSupportMissing as error:
        print(f"cyclestyle: error: {error}", file=sys.stderr)
        return 2
    print(f"translated {tally.translated}, skipped {tally.skipped}, failed {tally.failed} in "
          f"{time.perf_counter() - started:.1f} s -> {Path(args.output).expanduser()}")
    return 0 if tally.failed == 0 else 1
