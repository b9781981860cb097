"""Files that run with torch alone, without this package: TorchScript and torch.export programs.

Both hold the graph and the weights; loading runs no Python of ours. ``torchscript`` (``.pt``,
``torch.jit.load``) is what C++ (libtorch) and older deployment stacks read; torch 2.x deprecates
TorchScript in favour of ``torch.export``, so ``pt2`` (``torch.export.load``) is there too.
The metadata is one JSON file inside either archive, ``cyclestyle.json``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from .base import Exporter, ExportInfo, Runner, dynamic_shapes, example_input, register

METADATA = "cyclestyle.json"


def write_torchscript(generator: nn.Module, path: Path, info: ExportInfo) -> None:
    """``torch.jit.script``: control flow and every size stay symbolic (a trace would fix them)."""
    with warnings.catch_warnings():  # torch warns of TorchScript's deprecation once per submodule; said once in --help
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(generator)
        torch.jit.save(scripted, str(path), _extra_files={METADATA: info.to_json()})


def load_torchscript(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the deprecation: said in docs/models.md and --help
        module = torch.jit.load(str(path), map_location="cpu")

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x)

    return run


def write_pt2(generator: nn.Module, path: Path, info: ExportInfo) -> None:
    program = torch.export.export(generator, (example_input(info.in_channels, info.size_multiple),),
                                  dynamic_shapes=dynamic_shapes(info.size_multiple))
    torch.export.save(program, str(path), extra_files={METADATA: info.to_json()})


def load_pt2(path: Path) -> Runner:
    module = torch.export.load(str(path)).module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x)

    return run


register(Exporter("torchscript", ".pt", "TorchScript (torch.jit.load, libtorch in C++); needs only torch",
                  write_torchscript, load_torchscript))
register(Exporter("pt2", ".pt2", "a torch.export program (torch.export.load), TorchScript's successor; "
                  "needs only torch", write_pt2, load_pt2))
