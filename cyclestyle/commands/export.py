"""``cyclestyle export``: one generator into a file other runtimes run (ONNX, TorchScript, pt2)."""

from __future__ import annotations

import argparse
import time

HELP = "export a generator to ONNX or TorchScript, to run without this toolkit (or PyTorch)"
DESCRIPTION = (
    "Write one generator of a trained translator into a file other runtimes run:\n"
    "  onnx         ONNX (opset 18) for onnxruntime and the tools that read ONNX: no PyTorch needed\n"
    "  torchscript  TorchScript (.pt) for torch.jit.load or libtorch in C++: only torch needed (torch 2.x\n"
    "               deprecates TorchScript: prefer pt2 for new Python deployments)\n"
    "  pt2          a torch.export program (.pt2, torch.export.load), TorchScript's successor\n"
    "Batch, height and width stay free (height and width in multiples of the generator's size\n"
    "multiple, 4 for the ResNet generators). The file carries its metadata: direction, size\n"
    "multiple, channels, the network, and the input's range and normalisation ([-1, 1]: pixel /\n"
    "127.5 - 1). Before it is renamed into place the file is run against PyTorch at 256x256 and at\n"
    "a non-square 192x320 batch of two, and refused beyond 1e-4 max-abs difference.")
EPILOG = (
    "examples:\n"
    "  cyclestyle export --weights runs/monet2photo --direction BtoA --format onnx --output monet.onnx\n"
    "  cyclestyle export --weights horse2zebra.safetensors --format torchscript --output h2z.pt\n"
    "  cyclestyle export --weights hf://USER/NAME --format onnx --output model.onnx\n\n"
    "For the paper's generator (ngf 64, 9 blocks) an export with its check takes about 15 s\n"
    "on a 2-core CPU. Read the metadata with onnx.load(f).metadata_props, or\n"
    "torch.jit.load(f, _extra_files={'cyclestyle.json': ''}).")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--weights", required=True, metavar="W",
                   help="a run directory, a checkpoints/step-N folder, a generator .safetensors file, a hub folder "
                        "or hf://USER/NAME")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default) exports G_A, BtoA exports G_B")
    p.add_argument("--format", required=True, metavar="FORMAT",
                   help="onnx, torchscript or pt2: a registered exporter (cyclestyle.export.EXPORTERS)")
    p.add_argument("--output", required=True, metavar="FILE", help="the file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument("--batch-norm", choices=["auto", "image", "running"], default="auto",
                   help="a batch-norm generator (pix2pix's U-Net): 'image' normalises each image by its own "
                        "statistics, as translate does by default (the official test.py); 'running' by the "
                        "statistics learnt in training (its --eval); auto: image (default)")


def run(args: argparse.Namespace) -> int:
    from ..export import get
    from ..export.translator import export_translator

    started = time.perf_counter()
    report = export_translator(args.weights, args.output, args.format, direction=args.direction,
                               overwrite=args.overwrite, batch_norm=args.batch_norm)
    checks = ", ".join(f"{'x'.join(map(str, shape))}: {diff:.1e}" for shape, diff in report.checks)
    print(f"wrote {report.path} ({get(args.format).description}) in {time.perf_counter() - started:.1f} s\n"
          f"checked against PyTorch, max |diff| {checks} (limit 1e-4)")
    return 0
