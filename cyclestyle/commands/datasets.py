"""``cyclestyle datasets``: the official CycleGAN and pix2pix datasets, listed and fetched."""

from __future__ import annotations

import argparse
import sys

from ..interop.datasets import HOST_VARIABLE, OFFICIAL_HOST  # torch-free

HELP = "list and download the official CycleGAN and pix2pix datasets (horse2zebra, facades …)"
DESCRIPTION = (
    "The datasets of the official CycleGAN and pix2pix download scripts, from their host\n"
    f"({OFFICIAL_HOST}), unpacked where `cyclestyle train` reads them:\n\n"
    "  cyclestyle datasets --list             the names, and the folder each one unpacks into\n"
    "  cyclestyle datasets get horse2zebra    fetch, check and unpack into data/horse2zebra/\n\n"
    "A CycleGAN dataset (unpaired) unpacks as ROOT/NAME/trainA, trainB, testA, testB, the layout of\n"
    "data.format folder: train with --set data.root=ROOT/NAME. A pix2pix dataset (paired) unpacks as\n"
    "ROOT/NAME/train, val (and test), each image A and B side by side. facades and maps are in both\n"
    "scripts: say cyclegan/facades or pix2pix/facades (which unpacks into ROOT/facades_pix2pix).\n\n"
    "ROOT is --root (default: data). The transfer shows a progress bar and, if cut, resumes where it\n"
    "stopped when run again. The archive is read once, checked as it is unpacked into a temporary\n"
    "folder that is renamed into place once complete, and then deleted; a damaged download is removed\n"
    "with what was unpacked of it. Nothing is written outside ROOT/NAME. Run twice, the second call\n"
    "finds the dataset and does nothing.")
EPILOG = (
    "examples:\n"
    "  cyclestyle datasets --list\n"
    "  cyclestyle datasets get monet2photo\n"
    "  cyclestyle datasets get pix2pix/facades --root /data/sets\n"
    "  cyclestyle train --config configs/monet2photo.yaml --set data.root=data/monet2photo\n\n"
    "Offline, the error names the URL: fetch it on a connected machine, put the archive at\n"
    f"ROOT/NAME.zip (or .tar.gz) and run the same get again. {HOST_VARIABLE}=URL fetches from a mirror.")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="show the official datasets and exit")
    actions = parser.add_subparsers(dest="action", metavar="get")
    get = actions.add_parser("get", help="download one dataset and unpack it under --root",
                             description="Download the official dataset NAME, check it and unpack it into ROOT/NAME.")
    get.add_argument("name", metavar="NAME", help="a name of --list, e.g. horse2zebra, edges2shoes, pix2pix/facades")
    get.add_argument("--root", default="data", metavar="DIR", help="the folder that holds datasets (default: data)")
    get.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """List the datasets, or fetch one; an unknown name is a usage error (exit 2)."""
    from ..interop.datasets import LICENSED, UnknownDataset, get_dataset, official_datasets

    if args.list or args.action is None:
        print("official datasets (cyclestyle datasets get NAME [--root data]):")
        for d in official_datasets():
            where = "not served (its licence)" if d.name in LICENSED else f"-> ROOT/{d.folder}/"
            print(f"  {d.kind + '/' + d.name:<32} {d.description:<42} {where}")
        return 0
    try:
        folder, fetched = get_dataset(args.name, args.root, progress=not args.quiet)
    except UnknownDataset as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.name}: {'unpacked into' if fetched else 'already in'} {folder}\n"
          f"train on it with: --set data.root={folder}")
    return 0
