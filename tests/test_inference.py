"""The inference layer and the architecture registry: open any trained translator, any
registered architecture, files of the previous format included."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from cyclestyle.config import ConfigError
from cyclestyle.training.configure import load_config
from cyclestyle.inference.run import open_run
from cyclestyle.models import GENERATORS, register_generator, ResnetBlock, ResnetGenerator, build_generator, generator_spec
from cyclestyle.models.registry import ArchitectureError
from cyclestyle.models.weights import CheckpointError, generator_spec_of, load_weights, save_weights, weights_metadata
from cyclestyle.training.checkpoint import read_checkpoint
from cyclestyle.training.loop import train

from .conftest import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "v0.1-run"  # written by cyclestyle 0.1 (see fixtures/README.md)


# --------------------------------------------------------------------------------------------
# A generator of the tests' own, registered like any other: three stride-2 stages, so its inputs
# must be multiples of 8, and instance norm, so tiling must gather whole-image statistics.


class ThreeStageGenerator(nn.Module):
    size_multiple = 8

    def __init__(self, in_channels: int, out_channels: int, width: int):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(in_channels, width, 3), nn.InstanceNorm2d(width),
                                   nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.InstanceNorm2d(width), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3),
                       nn.InstanceNorm2d(width), nn.ReLU()]
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(width, out_channels, 3), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def three_stage(in_channels: int, out_channels: int, *, ngf: int = 8) -> ThreeStageGenerator:
    return ThreeStageGenerator(in_channels, out_channels, ngf)


@pytest.fixture
def registered():
    register_generator("three_stage", "a test generator with inputs in multiples of 8")(three_stage)
    yield "three_stage"
    GENERATORS.unregister("three_stage")


def run_overrides(toy_root: Path, out: Path, *extra: str) -> list[str]:
    return [f"data.root={toy_root}", f"output_dir={out}", "model.generator=three_stage", "model.ngf=4",
            "model.ndf=4", "data.load_size=40", "data.crop_size=32", "train.checkpoint_every=3",
            "train.decay_steps=0", "train.log_every=1", "log.with=none", *extra]


def tiny(toy_root: Path, out: Path, *extra: str):
    return load_config(REPO / "configs" / "tiny.yaml", run_overrides(toy_root, out, *extra))


@pytest.mark.slow
def test_a_registered_architecture_trains_resumes_bit_for_bit_and_translates_tiled(registered, toy_root, tmp_path):
    whole = train(tiny(toy_root, tmp_path / "whole", "train.max_steps=6"))
    train(tiny(toy_root, tmp_path / "parts", "train.max_steps=3"))
    parts = train(tiny(toy_root, tmp_path / "parts", "train.max_steps=6"), resume="latest")
    for name in ("G_A", "G_B", "D_A", "D_B"):
        a, b = (load_weights(run / "checkpoints" / "step-6" / f"{name}.safetensors") for run in (whole, parts))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    spec = generator_spec_of(whole / "G_A.safetensors")
    assert (spec.name, spec.arguments) == ("three_stage", {"ngf": 4})

    run = open_run(whole)
    generator = run.generator("AtoB", "cpu")
    assert isinstance(generator, ThreeStageGenerator) and not generator.training
    x = torch.rand(1, 3, 100, 230, generator=torch.Generator().manual_seed(1)) * 2 - 1  # not multiples of 8
    full = run.translate(x, "AtoB", device="cpu")
    tiled = run.translate(x, "AtoB", tile=112, device="cpu")
    assert full.shape == tiled.shape == x.shape
    assert (full - tiled).abs().max() < 1e-4  # whole-image statistics over three 112-px tiles
    img = Image.new("RGB", (45, 37), (200, 40, 90))
    assert run.translate(img, "BtoA", device="cpu").size == (45, 37)


def test_the_size_multiple_comes_from_the_network(registered):
    cfg = load_config(None, ["model.generator=three_stage", "model.ngf=4"], check_paths=False)
    assert build_generator(cfg.model).size_multiple == 8
    assert build_generator(dataclasses.replace(cfg.model, generator="resnet")).size_multiple == 4


@pytest.mark.slow
def test_a_file_of_the_previous_format_loads_and_its_checkpoint_resumes(toy_root, tmp_path):
    run = open_run(FIXTURE)
    assert run.step == 2 and run.config is not None and run.config.model.ngf == 4
    by_hand = ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval()
    by_hand.load_state_dict(load_file(FIXTURE / "G_A.safetensors"))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(run.generator("AtoB", "cpu")(x), by_hand(x))
    assert open_run(FIXTURE / "checkpoints" / "step-2").files["BtoA"].parent.name == "step-2"

    copy = tmp_path / "old-run"
    shutil.copytree(FIXTURE, copy)
    cfg = load_config(REPO / "configs" / "tiny.yaml",
                      [f"data.root={toy_root}", f"output_dir={copy}", "model.ngf=4", "model.ndf=4", "model.n_blocks=1",
                       "train.max_steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=1", "train.log_every=2",
                       "log.with=none"])
    train(cfg, resume="latest")
    _, state, _ = read_checkpoint(copy / "checkpoints" / "step-4")
    assert state["progress"]["step"] == 4
    assert generator_spec_of(copy / "G_A.safetensors").name == "resnet"


def test_an_unknown_architecture_name_is_one_line_naming_the_registered_ones(tmp_path):
    cfg = load_config(None, ["model.ngf=4", "model.n_blocks=1"], check_paths=False)
    spec = dataclasses.replace(generator_spec(cfg.model), name="unet_9000")
    path = tmp_path / "G_A.safetensors"
    save_weights(path, build_generator(cfg.model).state_dict(), weights_metadata({}, 1, spec))
    with pytest.raises(CheckpointError) as error:
        open_run(path).generator("AtoB", "cpu")
    message = str(error.value)
    assert "\n" not in message and "unet_9000" in message and str(path) in message
    assert "resnet, resnet_9blocks, resnet_6blocks" in message
    with pytest.raises(ConfigError, match=r"model.generator: unknown generator architecture 'unet_9000' \(registered:"):
        load_config(None, ["model.generator=unet_9000"], check_paths=False)


def test_presets_fix_their_arguments():
    six = load_config(None, ["model.generator=resnet_6blocks", "model.ngf=4"], check_paths=False)
    assert sum(isinstance(m, ResnetBlock) for m in build_generator(six.model).modules()) == 6
    with pytest.raises(ConfigError, match="model.n_blocks=3 contradicts model.generator=resnet_6blocks"):
        load_config(None, ["model.generator=resnet_6blocks", "model.n_blocks=3"], check_paths=False)
    with pytest.raises(ConfigError, match="model.n_layers_d=2 contradicts model.discriminator=basic"):
        load_config(None, ["model.discriminator=basic", "model.n_layers_d=2"], check_paths=False)
    with pytest.raises(ArchitectureError, match="registered already"):
        register_generator("resnet")(three_stage)


def test_open_run_takes_every_kind_of_path_and_names_what_is_missing(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    (run_dir / "G_A.safetensors").unlink()
    (run_dir / "G_B.safetensors").unlink()
    # a run still training: its latest checkpoint
    assert open_run(run_dir).files == {"AtoB": run_dir / "checkpoints" / "step-2" / "G_A.safetensors",
                                       "BtoA": run_dir / "checkpoints" / "step-2" / "G_B.safetensors"}
    lone = open_run(run_dir / "checkpoints" / "step-2" / "G_B.safetensors")
    assert lone.generator("BtoA", "cpu") is lone.generator("BtoA", "cpu")  # built once
    assert lone.in_channels("BtoA") == 3
    with pytest.raises(CheckpointError, match="no such file or folder"):
        open_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no G_A.safetensors or G_B.safetensors there"):
        open_run(tmp_path / "empty")
    with pytest.raises(ValueError, match="direction must be AtoB or BtoA"):
        open_run(run_dir).generator("sideways", "cpu")


@pytest.mark.parametrize("metadata, message", [
    ({"cyclestyle.model": "{not json"}, "unusable model metadata"),
    ({"cyclestyle.model": '{"ngf": 4, "colour": "blue"}'}, "unknown config key model.colour"),
    ({"cyclestyle.network": '{"kind": "generator"}'}, "not a network description"),
    # a header that asks for a network of 1e5 channels is refused from the shapes alone, allocating nothing
    ({"cyclestyle.model": '{"ngf": 100000, "n_blocks": 1}'}, "does not match its own model metadata"),
])
def test_bad_metadata_is_one_line_naming_the_file(tmp_path, metadata, message):
    cfg = load_config(None, ["model.ngf=4", "model.n_blocks=1"], check_paths=False)
    path = tmp_path / "G_A.safetensors"
    save_weights(path, build_generator(cfg.model).state_dict(), {"format": "pt", **metadata})
    with pytest.raises(CheckpointError) as error:
        open_run(path).generator("AtoB", "cpu")
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


def test_crop_size_must_suit_the_generator(registered):
    with pytest.raises(ConfigError, match="data.crop_size=66 must be a multiple of 4, which model.generator resnet"):
        load_config(None, ["data.crop_size=66"], check_paths=False)
    with pytest.raises(ConfigError, match="data.crop_size=36 must be a multiple of 8, which model.generator three_stage"):
        load_config(None, ["data.crop_size=36", "data.load_size=40", "model.generator=three_stage"], check_paths=False)
    load_config(None, ["data.crop_size=66", "data.preprocess=none"], check_paths=False)  # padded to the multiple


@pytest.mark.parametrize("device, message", [
    ("bogus", "--device bogus: not a device name"),
    ("cuda:7", "--device cuda:7: this machine has"),
])
def test_a_device_that_is_not_here_is_one_line_naming_it(device, message, toy_root, tmp_path, capsys):
    from cyclestyle.cli import main

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that many GPUs")
    code = main(["translate", "--weights", str(FIXTURE), "--direction", "AtoB", "--output", str(tmp_path / "out"),
                 "--device", device, str(toy_root / "testA")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"cyclestyle: error: {message}") and "\n" not in err
    assert not (tmp_path / "out").exists()
