"""Network weights on disk: safetensors files that carry what is needed to rebuild the network.

A generator file (``G_A.safetensors``) holds its tensors and, in the safetensors metadata, the
model config it was built from, so that it loads without the run folder or the training code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ModelConfig
from . import build_generator


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or unreadable, named in one line."""


def save_weights(path: Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(path), metadata=metadata)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"missing weights file {path}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"corrupt weights file {path}: {e}") from None


def weights_metadata(model_config: dict[str, Any], step: int) -> dict[str, str]:
    """safetensors metadata (str → str) that lets a generator file be rebuilt on its own."""
    return {"format": "pt", "cyclestyle.model": json.dumps(model_config), "cyclestyle.step": str(step)}


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from a ``G_A``/``G_B`` ``.safetensors`` file, in eval mode, from the
    model config stored in the file's metadata (or, failing that, the ``config.yaml`` beside it)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"missing weights file {path}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"corrupt weights file {path}: {e}") from None
    if "cyclestyle.model" in meta:
        model_cfg = ModelConfig(**json.loads(meta["cyclestyle.model"]))
    elif (path.parent / "config.yaml").is_file():
        from ..config import load_config

        model_cfg = load_config(path.parent / "config.yaml", check_paths=False).model
    else:
        raise CheckpointError(f"{path} carries no cyclestyle model metadata and has no config.yaml beside it")
    net = build_generator(model_cfg, reverse=path.stem.startswith("G_B"))
    try:
        net.load_state_dict(load_weights(path))
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match its own model metadata: {str(e).splitlines()[0]}") from None
    return net.to(device).eval()
