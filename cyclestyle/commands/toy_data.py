"""``cyclestyle toy-data``: a small synthetic two-domain dataset, for quick checks."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a small synthetic two-domain dataset (for quick checks, no download)"
DESCRIPTION = ("Write ROOT/{trainA,trainB,testA,testB} of synthetic images: domain A has smooth "
               "shaded shapes, domain B the same kind of scenes posterised and striped like a "
               "print. Deterministic for a given --seed; takes a second. --paired writes pairs for "
               "pix2pix instead (each scene and its print): aligned, ROOT/{train,test} of A|B images side "
               "by side; folders, ROOT/{trainA,trainB,testA,testB} with a pair under one name.")
EPILOG = None
FORMATTER_CLASS = argparse.HelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, metavar="ROOT", help="folder to create")
    parser.add_argument("--n-train", type=int, default=32, help="training images per domain (default 32)")
    parser.add_argument("--n-test", type=int, default=8, help="held-out images per domain (default 8)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paired", choices=["aligned", "folders"],
                        help="write pairs (for pix2pix) in this layout instead of unpaired domains")


def run(args: argparse.Namespace) -> int:
    from ..demo.toy import make_paired_toy_dataset, make_toy_dataset

    if args.paired:
        root = make_paired_toy_dataset(Path(args.output), args.paired, args.n_train, args.n_test, args.size, args.seed)
        print(f"wrote {root}/" + ("{train,test}" if args.paired == "aligned" else "{trainA,trainB,testA,testB}"))
        return 0
    root = make_toy_dataset(Path(args.output), args.n_train, args.n_test, args.size, args.seed)
    print(f"wrote {root}/{{trainA,trainB,testA,testB}}")
    return 0
