"""Translators out of PyTorch: exporters by name, each file checked against PyTorch as it is made.

``EXPORTERS`` maps a format name to an ``Exporter``: how to write a generator into a file, and how
to run that file again (to check it). A new format is a module of its own with those two
functions and one ``register(Exporter(...))`` line, imported in ``export/__init__.py``;
``cyclestyle export --format`` offers whatever is registered. Every file carries ``ExportInfo``: what the network expects of its
input and what its output means, so that a user of the file needs nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..files import refuse_output_over_input
from ..models.weights import CheckpointError
from ..registry import Registry

Runner = Callable[[torch.Tensor], torch.Tensor]


class ExportError(CheckpointError):
    """An export that failed or does not reproduce PyTorch; one line why."""


@dataclass(frozen=True)
class ExportInfo:
    """The metadata every exported file carries (ONNX ``metadata_props``, TorchScript extra files)."""

    direction: str  # AtoB or BtoA
    network: str  # the generator's NetworkSpec as JSON: architecture name, channels, arguments
    in_channels: int
    out_channels: int
    size_multiple: int  # height and width must be multiples of this
    input_layout: str = "float32 N x C x H x W, RGB (C = 3) or gray (C = 1)"
    input_range: str = "[-1, 1]"
    normalisation: str = "input = pixel / 127.5 - 1 for 8-bit pixels; output in [-1, 1]: pixel = (output + 1) * 127.5"
    producer: str = "cyclestyle"

    def to_strings(self) -> dict[str, str]:
        return {f"cyclestyle.{k}": str(v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass(frozen=True)
class Exporter:
    name: str
    suffix: str  # the usual file extension
    description: str
    write: Callable[[nn.Module, Path, ExportInfo], None]  # generator (eval, CPU) -> file
    load: Callable[[Path], Runner]  # file -> a function of an input batch, for the check


EXPORTERS: Registry[Exporter] = Registry("export format", ExportError)


def register(exporter: Exporter) -> Exporter:
    return EXPORTERS.register(exporter.name, exporter)


get = EXPORTERS.get


# --------------------------------------------------------------------------------------------
# Shapes: what the exported file must take


def check_sizes(multiple: int) -> list[tuple[int, int, int]]:
    """(batch, height, width) the check runs at: 256×256, and a non-square batch of two, both
    rounded up to the network's size multiple."""
    def up(n: int) -> int:
        return -(-n // multiple) * multiple

    return [(1, up(256), up(256)), (2, up(192), up(320))]


def example_input(channels: int, multiple: int) -> torch.Tensor:
    """The input a trace is made with: batch 2 and unequal sides, so that neither the batch nor
    the sides are taken for constants (torch.export specialises sizes 0 and 1, and equal dims)."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, channels, 16 * multiple, 24 * multiple, generator=generator) * 2 - 1


def dynamic_shapes(multiple: int) -> tuple[dict[int, object], ...]:
    """Batch, and height and width in multiples of ``multiple``, for torch.export and ONNX."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=4096)
    height, width = Dim("height_units", min=1, max=8192), Dim("width_units", min=1, max=8192)
    if multiple == 1:
        return ({0: batch, 2: height, 3: width},)
    return ({0: batch, 2: multiple * height, 3: multiple * width},)


# --------------------------------------------------------------------------------------------
# The export itself


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    checks: list[tuple[tuple[int, int, int, int], float]]  # (input shape, max |exported − PyTorch|)


def export_generator(generator: nn.Module, info: ExportInfo, fmt: str, output: Path,
                     tolerance: float = 1e-4, sources: Iterable[Path] = ()) -> ExportReport:
    """Write ``generator`` to ``output`` in format ``fmt``, run the file at ``check_sizes`` against
    PyTorch, and rename it into place only if every max-abs difference is within ``tolerance``.
    ``sources``: the files the generator came from (its run's), which ``output`` may not be."""
    refuse_output_over_input(output, sources, error=ExportError)
    exporter = get(fmt)
    generator = generator.to("cpu").eval()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp{exporter.suffix}")  # torch.export.load wants .pt2
    try:
        try:
            exporter.write(generator, tmp, info)
        except Exception as e:  # the exporters raise many kinds; the first line says which
            raise ExportError(f"{fmt} export failed: {_first_line(e)}") from None
        try:
            runner = exporter.load(tmp)
        except Exception as e:
            raise ExportError(f"the {fmt} file just written does not load: {_first_line(e)}") from None
        checks = compare(generator, runner, info.in_channels, info.size_multiple)
        worst = max(checks, key=lambda c: c[1])
        if not worst[1] <= tolerance:
            raise ExportError(f"the {fmt} file does not reproduce PyTorch: max |diff| {worst[1]:.2e} at input "
                              f"{'x'.join(map(str, worst[0]))} (limit {tolerance:g})")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(output, fmt, checks)


def compare(generator: nn.Module, run: Runner, channels: int, multiple: int
            ) -> list[tuple[tuple[int, int, int, int], float]]:
    """Max |run(x) − generator(x)| on seeded random inputs of each ``check_sizes`` shape."""
    results = []
    for i, (batch, height, width) in enumerate(check_sizes(multiple)):
        x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(i)) * 2 - 1
        with torch.inference_mode():
            expected = generator(x)
        try:
            got = run(x)
        except Exception as e:  # e.g. a runtime that cannot take this size: the file is not what was asked
            raise ExportError(f"the exported file fails on input {'x'.join(map(str, x.shape))}: {_first_line(e)}"
                              ) from None
        if tuple(got.shape) != tuple(expected.shape):
            raise ExportError(f"the exported file gave shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                              f"PyTorch {tuple(expected.shape)}")
        results.append((tuple(x.shape), (got - expected).abs().max().item()))
    return results


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
