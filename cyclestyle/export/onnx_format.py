"""ONNX: runs under onnxruntime (and TensorRT, CoreML converters, browsers) without PyTorch.

Made with torch's dynamo-based exporter (``torch.onnx.export(dynamo=True)``): it traces through
``torch.export``, whose symbolic shapes give an ONNX graph with a free batch and free height and
width in multiples of the network's ``size_multiple``; reflection padding and instance norm
export at any size this way. One file, weights inside (under 2 GB for every generator here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import Exporter, ExportInfo, Runner, dynamic_shapes, example_input, register

OPSET = 18
INPUT, OUTPUT = "image", "translation"


def write_onnx(generator: nn.Module, path: Path, info: ExportInfo) -> None:
    import onnx

    torch.onnx.export(generator, (example_input(info.in_channels, info.size_multiple),), str(path),
                      input_names=[INPUT], output_names=[OUTPUT], opset_version=OPSET, dynamo=True,
                      external_data=False, dynamic_shapes=dynamic_shapes(info.size_multiple), verbose=False)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, info.to_strings())
    model.doc_string = f"cyclestyle generator, {info.direction}: {info.normalisation}"
    onnx.save(model, str(path))


def load_onnx(path: Path) -> Runner:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT], {INPUT: np.ascontiguousarray(x.cpu().numpy())})[0])

    return run


register(Exporter("onnx", ".onnx", f"ONNX opset {OPSET} for onnxruntime: dynamic batch, height and width",
                  write_onnx, load_onnx))
