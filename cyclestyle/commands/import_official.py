"""``cyclestyle import-official``: convert a generator of the official CycleGAN or CUT code."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "convert a generator saved by the official CycleGAN, pix2pix or CUT code (.pth) to this toolkit's format"
DESCRIPTION = (
    "Convert a generator file of the official PyTorch CycleGAN code (junyanz/pytorch-CycleGAN-and-\n"
    "pix2pix: latest_net_G_A.pth, or a published model such as horse2zebra.pth) or of CUT's code\n"
    "(taesungp/contrastive-unpaired-translation: latest_net_G.pth, anti-aliased, recognised by its\n"
    "blur filters) into a .safetensors file that translate, export, evaluate and push take. The file\n"
    "is read without running any code in it; ngf, the number of residual blocks, the anti-aliasing\n"
    "and the channels are read from its tensors. The instance-norm\n"
    "running statistics that files of old PyTorch versions carry are dropped, as the official loader\n"
    "does. pix2pix's U-Nets (unet_128, unet_256: latest_net_G.pth) convert with their batch-norm\n"
    "running statistics. Anything else (a discriminator, a ResNet with batch norm) is refused in one line.")
EPILOG = ("examples:\n"
          "  cyclestyle import-official checkpoints/horse2zebra/latest_net_G_A.pth --output horse2zebra.safetensors\n"
          "  cyclestyle import-official checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth --output cut.safetensors\n"
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
    from ..interop.official import official_origin

    a, origin = spec.arguments, official_origin(spec)
    if origin == "pix2pix":
        return (f"U-Net generator ({spec.name}), ngf {a['ngf']}, {a['norm']} norm, {spec.in_channels} -> "
                f"{spec.out_channels} channels{', dropout' if a['dropout'] else ''}")
    return (f"ResNet generator, ngf {a['ngf']}, {a['n_blocks']} blocks, {spec.in_channels} -> {spec.out_channels} "
            f"channels{', dropout' if a['dropout'] else ''}{', anti-aliased (CUT)' if origin == 'CUT' else ''}")


def translate_hint(weights: Path) -> str:
    """The translate command that uses ``weights``."""
    return f"  cyclestyle translate --weights {weights} --direction AtoB --output translated/ YOUR_IMAGES"
