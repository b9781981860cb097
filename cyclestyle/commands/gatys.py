"""``cyclestyle gatys``: neural style transfer by optimisation, image by image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "neural style transfer by optimisation (Gatys et al.), the baseline"
DESCRIPTION = ("Optimise an image so that its VGG19 features match the content image's (relu4_2) "
               "and its Gram matrices match the style images' (relu1_1 … relu5_1), as Gatys, Ecker "
               "and Bethge (2016). Coarse-to-fine over several scales by default.")
EPILOG = ("examples:\n"
          "  cyclestyle gatys --content photo.jpg --style starry_night.jpg --output out.png\n"
          "  cyclestyle gatys --content photos/ --style monet/ --output out/ --size 512   "
          "# a folder of styles: their average Gram matrices (the style of a collection)\n"
          "  cyclestyle gatys --content a.jpg --style s1.jpg s2.jpg --style-weights 0.7,0.3 --output b.png")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--content", nargs="+", required=True, metavar="IMG", help="content image(s) or folder(s)")
    p.add_argument("--style", nargs="+", required=True, metavar="IMG",
                   help="style image(s); a folder stands for the average style of all its images")
    p.add_argument("--style-weights", metavar="W1,W2", help="blend weights of the --style entries (default equal)")
    p.add_argument("--output", required=True, metavar="PATH_or_DIR",
                   help="output file (one content image) or folder (several)")
    p.add_argument("--size", type=int, default=512, metavar="PX", help="long side of the output (default 512)")
    p.add_argument("--steps", type=int, default=500, metavar="N",
                   help="loss evaluations at the final scale (default 500); each coarser scale gets 0.35 of the next")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="default lbfgs, as the paper")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights file (default: torchvision's ImageNet weights from the local cache); "
                        "'random' for tests and offline demos (outputs say so)")
    p.add_argument("--content-weight", type=float, default=1.0, metavar="W", help="content loss weight (default 1)")
    p.add_argument("--style-weight", type=float, default=1e6, metavar="W",
                   help="style loss weight (default 1e6; raise it for a stronger style)")
    p.add_argument("--tv-weight", type=float, default=0.0, metavar="W",
                   help="total-variation weight, against high-frequency noise (default 0)")
    p.add_argument("--pooling", choices=["max", "avg"], default="max",
                   help="VGG pooling: max (as trained, default) or avg (the paper's preference)")
    p.add_argument("--init", choices=["content", "noise", "style"], default="content",
                   help="starting image (default content)")
    p.add_argument("--no-multiscale", action="store_true", help="optimise at the final size only")
    p.add_argument("--preserve-color", action="store_true", help="transfer luminance only, keep the content's colours")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise start (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist (default: skip them)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    """Stylise every --content image and write the results; errors are ``DataError``s."""
    from ..style.gatys import GatysConfig, GatysResult, stylize_files

    try:
        cfg = GatysConfig(
            size=args.size, steps=args.steps, optimizer=args.optimizer, content_weight=args.content_weight,
            style_weight=args.style_weight, tv_weight=args.tv_weight, pooling=args.pooling, init=args.init,
            multiscale=not args.no_multiscale, preserve_color=args.preserve_color, seed=args.seed)
    except ValueError as e:  # the message starts with the field: name the option instead
        field_name, _, rest = str(e).partition(" ")
        print(f"cyclestyle: error: --{field_name.replace('_', '-')} {rest}", file=sys.stderr)
        return 2

    def written(out: Path, result: GatysResult) -> None:
        h, w = result.image.shape[-2:]
        terms = ", ".join(f"{name} {result.losses[name]:.4g}" for name in ("content", "style", "tv"))
        print(f"wrote {out} ({w}×{h}, {result.seconds:.1f} s; loss {result.losses['total']:.4g} = {terms})"
              + (" [random VGG weights: not a real style transfer]" if result.vgg_source == "random" else ""))

    stylize_files(args.content, args.style, args.output, cfg, style_weights=_parse_weights(args.style_weights),
                  vgg_weights=args.vgg_weights, overwrite=args.overwrite, device=args.device, on_written=written)
    return 0


def _parse_weights(text: str | None) -> list[float] | None:
    from ..data import DataError

    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise DataError(f"--style-weights must be comma-separated numbers, e.g. 0.7,0.3; got {text!r}") from None
