"""``cyclestyle pretrained``: download an official pretrained CycleGAN or CUT generator, converted."""

from __future__ import annotations

import argparse
import sys

from ..interop.download import CUT_HOST, CUT_HOST_VARIABLE, HOST_VARIABLE, OFFICIAL_HOST  # torch-free
from .import_official import describe, translate_hint

HELP = "download an official pretrained CycleGAN or CUT model (horse2zebra, horse2zebra_cut …), ready to use"
DESCRIPTION = (
    f"Download one of the official pretrained CycleGAN generators (the names of the official\n"
    f"download script, from {OFFICIAL_HOST}) or one of CUT's six\n"
    "(CUT and FastCUT on horse2zebra, cat2dog and cityscapes: one archive from\n"
    f"{CUT_HOST}, fetched whole once, which serves all six); --list shows the names.\n"
    "Convert it as import-official does, and print the translate command that uses it. The transfer\n"
    "shows a progress bar and resumes where it stopped if cut; the download and the converted file are\n"
    "cached ($XDG_CACHE_HOME/cyclestyle, else ~/.cache/cyclestyle), so a second call is instant. Each\n"
    "model translates one way (style_monet: photo to Monet; cityscapes_cut: labels to photo); use it as\n"
    "--direction AtoB.")
EPILOG = (
    "examples:\n"
    "  cyclestyle pretrained --list\n"
    "  cyclestyle pretrained style_monet\n"
    "  cyclestyle pretrained horse2zebra --output models/\n"
    "  cyclestyle pretrained horse2zebra_cut\n"
    "  cyclestyle translate --weights models/horse2zebra.safetensors --direction AtoB --output zebras/ horses/\n\n"
    f"{HOST_VARIABLE}=URL ({CUT_HOST_VARIABLE}=URL for CUT's) fetches from a mirror instead.\n"
    "Offline, the error names the URL to fetch by\n"
    "hand and the import-official command to run on it.")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", type=model_name, metavar="NAME",
                        help="the model, e.g. horse2zebra, style_monet or horse2zebra_cut")
    parser.add_argument("--list", action="store_true", help="show the names and exit")
    parser.add_argument("--output", metavar="DIR", help="folder for NAME.safetensors (default: the cache)")
    parser.add_argument("--overwrite", action="store_true", help="convert again even if NAME.safetensors exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def model_name(text: str) -> str:
    """NAME as given; an empty one (``pretrained ""``, a shell variable left unset) is a usage
    error, not a request for the list."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a model name, e.g. horse2zebra "
                                         "(cyclestyle pretrained --list shows them)")
    return text


def run(args: argparse.Namespace) -> int:
    """Download (or take from the cache) an official pretrained model and convert it."""
    from ..interop.download import CUT_PRETRAINED, PRETRAINED

    if args.list or args.name is None:
        print("official pretrained CycleGAN generators (cyclestyle pretrained NAME):\n  " + "\n  ".join(PRETRAINED))
        print("official pretrained CUT and FastCUT generators (cityscapes: labels to photos):\n  "
              + "\n  ".join(CUT_PRETRAINED))
        return 0
    from ..interop.pretrained import download_pretrained

    output, spec = download_pretrained(args.name, args.output, overwrite=args.overwrite, progress=not args.quiet)
    if spec is not None:
        print(f"wrote {output}: {describe(spec)}", file=sys.stderr)
    print(f"{args.name}: {output}\nuse it with:\n{translate_hint(output)}")
    return 0
