"""``cyclestyle pretrained``: download an official pretrained CycleGAN or CUT generator, converted."""

from __future__ import annotations

import argparse
import sys

from ..interop.download import CUT_HOST, CUT_HOST_VARIABLE, HOST_VARIABLE, OFFICIAL_HOST, PIX2PIX_HOST  # torch-free
from .import_official import describe, translate_hint

HELP = "download an official pretrained CycleGAN, pix2pix or CUT model (horse2zebra, pix2pix/edges2shoes, horse2zebra_cut …), ready to use"
DESCRIPTION = (
    f"Download one of the official pretrained CycleGAN generators from {OFFICIAL_HOST},\n"
    f"pix2pix generators (named pix2pix/NAME) from {PIX2PIX_HOST}\n"
    "(the names of the official download scripts), or one of CUT's six (CUT and FastCUT on\n"
    f"horse2zebra, cat2dog and cityscapes: one archive from {CUT_HOST},\n"
    "fetched whole once, which serves all six); --list shows the names. Convert it as\n"
    "import-official does, and print the translate command that uses it. The transfer shows a\n"
    "progress bar and resumes where it stopped if cut; the download and the converted file are cached\n"
    "($XDG_CACHE_HOME/cyclestyle, else ~/.cache/cyclestyle), so a second call is instant. Each model\n"
    "translates one way (style_monet: photo to Monet; cityscapes_cut: labels to photo); use it as\n"
    "--direction AtoB. A pix2pix model is a U-Net with batch norm: translate runs it as the official\n"
    "test.py does (--batch-norm).")
EPILOG = (
    "examples:\n"
    "  cyclestyle pretrained --list\n"
    "  cyclestyle pretrained style_monet\n"
    "  cyclestyle pretrained horse2zebra --output models/\n"
    "  cyclestyle pretrained horse2zebra_cut\n"
    "  cyclestyle pretrained pix2pix/facades_label2photo --output models/\n"
    "  cyclestyle translate --weights models/horse2zebra.safetensors --direction AtoB --output zebras/ horses/\n\n"
    f"{HOST_VARIABLE}=URL fetches from a mirror instead (URL/NAME.pth, URL/pix2pix/NAME.pth;\n"
    f"{CUT_HOST_VARIABLE}=URL for CUT's). Offline, the error names the URL to fetch by\n"
    "hand and the import-official command to run on it.")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", type=model_name, metavar="NAME",
                        help="the model, e.g. horse2zebra, style_monet, pix2pix/edges2shoes or horse2zebra_cut")
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
    from ..interop.download import CUT_PRETRAINED, PIX2PIX_PRETRAINED, PRETRAINED

    if args.list or args.name is None:
        print("official pretrained CycleGAN generators (cyclestyle pretrained NAME):\n  " + "\n  ".join(PRETRAINED))
        print("official pretrained pix2pix generators (U-Nets, one way each):\n  " + "\n  ".join(PIX2PIX_PRETRAINED))
        print("official pretrained CUT and FastCUT generators (cityscapes: labels to photos):\n  "
              + "\n  ".join(CUT_PRETRAINED))
        return 0
    from ..interop.pretrained import download_pretrained

    output, spec = download_pretrained(args.name, args.output, overwrite=args.overwrite, progress=not args.quiet)
    if spec is not None:
        print(f"wrote {output}: {describe(spec)}", file=sys.stderr)
    print(f"{args.name}: {output}\nuse it with:\n{translate_hint(output)}")
    return 0
