"""Export: ONNX under onnxruntime, TorchScript and torch.export programs in a process with torch
only, for every kind of generator, each file with its metadata, and every failure one line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from cyclestyle.cli import main
from cyclestyle.config import ModelConfig
from cyclestyle.export import EXPORTERS, Exporter, ExportError, ExportInfo, export_generator
from cyclestyle.export.torch_formats import load_torchscript
from cyclestyle.inference.run import open_run
from cyclestyle.interop.official import import_official
from cyclestyle.models import GENERATORS, register_generator, generator_spec
from cyclestyle.models.weights import save_weights, weights_metadata

from .test_inference import FIXTURE, three_stage

pytestmark = pytest.mark.slow  # ONNX exports checked against PyTorch, a fresh process: not in `test.sh --quick`

OFFICIAL = Path(__file__).parent / "fixtures" / "official"


def generator_file(folder: Path, kind: str) -> Path:
    """A generator file of each kind export must take: a trained-style ``resnet``, one imported from
    the official code, Johnson et al.'s fast style network, and an architecture registered by the
    tests (inputs in multiples of 8)."""
    path = folder / f"{kind}.safetensors"
    if kind == "official":
        import_official(OFFICIAL / "resnet_6blocks_ngf8_net_G_A.pth", path)
        return path
    cfg = {"resnet": ModelConfig(ngf=8, n_blocks=2), "johnson": ModelConfig(generator="johnson", ngf=8, n_blocks=1),
           "three_stage": ModelConfig(generator="three_stage", ngf=4)}[kind]
    spec = generator_spec(cfg)
    torch.manual_seed(1)
    save_weights(path, spec.build().state_dict(), weights_metadata(dataclasses.asdict(cfg), 5, spec))
    return path


@pytest.fixture
def three_stage_registered():
    register_generator("three_stage", "a test generator with inputs in multiples of 8")(three_stage)
    yield
    GENERATORS.unregister("three_stage")


def batch(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("kind", ["resnet", "official", "johnson", "three_stage"])
def test_onnx_runs_at_free_sizes_like_pytorch_and_carries_its_metadata(kind, three_stage_registered, tmp_path, capsys):
    weights, out = generator_file(tmp_path, kind), tmp_path / "g.onnx"
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--output", str(out)]) == 0
    assert "checked against PyTorch" in capsys.readouterr().out
    model = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    multiple = 8 if kind == "three_stage" else 4
    assert meta["cyclestyle.direction"] == "AtoB" and meta["cyclestyle.size_multiple"] == str(multiple)
    assert meta["cyclestyle.input_range"] == "[-1, 1]" and "pixel / 127.5 - 1" in meta["cyclestyle.normalisation"]
    assert json.loads(meta["cyclestyle.network"])["name"] == ("resnet" if kind == "official" else kind)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))  # batch, H, W free
    generator = open_run(weights).generator("AtoB", "cpu")
    for x in (batch(1, 64, 64, 0), batch(2, 48, 80, 1)):
        with torch.inference_mode():
            expected = generator(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4


def test_torch_files_run_in_a_fresh_process_with_torch_only(tmp_path):
    weights = generator_file(tmp_path, "resnet")
    for fmt, suffix in (("torchscript", "pt"), ("pt2", "pt2")):
        out = tmp_path / f"g.{suffix}"
        assert main(["export", "--weights", str(weights), "--format", fmt, "--output", str(out)]) == 0
    x = batch(2, 48, 80, 2)
    torch.save({"x": x}, tmp_path / "x.pt")
    script = f"""
import json, sys, warnings
sys.path.append({sysconfig.get_paths()["purelib"]!r})  # torch; without -S's .pth files, no editable cyclestyle
try:
    import cyclestyle
    sys.exit("cyclestyle is importable")
except ImportError:
    pass
import torch
warnings.simplefilter("ignore", FutureWarning)
x = torch.load("x.pt", weights_only=True)["x"]
extra = {{"cyclestyle.json": ""}}
scripted = torch.jit.load("g.pt", _extra_files=extra)
program = torch.export.load("g.pt2").module()
with torch.inference_mode():
    torch.save({{"torchscript": scripted(x), "pt2": program(x)}}, "y.pt")
print(extra["cyclestyle.json"].decode())
"""
    done = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["size_multiple"] == 4
    expected = open_run(weights).translate(x, "AtoB", device="cpu")
    outputs = torch.load(tmp_path / "y.pt", weights_only=True)
    for fmt in ("torchscript", "pt2"):
        assert outputs[fmt].shape == expected.shape and (outputs[fmt] - expected).abs().max().item() <= 1e-4, fmt


def test_the_direction_chooses_the_generator(tmp_path):
    """The cyclestyle 0.1 fixture run (ngf 4): BtoA exports G_B, not G_A."""
    out = tmp_path / "b.pt"
    assert main(["export", "--weights", str(FIXTURE), "--direction", "BtoA", "--format", "torchscript",
                 "--output", str(out)]) == 0
    run = open_run(FIXTURE)
    x = batch(1, 32, 48, 3)
    got = load_torchscript(out)(x)
    assert (got - run.translate(x, "BtoA", device="cpu")).abs().max().item() <= 1e-5
    assert (got - run.translate(x, "AtoB", device="cpu")).abs().max().item() > 1e-3
    extra = {"cyclestyle.json": ""}
    with pytest.warns(FutureWarning):  # TorchScript's deprecation in torch 2.x
        torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["cyclestyle.json"])["direction"] == "BtoA"


def test_a_file_that_does_not_reproduce_pytorch_is_refused_and_not_kept(tmp_path):
    """The check at export time can fail: an exporter whose file is off by 1e-3 is refused."""
    torchscript = EXPORTERS.get("torchscript")

    def off(path: Path):
        run = torchscript.load(path)
        return lambda x: run(x) + 1e-3

    EXPORTERS.register("off", Exporter("off", ".pt", "TorchScript, off by 1e-3", torchscript.write, off))
    try:
        generator = open_run(generator_file(tmp_path, "resnet")).generator("AtoB", "cpu")
        info = ExportInfo("AtoB", "{}", 3, 3, 4)
        with pytest.raises(ExportError, match=r"does not reproduce PyTorch: max \|diff\| 1\.0\de-03"):
            export_generator(generator, info, "off", tmp_path / "g.pt")
        assert list(tmp_path.glob("*g.pt*")) == []
    finally:
        EXPORTERS.unregister("off")


def test_bad_requests_are_one_line(tmp_path, capsys):
    weights = generator_file(tmp_path, "resnet")
    assert main(["export", "--weights", str(weights), "--format", "coreml", "--output", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "coreml" in err and "onnx, torchscript, pt2" in err
    (tmp_path / "g.onnx").write_bytes(b"mine")
    assert main(["export", "--weights", str(weights), "--format", "onnx", "--output", str(tmp_path / "g.onnx")]) == 1
    assert "--overwrite" in capsys.readouterr().err and (tmp_path / "g.onnx").read_bytes() == b"mine"
