"""How large a network may be asked for, checked while it is built: before any real memory.

A config (``model.ngf``, ``model.n_blocks``, ``cut.mlp_dim`` …) or a weights file's metadata
declares a network by its arguments, and the arguments alone say nothing of its size until it is
built. Building on the meta device allocates no storage, but it still constructs every module:
``n_blocks: 10000`` takes half a minute and a gigabyte of Python objects before any shape can be
compared. So the build is watched: every parameter and buffer a module registers is counted (torch's
global registration hooks), and the build stops at the first one past a ``Budget``. A weights
file's network is given the file's own size (it must equal it); a config's networks the ceilings
below, documented in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from .registry import ArchitectureError

# The most one network of a config may hold: 2**30 numbers (4 GiB in float32, four times that
# with gradients and Adam's moments) and 4096 tensors (the default CycleGAN generator holds 11.4
# million numbers in 56 tensors; a ResNet generator of 1000 blocks, 4012 tensors).
MAX_NUMBERS = 2**30
MAX_TENSORS = 4096


class NetworkTooLarge(ArchitectureError):
    """A network that holds more than its budget allows (the build was stopped there)."""


@dataclass(frozen=True)
class Budget:
    """At most ``tensors`` parameters and buffers holding at most ``numbers`` numbers together."""

    tensors: int = MAX_TENSORS
    numbers: int = MAX_NUMBERS

    @classmethod
    def of_file(cls, shapes: dict[str, tuple[int, ...]]) -> Budget:
        """Room for the network a weights file holds: twice its tensors and numbers, and a little
        more (a network may keep buffers it does not save), so that a network declaring far more
        than the file is stopped early, and one that matches is built whole."""
        numbers = sum(math.prod(shape) for shape in shapes.values())
        return cls(tensors=2 * len(shapes) + 16, numbers=2 * numbers + 2**20)


@contextlib.contextmanager
def _counting(budget: Budget) -> Iterator[None]:
    """Raise ``NetworkTooLarge`` from the module that registers the tensor past ``budget``.
    Counted by (module, name), so a tensor registered again replaces its earlier count."""
    held: dict[tuple[int, str], int] = {}
    total = [0]

    def count(module: nn.Module, name: str, tensor: torch.Tensor | None) -> None:
        key = (id(module), name)
        total[0] -= held.pop(key, 0)
        if tensor is None:  # a slot left empty (a bias-free convolution, instance norm's weight)
            return
        held[key] = tensor.numel()
        total[0] += held[key]
        if len(held) > budget.tensors:
            raise NetworkTooLarge(f"it would hold more than {budget.tensors:,} tensors")
        if total[0] > budget.numbers:
            raise NetworkTooLarge(f"it would hold more than {budget.numbers:,} numbers (parameters and buffers)")

    handles = [torch_module.register_module_parameter_registration_hook(count),
               torch_module.register_module_buffer_registration_hook(count)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_on_meta(build: Callable[[], nn.Module], budget: Budget = Budget()) -> nn.Module:
    """``build()`` on the meta device (shapes only, no storage), stopped by ``NetworkTooLarge`` as
    soon as it holds more than ``budget``. Arguments no tensor can have (a negative or astronomic
    width) are an ``ArchitectureError`` with torch's reason, in one line."""
    try:
        with torch.device("meta"), _counting(budget):
            return build()
    except (RuntimeError, OverflowError) as e:
        raise ArchitectureError(f"it cannot be built: {str(e).splitlines()[0]}") from None
