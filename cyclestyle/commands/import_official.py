"""``cyclestyle import-official``: convert a generator of the official CycleGAN code."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert a generator saved by the official CycleGAN or pix2pix code (.pth) to this toolkit's format"
DESCRIPTION = (
    "Convert a generator file of the official PyTorch CycleGAN code (junyanz/pytorch-CycleGAN-and-\n"
    "pix2pix: latest_net_G_A.pth, or a published model such as horse2zebra.pth) into a .safetensors\n"
    "file that translate, export and push take. The file is read without running any code in it;\n"
    "ngf, the number of residual blocks and the channels are read from its tensors. The instance-norm\n"
    "running statistics that files of old PyTorch versions carry are dropped, as the official loader\n"
    "does. pix2pix's U-Nets (unet_128, unet_256: latest_net_G.pth) convert with their batch-norm\n"
    "running statistics. Anything else (a discriminator, a ResNet with batch norm) is refused in one line.")
EPILOG = ("examples:\n"
          "  cyclestyle import-official checkpoints/horse2zebra/latest_net_G_A.pth --output horse2zebra.safetensors\n"
          "  cyclestyle translate --weights horse2zebra.safetensors --direction AtoB --output zebras/ horses/\n"
          "  cyclestyle import-official checkpoints/facades_pix2pix/latest_net_G.pth --output facades.safetensors")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH.pth", help="the official generator file")
    parser.add_argument("--output", required=True, metavar="G.safetensors", help="the converted generator file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    """Convert one official generator file."""
    from ..interop.official import import_official
    from ..models.weights import CheckpointError

    source, output = Path(args.path).expanduser(), Path(args.output).expanduser()
    if output.exists() and not args.overwrite:
        raise CheckpointError(f"--output {output} exists (--overwrite replaces it)")
    spec = import_official(source, output)
    print(f"wrote {output}: {describe(spec)}\nuse it with:\n{translate_hint(output)}")
    return 0


def describe(spec) -> str:
    """One line on a converted generator (shared with ``pretrained``)."""
    a = spec.arguments
    if spec.name.startswith("unet"):
        return (f"U-Net generator ({spec.name}), ngf {a['ngf']}, {a['norm']} norm, {spec.in_channels} -> "
                f"{spec.out_channels} channels{', dropout' if a['dropout'] else ''}")
    return (f"ResNet generator, ngf {a['ngf']}, {a['n_blocks']} blocks, {spec.in_channels} -> {spec.out_channels} "
            f"channels{', dropout' if a['dropout'] else ''}")


def translate_hint(weights: Path) -> str:
    """The translate command that uses ``weights``."""
    return f"  cyclestyle translate --weights {weights} --direction AtoB --output translated/ YOUR_IMAGES"
