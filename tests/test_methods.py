"""Training methods by name: the registry the loop takes its networks and step from."""

from __future__ import annotations

import pytest
import torch

from cyclestyle.config import ConfigError, config_from_dict, validate
from cyclestyle.models.weights import CheckpointError
from cyclestyle.training.checkpoint import Checkpoint
from cyclestyle.training.methods import METHODS, Method, MethodError, method_class


def test_cyclegan_is_the_default_method_and_builds_the_papers_four_networks():
    cfg = config_from_dict({"model": {"ngf": 4, "ndf": 4, "n_blocks": 1}})
    assert cfg.method == "cyclegan"
    method = method_class(cfg.method)
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
        validate(config_from_dict({"method": "pix2pix"}), check_paths=False)
    message = str(e.value)
    assert "pix2pix" in message and "cyclegan" in message and "\n" not in message
    with pytest.raises(MethodError, match="registered: .*cyclegan"):
        method_class("pix2pix")
    assert "cyclegan" in METHODS


def test_a_checkpoint_without_a_network_the_method_trains_is_refused_in_one_line(tmp_path):
    saved = Checkpoint(tmp_path / "step-3", {"G_A": {}}, state=None, processes=[])
    with pytest.raises(CheckpointError, match=r"step-3 has no G_B\.safetensors \(it holds G_A\)"):
        saved.load_networks({"G_A": torch.nn.Linear(1, 1), "G_B": torch.nn.Linear(1, 1)})
