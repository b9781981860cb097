"""Training methods by name: the registry the loop takes its networks and step from, and a
method of this module's own that trains, resumes and translates like the built-in ones."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cyclestyle.config import Config, ConfigError, config_from_dict, read_config
from cyclestyle.inference.run import open_run
from cyclestyle.models import NetworkSpec, generator_spec
from cyclestyle.models.weights import CheckpointError
from cyclestyle.training.checkpoint import Checkpoint
from cyclestyle.training.configure import check_config
from cyclestyle.training.methods import METHODS, Group, Method, MethodError

from .conftest import REPO, cli, kill_after_a_checkpoint




def test_cyclegan_is_the_default_method_and_builds_the_papers_four_networks():
    cfg = config_from_dict({"model": {"ngf": 4, "ndf": 4, "n_blocks": 1}})
    assert cfg.method == "cyclegan"
    method = METHODS.get(cfg.method)
    assert issubclass(method, Method) and method.translators == {"AtoB": "G_A", "BtoA": "G_B"}
    torch.manual_seed(0)
    first = method.build_networks(cfg)
    torch.manual_seed(0)
    again = method.build_networks(cfg)
    assert list(first) == ["G_A", "G_B", "D_A", "D_B"]
    for name in first:  # a fixed build order: a seed gives the same weights
        for (k, v), w in zip(first[name].state_dict().items(), again[name].state_dict().values()):
            assert torch.equal(v, w), (name, k)


def test_an_unknown_method_is_one_line_naming_the_registered_ones():
    with pytest.raises(ConfigError) as e:
        check_config(config_from_dict({"method": "munit"}), check_paths=False)
    message = str(e.value)
    assert "munit" in message and "cyclegan" in message and "\n" not in message
    with pytest.raises(MethodError, match="registered: .*cyclegan"):
        METHODS.get("munit")
    assert "cyclegan" in METHODS


def test_a_checkpoint_without_a_network_the_method_trains_is_refused_in_one_line(tmp_path):
    saved = Checkpoint(tmp_path / "step-3", {"G_A": {}}, state=None, processes=[])
    with pytest.raises(CheckpointError, match=r"step-3 has no G_B\.safetensors \(it holds G_A\)"):
        saved.load_networks({"G_A": torch.nn.Linear(1, 1), "G_B": torch.nn.Linear(1, 1)})


# --------------------------------------------------------------------------------------------
# A method of the tests' own, registered from this module alone: nothing outside it is edited.


@dataclass(frozen=True)
class NegativeOptions:
    """The ``negative:`` section: how much the L1 term weighs."""

    weight: float = 1.0


class Negative(Method):
    """Learns the photographic negative of domain A with one generator, by L1: a method whose
    section, network name and direction are its own (no G_A anywhere)."""

    description: ClassVar[str] = "the negative of an image (a test method)"
    translators: ClassVar[dict[str, str]] = {"AtoB": "inverter"}
    groups: ClassVar[tuple[Group, ...]] = (Group("G", "inverter", ("inverter",)),)
    domains: ClassVar[tuple[str, ...]] = ("A",)
    section: ClassVar[str] = "negative"
    options_type: ClassVar[type] = NegativeOptions

    @classmethod
    def check_options(cls, cfg: Config, options: NegativeOptions) -> None:
        if options.weight <= 0:
            raise ConfigError(f"negative.weight must be positive; got {options.weight}")

    @classmethod
    def network_specs(cls, cfg: Config) -> dict[str, NetworkSpec]:
        return {"inverter": generator_spec(cfg.model)}

    def step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        G, real = self.updates["G"], batch["A"]
        G.zero_grad()
        with self.accelerator.autocast():
            terms = {"L1": self.options(self.cfg).weight * (self.networks["inverter"](real) + real).abs().mean()}
        G.backward(terms, step)
        G.step()
        return terms


if "negative" not in METHODS:
    METHODS.register("negative", Negative)

# Runs the command line in a process that imported this module first (so "negative" is registered).
WITH_NEGATIVE = [sys.executable, "-c", "import sys; import tests.test_methods; from cyclestyle.cli import main; "
                 "sys.exit(main(sys.argv[1:]))"]


def negative_args(toy_root, run_dir, *extra: str) -> list[str]:
    sets = [f"data.root={toy_root}", f"output_dir={run_dir}", "method=negative", "negative.weight=2",
            "model.n_blocks=1", "train.max_steps=8", "train.checkpoint_every=2", "train.log_every=2",
            "train.mixed_precision=no", "eval.every=0", "loss.lambda_identity=0", *extra]
    return ["train", "--config", str(REPO / "configs" / "tiny.yaml"), *sum([["--set", o] for o in sets], [])]


def test_a_method_registered_from_a_test_module_is_checked_with_its_own_section(toy_root):
    cfg = check_config(read_config(REPO / "configs" / "tiny.yaml", [f"data.root={toy_root}", "method=negative",
                                                                     "eval.every=0", "negative.weight=3"]))
    assert cfg.sections == {"negative": {"weight": 3.0}}
    with pytest.raises(ConfigError, match="negative.weight must be positive"):
        check_config(read_config(None, ["method=negative", "eval.every=0", "negative.weight=0"]), check_paths=False)
    with pytest.raises(ConfigError, match=r"unknown config key negative\.colour"):
        check_config(read_config(None, ["method=negative", "eval.every=0", "negative.colour=1"]), check_paths=False)
    with pytest.raises(ConfigError, match="the negative section is read by method negative only"):
        check_config(read_config(None, ["negative.weight=3"]), check_paths=False)


@pytest.mark.slow
def test_a_method_of_a_test_module_trains_resumes_bitwise_after_sigkill_and_translates(toy_root, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run([*WITH_NEGATIVE, *negative_args(toy_root, straight)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    stopped_at = kill_after_a_checkpoint(negative_args(toy_root, killed), killed, command=WITH_NEGATIVE)
    assert stopped_at.name != "step-8"
    resumed = subprocess.run([*WITH_NEGATIVE, *negative_args(toy_root, killed), "--resume", "latest"],
                             capture_output=True, text=True, timeout=300, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_file(run / "inverter.safetensors") for run in (straight, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # Translation needs no method: the file says its direction and architecture.
    photo = tmp_path / "in" / "photo.png"
    photo.parent.mkdir()
    Image.new("RGB", (40, 36), (200, 30, 60)).save(photo)
    out = tmp_path / "out"
    translated = subprocess.run(cli("translate", "--weights", str(killed), "--output", str(out), str(photo),
                                    "--device", "cpu"), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert translated.returncode == 0, translated.stderr
    assert Image.open(out / "photo.png").size == (40, 36)
    run = open_run(killed)
    assert set(run.files) == {"AtoB"} and run.step == 8 and run.config.method == "negative"
    assert read_config(killed / "config.yaml").sections == {"negative": {"weight": 2.0}}
