"""Random draws inside a step that are the same after a resume and in any process layout.

A draw is taken from a generator seeded by (seed, step, stream), not from a global stream whose
state would have to be saved: a resumed run draws the same values with nothing to restore, and
a draw made per image (``stream`` naming the image by its index in the step's global batch)
is the same whether one process takes the batch or several share it.
"""

from __future__ import annotations

import hashlib

import torch


def step_generator(seed: int, step: int, stream: str) -> torch.Generator:
    """A CPU generator seeded from SHA-256 of ``seed/step/stream``."""
    digest = hashlib.sha256(f"{seed}/{step}/{stream}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def mixing_weights(seed: int, step: int, stream: str, first_image: int, count: int) -> torch.Tensor:
    """One uniform draw in [0, 1) per image of this process's batch (``count`` images, the first
    being image ``first_image`` of the step's global batch): WGAN-GP's α (``losses.gradient_penalty``)."""
    return torch.cat([torch.rand(1, generator=step_generator(seed, step, f"{stream}/{first_image + i}"))
                      for i in range(count)])
