"""``cyclestyle export``: one generator of a trained translator into a file other runtimes run."""

from __future__ import annotations

import time
from pathlib import Path

from torch import nn

from ..inference.run import TrainedRun, open_run
from ..models.weights import generator_spec_of
from . import ExportError, ExportInfo, export_generator, get


def export_info(run: TrainedRun, direction: str, generator: nn.Module) -> ExportInfo:
    spec = generator_spec_of(run.file(direction))
    return ExportInfo(direction=direction, network=spec.to_json(), in_channels=spec.in_channels,
                      out_channels=spec.out_channels, size_multiple=generator.size_multiple)


def run_cli(args) -> int:
    started = time.perf_counter()
    exporter = get(args.format)
    output = Path(args.output).expanduser()
    if output.exists() and not args.overwrite:
        raise ExportError(f"--output {output} exists (--overwrite replaces it)")
    run = open_run(args.weights)
    generator = run.generator(args.direction, "cpu")
    report = export_generator(generator, export_info(run, args.direction, generator), exporter.name, output,
                              sources=run.files.values())
    checks = ", ".join(f"{'x'.join(map(str, shape))}: {diff:.1e}" for shape, diff in report.checks)
    print(f"wrote {output} ({exporter.description}) in {time.perf_counter() - started:.1f} s\n"
          f"checked against PyTorch, max |diff| {checks} (limit 1e-4)")
    return 0
