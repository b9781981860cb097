"""``cyclestyle evaluate``: measure a trained translator on held-out images."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "measure trained translators on held-out images (FID, KID, cycle L1, PSNR, SSIM)"
DESCRIPTION = ("Translate every held-out image in both directions (testA with G_A, testB with G_B), "
               "reconstruct it, and measure FID and KID against the real held-out images of the target "
               "domain, the cycle-consistency L1, and PSNR/SSIM against ground truth when given. A run on "
               "paired data (pix2pix) is scored against each image's partner, PSNR/SSIM with no flag. Writes "
               "DIR/metrics.json, DIR/index.html and the images under DIR/images/.")
EPILOG = ("examples:\n"
          "  cyclestyle evaluate --weights runs/horse2zebra --data-root data/horse2zebra --output eval/h2z\n"
          "  cyclestyle evaluate --weights runs/demo --data-root data/demo --output eval/demo "
          "--paired-truth data/demo/truth\n"
          "  cyclestyle evaluate --weights runs/facades_pix2pix --data-root data/facades_pix2pix --output eval/facades\n\n"
          "FID/KID need the FID InceptionV3 weights (weights-inception-2015-12-05-6726825d.pth) in\n"
          "torch's hub cache or --inception-weights; without them the other metrics are still computed.")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--weights", required=True, metavar="RUN_OR_CHECKPOINT",
                   help="a run directory, a checkpoints/step-N folder, a model hub folder or hf://USER/NAME "
                        "(both generators are needed)")
    p.add_argument("--data-root", required=True, metavar="ROOT",
                   help="the dataset (ROOT/testA and ROOT/testB, or an HF dataset with a test split)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for metrics.json, index.html and images")
    p.add_argument("--paired-truth", metavar="DIR",
                   help="true translations, matched by file name: DIR/AtoB/ and DIR/BtoA/, or images directly "
                        "in DIR for A→B")
    p.add_argument("--inception-weights", metavar="PATH", help="FID InceptionV3 weights file (default: torch hub cache)")
    add_fid_protocol(p)
    p.add_argument("--size", type=at_least_one, metavar="S",
                   help="resize the short side to S before translating (default: the run's data.crop_size)")
    p.add_argument("--split", help="held-out split name (default: the run's data.test_split, i.e. test)")
    p.add_argument("--data-format", choices=["folder", "hf", "aligned"], help="default: the run's data.format")
    p.add_argument("--limit", type=at_least_one, metavar="N", help="use only the first N images per domain (default: all)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help="torch.compile the generators: the first image pays tens of seconds, later ones run faster "
                        "(about 1.5x on a CPU); auto compiles for 32 or more images per domain (default auto)")
    p.add_argument("--device", default=None, help="cpu, cuda … (default: cuda when available)")
    add_test_mode(p)


def add_test_mode(parser: argparse.ArgumentParser) -> None:
    """``--batch-norm``, ``--dropout`` and ``--seed``: how a generator with batch norm or dropout
    (pix2pix's U-Net) runs at test time; shared with ``translate``."""
    parser.add_argument("--batch-norm", choices=["auto", "image", "running"], default="auto",
                        help="batch-norm generators (pix2pix's U-Net): 'image' normalises by each image's own "
                             "statistics, as the official test.py does by default; 'running' uses the statistics "
                             "learnt in training, as its --eval does; auto: image (default). No effect on "
                             "instance-norm generators")
    parser.add_argument("--dropout", action="store_true",
                        help="keep the generator's dropout on at test time (pix2pix's source of noise, as the "
                             "official test.py without --eval), drawn from --seed")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --dropout's draws (default 0)")


def at_least_one(text: str) -> int:
    """A whole number of 1 or more: a limit of 0 images, or a size of 0 pixels, evaluates nothing."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def add_fid_protocol(parser: argparse.ArgumentParser) -> None:
    """``--fid-protocol``, shared with ``compare``."""
    from ..evaluation.metrics import DEFAULT_FID_PROTOCOL, FID_PROTOCOLS  # torch-free

    parser.add_argument("--fid-protocol", choices=list(FID_PROTOCOLS), default=DEFAULT_FID_PROTOCOL,
                        help="how FID/KID resize images for Inception: clean (clean-fid's, the default) or legacy "
                             "(torch-fidelity's, comparable with pytorch-fid-era tables such as CUT's)")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate

    result = evaluate(
        args.weights, args.data_root, args.output, paired_truth=args.paired_truth,
        inception_weights=args.inception_weights, fid_protocol=args.fid_protocol, size=args.size, split=args.split,
        data_format=args.data_format, limit=args.limit, compile=args.compile, device=args.device,
        batch_norm=args.batch_norm, dropout=args.dropout, seed=args.seed)
    for direction, m in result.directions.items():
        values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in m.to_json().items() if v is not None)
        print(f"{direction}: {values}")
    output = Path(args.output)
    print(f"wrote {output / 'metrics.json'} and {output / 'index.html'} in {result.seconds:.1f} s")
    return 0
