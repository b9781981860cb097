"""Exporting a trained translator: one direction's generator of a run into a file other runtimes
run (what ``cyclestyle export`` does), with the metadata its weights file records."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..files import check_output
from ..inference.run import TrainedRun, open_run
from ..inference.translate import test_mode
from ..models.weights import generator_spec_of
from . import ExportError, ExportInfo, ExportReport, export_generator, get  # the formats registered


def export_info(run: TrainedRun, direction: str, generator: nn.Module) -> ExportInfo:
    spec = generator_spec_of(run.file(direction))
    return ExportInfo(direction=direction, network=spec.to_json(), in_channels=spec.in_channels,
                      out_channels=spec.out_channels, size_multiple=generator.size_multiple)


def export_translator(weights: str | Path | TrainedRun, output: str | Path, format: str, *,
                      direction: str = "AtoB", overwrite: bool = False, batch_norm: str = "auto") -> ExportReport:
    """Export the generator of ``direction`` ("AtoB": G_A, "BtoA": G_B) of ``weights`` (what
    ``open_run`` opens, or a ``TrainedRun``) to ``output`` in ``format`` (a registered exporter:
    "onnx", "torchscript", "pt2"). The file is run against PyTorch before it is renamed into place
    (``export_generator``); the report holds the differences. An ``ExportError`` when ``output``
    exists and not ``overwrite``, or when the file does not reproduce PyTorch. ``batch_norm``: how
    a batch-norm generator's file normalises (``test_mode``: by default each image by its own
    statistics, as ``translate``; "running" for the official ``--eval``); no dropout."""
    get(format)  # an unknown format is said first
    output = Path(output).expanduser()
    check_output(output, folder=False, error=ExportError)
    if output.exists() and not overwrite:
        raise ExportError(f"--output {output} exists (--overwrite replaces it)")
    run = weights if isinstance(weights, TrainedRun) else open_run(weights)
    generator = run.generator(direction, "cpu")
    with test_mode(generator, batch_norm=batch_norm):  # traced as it runs: the file computes what translate does
        return export_generator(generator, export_info(run, direction, generator), format, output,
                                sources=run.files.values())
