"""Where to run: the one place that picks a default device."""

from __future__ import annotations

import torch


def default_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` if given, else the GPU when there is one, else the CPU."""
    if requested is not None:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
