"""Normalisation choice shared by the generators and the discriminators (initialisation: ``init.py``)."""

from __future__ import annotations

from typing import Callable

from torch import nn


def norm_layer(kind: str) -> Callable[[int], nn.Module]:
    """Return a constructor ``channels -> module`` for the named normalisation.

    Instance norm follows the reference implementation: no affine parameters and no running
    statistics, so every image is normalised by its own statistics at train and test time alike.
    """
    if kind == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    if kind == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (instance, batch or none)")


def conv_bias(kind: str) -> bool:
    """Convolutions followed by batch norm need no bias (its shift replaces it); the reference
    keeps the bias before instance norm, and the parameter counts we must match depend on that."""
    return kind != "batch"
