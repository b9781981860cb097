"""``cyclestyle import-official``: convert a generator of the official CycleGAN code."""

from __future__ import annotations

import argparse

HELP = "convert a generator saved by the official CycleGAN code (.pth) to this toolkit's format"
DESCRIPTION = (
    "Convert a generator file of the official PyTorch CycleGAN code (junyanz/pytorch-CycleGAN-and-\n"
    "pix2pix: latest_net_G_A.pth, or a published model such as horse2zebra.pth) into a .safetensors\n"
    "file that translate, export and push take. The file is read without running any code in it;\n"
    "ngf, the number of residual blocks and the channels are read from its tensors. The instance-norm\n"
    "running statistics that files of old PyTorch versions carry are dropped, as the official loader\n"
    "does. Anything else (a U-Net generator, a discriminator, batch norm) is refused in one line.")
EPILOG = ("examples:\n"
          "  cyclestyle import-official checkpoints/horse2zebra/latest_net_G_A.pth --output horse2zebra.safetensors\n"
          "  cyclestyle translate --weights horse2zebra.safetensors --direction AtoB --output zebras/ horses/")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH.pth", help="the official generator file")
    parser.add_argument("--output", required=True, metavar="G.safetensors", help="the converted generator file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    from ..interop.command import import_cli

    return import_cli(args)
