"""The files a run writes besides checkpoints: ``config.yaml``, the final generators, and the
metadata that lets every weights file rebuild its network alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import torch
from accelerate import Accelerator
from torch import nn

from ..config import Config, config_to_dict, dump_config
from ..models.weights import save_weights, weights_metadata
from ..run_folder import CONFIG, DIRECTION_KEY, TRANSLATORS_KEY
from .checkpoint import aside
from .methods import METHODS


def generator_metadata(cfg: Config, step: int) -> dict[str, dict[str, str]]:
    """The metadata of each network's weights file (by name: G_A …), in checkpoints, the best and
    the final generators: the run's model config, the step, the network's own architecture name
    and arguments, so that any file rebuilds its network alone, and for a translator the
    direction it translates (``run_folder``)."""
    model = config_to_dict(cfg)["model"]
    method = METHODS.get(cfg.method)
    specs = method.network_specs(cfg)
    translators_of_run = method.translators_for(cfg)
    direction_of = {name: direction for direction, name in translators_of_run.items()}
    metadata = {name: weights_metadata(model, step, specs.get(name)) for name in specs}
    translators = json.dumps(translators_of_run)
    for name, direction in direction_of.items():
        metadata[name][DIRECTION_KEY] = direction
        metadata[name][TRANSLATORS_KEY] = translators
    return metadata


def weights_digest(nets: Iterable[nn.Module]) -> str:
    """A hash of every parameter and buffer, to check that all processes hold the same weights."""
    h = hashlib.sha256()
    for net in nets:
        for t in net.state_dict().values():
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def write_config(run_dir: Path, cfg: Config, accelerator: Accelerator) -> None:
    """``config.yaml``; a different one already there is kept as ``config.previous.yaml``."""
    path = run_dir / CONFIG
    text = dump_config(cfg)
    if path.exists() and path.read_text() != text:
        accelerator.print(f"note: the config differs from the one in {path}; the new one replaces it "
                          f"(the old one is kept as config.previous.yaml)")
        path.replace(run_dir / "config.previous.yaml")
    path.write_text(text)


def write_final_generators(run_dir: Path, generators: dict[str, nn.Module],
                            metadata: dict[str, dict[str, str]]) -> None:
    """``G_A.safetensors`` (and ``G_B.safetensors`` for a method that trains both directions)
    beside ``config.yaml``: all that translation needs. Written aside under a name of this
    process's own, then renamed into place."""
    for name, net in generators.items():
        final = run_dir / f"{name}.safetensors"
        tmp = aside(final)
        save_weights(tmp, net.state_dict(), metadata[name])
        tmp.replace(final)
