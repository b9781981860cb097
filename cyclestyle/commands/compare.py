"""``cyclestyle compare``: a trained translator (CycleGAN, CUT, pix2pix …) next to Gatys (and a fast
style network) on the same images."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .evaluate import add_fid_protocol, at_least_one

HELP = ("a trained translator (CycleGAN, CUT, pix2pix …) next to Gatys (and a fast style network) on the "
        "same held-out images: time, memory, quality")
DESCRIPTION = (
    "Translate the held-out images of one domain (testA for AtoB) with any trained translation run\n"
    "(CycleGAN, CUT or FastCUT, pix2pix, or a lone generator file) and with Gatys neural style\n"
    "transfer, at the same size, and report per method: seconds and peak memory per image, FID/KID\n"
    "against the real held-out images of the target domain, and PSNR/SSIM against the true\n"
    "translation when there is one (then also for the identity, output = input, the do-nothing\n"
    "baseline): files given with --paired-truth, or on paired data (pix2pix's) each image's partner.\n\n"
    "--direction picks the run's generator: both ways for CycleGAN (AtoB by default), A→B only for\n"
    "CUT, the way a pix2pix run was trained (its only way, the default); a way the run does\n"
    "not translate is refused in one line naming those it does. The run's row is named by the method\n"
    "that trained it: cyclegan, cut, fastcut, pix2pix (translator for a file without a config).\n\n"
    "Gatys's style is one or more chosen paintings (--style) and/or the average style of the first\n"
    "K training images of the target domain (--collection K); with neither, --collection 8.\n"
    "--fast-style RUN adds a fast feed-forward style network (cyclestyle style-train) on the same images.\n"
    "Writes DIR/comparison.json, DIR/index.html, DIR/grid.png (one row per image, columns titled:\n"
    "input | cyclegan (or cut, pix2pix …) | gatys-… | truth) and every image under DIR/images/.")
EPILOG = (
    "examples:\n"
    "  cyclestyle toy-data --output data/toy                # a small dataset, then a tiny run on it\n"
    "  cyclestyle train --config configs/tiny.yaml\n"
    "  cyclestyle compare --weights runs/tiny --data-root data/toy --output compare/tiny \\\n"
    "      --vgg-weights random --gatys-steps 20            # offline: Gatys with an untrained VGG19\n"
    "  cyclestyle compare --weights runs/monet2photo --data-root data/monet2photo --direction BtoA \\\n"
    "      --output compare/monet --style paintings/water-lilies.jpg --collection 16 --limit 20\n"
    "  cyclestyle compare --weights runs/monet2photo --data-root data/monet2photo --direction BtoA \\\n"
    "      --output compare/three --style water-lilies.jpg --fast-style runs/water-lilies   # all three\n"
    "  cyclestyle compare --weights runs/horse2zebra_cut --data-root data/horse2zebra --output compare/cut\n"
    "  cyclestyle compare --weights runs/facades_pix2pix --data-root data/facades_pix2pix --direction BtoA \\\n"
    "      --output compare/facades        # a pix2pix run trained BtoA; PSNR/SSIM against the pairs\n\n"
    "Gatys needs torchvision's VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) in torch's hub cache or\n"
    "--vgg-weights PATH; --vgg-weights random runs offline, but its outputs are not real style\n"
    "transfers (the report says so). FID/KID need the FID InceptionV3 weights\n"
    "(weights-inception-2015-12-05-6726825d.pth) in the same cache or --inception-weights; without\n"
    "them the other metrics are still computed.")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--weights", required=True, metavar="RUN",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a model hub "
                        "folder or hf://USER/NAME")
    p.add_argument("--data-root", required=True, metavar="ROOT",
                   help="the dataset, in the run's data.format: ROOT/testA (held-out inputs), ROOT/testB and "
                        "ROOT/trainB for AtoB; ROOT/test and ROOT/train of A|B pairs for aligned data")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the report and images")
    p.add_argument("--direction", choices=["AtoB", "BtoA"],
                   help="AtoB: testA through the run's A→B generator (G_A, or a pix2pix run's G), styles from "
                        "domain B; BtoA the other way (default: AtoB, or a one-way run's only way)")
    p.add_argument("--style", nargs="+", metavar="IMG",
                   help="style image(s) for the gatys-style variant, blended equally (a folder: its average style)")
    p.add_argument("--fast-style", metavar="RUN",
                   help="a style-train run (fast feed-forward style network): a fast-style row on the same images")
    p.add_argument("--collection", type=at_least_one, metavar="K",
                   help="the gatys-collection variant: the average style of the first K training images of the "
                        "target domain, in sorted order (default 8 when no --style is given)")
    p.add_argument("--limit", type=at_least_one, metavar="N", help="use only the first N held-out images (default: all)")
    p.add_argument("--paired-truth", metavar="DIR",
                   help="true translations, matched by file name: DIR/AtoB/ and DIR/BtoA/, or images directly "
                        "in DIR for A→B")
    p.add_argument("--size", type=at_least_one, metavar="S",
                   help="resize the short side to S before translating (default: the run's data.crop_size)")
    p.add_argument("--gatys-steps", type=at_least_one, default=300, metavar="N",
                   help="Gatys optimiser iterations per image (default 300)")
    p.add_argument("--vgg-weights", metavar="PATH|random",
                   help="VGG19 weights file (default: torchvision's ImageNet weights from the local cache); "
                        "'random' for tests and offline demos (the report says so)")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="FID InceptionV3 weights file (default: torch hub cache)")
    add_fid_protocol(p)
    p.add_argument("--seed", type=int, default=0, help="Gatys's seed (default 0)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    from ..evaluation import reports
    from ..evaluation.compare import COST_COLUMNS, DirectionUnavailable, quality_metrics, run_comparison

    output = Path(args.output)
    start = time.perf_counter()
    try:
        result = run_comparison(
            Path(args.weights), Path(args.data_root), output, direction=args.direction, style=args.style or (),
            collection=args.collection, limit=args.limit,
            paired_truth=Path(args.paired_truth) if args.paired_truth else None, size=args.size,
            vgg_weights=args.vgg_weights, inception_weights=args.inception_weights, gatys_steps=args.gatys_steps,
            seed=args.seed, device=args.device, fid_protocol=args.fid_protocol,
            fast_style=Path(args.fast_style) if args.fast_style else None)
    except DirectionUnavailable as e:  # a usage error: the option asked for what the run cannot do
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 2
    keys = [*COST_COLUMNS, *reports.metric_columns(quality_metrics())]
    print(f"{'method':<18}{'n':>5}" + "".join(f"{label:>10}" for _, label in keys))
    for name, m in result["methods"].items():
        print(f"{name:<18}{m['n']:>5}" + "".join(f"{reports.fmt(m.get(k)):>10}" for k, _ in keys))
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"wrote {output / 'comparison.json'}, {output / 'index.html'} and {output / 'grid.png'} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0
