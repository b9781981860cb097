"""The device a command runs on when none is named: one rule for every command.

Training is not here: accelerate chooses its devices (and processes) itself.
"""

from __future__ import annotations

import torch


def default_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` when given (``--device cuda:1``), else the GPU when there is one, else the CPU."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
