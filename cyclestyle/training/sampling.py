"""The order in which training images are drawn, as a pure function of (seed, epoch).

Unaligned sampling as in the reference implementation: an epoch has max(|A|, |B|) items; domain A
is walked in a shuffled order (wrapping around when B is the larger domain) and each A image is
paired with a B image drawn uniformly at random. Each item also carries the seed of its random
crop and flip. Because all of this is fixed before the epoch starts, a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would, whatever the number of DataLoader
workers, and processes can split every global batch between them without drawing an item twice.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def epoch_order(n_a: int, n_b: int, seed: int, epoch: int) -> torch.Tensor:
    """An (L, 3) int64 table of (A index, B index, augmentation seed), L = max(n_a, n_b); with
    no domain B (``n_b`` 0, a one-domain method) the B index is 0 and none is drawn."""
    rng = np.random.default_rng([seed, epoch])
    length = max(n_a, n_b)
    a = rng.permutation(length) % n_a
    b = rng.integers(0, n_b, size=length) if n_b else np.zeros(length, dtype=np.int64)
    aug = rng.integers(0, 2**62, size=length)
    return torch.from_numpy(np.stack([a, b, aug], axis=1).astype(np.int64))


def steps_per_epoch(length: int, batch_size: int, num_processes: int) -> int:
    """Whole global batches per epoch; the incomplete tail is dropped so all batches are equal."""
    return length // (batch_size * num_processes)


class ShardedBatchSampler(Sampler[list[tuple[int, int, int]]]):
    """Yields this process's share of each global batch, from ``start_step`` to the epoch's end.

    Global batch ``s`` is rows [s·B·P, (s+1)·B·P) of the order; process ``r`` takes the r-th
    slice of B rows. So P processes with batch B see the same images per step as one process with
    batch B·P.
    """

    def __init__(self, order: torch.Tensor, batch_size: int, process_index: int = 0,
                 num_processes: int = 1, start_step: int = 0):
        self.order = order.tolist()
        self.batch_size = batch_size
        self.process_index = process_index
        self.num_processes = num_processes
        self.start_step = start_step
        self.steps = steps_per_epoch(len(self.order), batch_size, num_processes)

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        global_batch = self.batch_size * self.num_processes
        for step in range(self.start_step, self.steps):
            first = step * global_batch + self.process_index * self.batch_size
            yield [tuple(row) for row in self.order[first:first + self.batch_size]]
