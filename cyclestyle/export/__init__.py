"""Translators out of PyTorch (``base.py``): exporters by name, each file checked against PyTorch
as it is made. The formats are a module each, registered when imported here."""

from . import onnx_format, torch_formats  # noqa: F401  (registers the built-in formats)
from .base import (EXPORTERS, Exporter, ExportError, ExportInfo, ExportReport, Runner, check_sizes, compare,
                   export_generator, get, register)

__all__ = ["EXPORTERS", "Exporter", "ExportError", "ExportInfo", "ExportReport", "Runner", "check_sizes", "compare",
           "export_generator", "get", "register"]
