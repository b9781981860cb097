"""The device a command runs on when none is named: one rule for every command.

Training is not here: accelerate chooses its devices (and processes) itself.
"""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device that is not one, or is not on this machine; one line naming it."""


def default_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` when given (``--device cuda:1``), else the GPU when there is one, else the
    CPU. A requested device must exist here: torch would otherwise fail later, in a traceback."""
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise DeviceError(f"--device {requested}: not a device name (cpu, cuda, cuda:1, mps …)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise DeviceError(f"--device {requested}: this machine has {count or 'no'} CUDA device{'s' * (count != 1)}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {requested}: MPS is not available on this machine")
    return device
