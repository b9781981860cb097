"""The batches of a run, epoch after epoch, from where the run stands (a resumed run goes on in
the order its epoch began with). With ``data.decay_no_crop`` each item of a step whose learning
rate decays says so, and is resized straight to the crop size (CUT's fine-tuning data)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from .sampling import ShardedBatchSampler, epoch_order, steps_per_epoch
from .schedule import decay_start

if TYPE_CHECKING:
    from .state import Run


def epoch_batches(run: Run) -> DataLoader:
    """This process's batches of the current epoch, from where the run stands in it.

    One DataLoader serves the whole run: its batch sampler (``CurrentEpoch``) reads the epoch
    and position at each pass, so its workers persist across epochs instead of being started
    again for each (which, with few steps per epoch at a large batch, costs more than the epoch).
    """
    if run.loader is None:
        workers = run.num_workers
        # A private generator keeps DataLoader from drawing its worker seed from the global
        # RNG, which would make a resumed run's random stream differ from an uninterrupted one.
        run.loader = DataLoader(run.dataset, batch_sampler=CurrentEpoch(run), num_workers=workers,
                                pin_memory=run.accelerator.device.type == "cuda", persistent_workers=workers > 0,
                                prefetch_factor=2 if workers else None,
                                generator=torch.Generator().manual_seed(run.cfg.seed))
    return run.loader


class CurrentEpoch(Sampler[list[tuple[int, int, int]]]):
    """The run's batch sampler: each pass yields this process's share of the current epoch's
    batches (``ShardedBatchSampler``), starting where the run stands in it."""

    def __init__(self, run: Run):
        self.run = run

    def _epoch(self) -> ShardedBatchSampler:
        run = self.run
        return ShardedBatchSampler(_epoch_order(run), run.cfg.train.batch_size, run.accelerator.process_index,
                                   run.accelerator.num_processes, start_step=run.progress.position // run.global_batch)

    def __iter__(self) -> Iterator[list[tuple[int, ...]]]:
        """The epoch's batches, each item marked (a fourth element, 1) from the first step whose
        learning rate decays when ``data.decay_no_crop`` is on. Iterated when the epoch begins, so
        the step of the k-th batch is the run's step then plus k."""
        first, start = self.run.progress.step, _decay_start(self.run)
        for k, batch in enumerate(self._epoch()):
            yield batch if start is None else [(*item, int(first + k >= start)) for item in batch]

    def __len__(self) -> int:
        return len(self._epoch())


def _decay_start(run: Run) -> int | None:
    """The first step of the decay steps, when the run's data changes there; else None."""
    t = run.cfg.train
    if not run.cfg.data.decay_no_crop:
        return None
    per_epoch = steps_per_epoch(len(run.dataset), t.batch_size, run.accelerator.num_processes)
    return decay_start(t.n_epochs, per_epoch, t.max_steps, t.decay_steps)


def _epoch_order(run: Run) -> torch.Tensor:
    """The epoch's data order: the checkpoint's own copy when resuming inside that epoch."""
    epoch = run.progress.epoch
    if run.resumed_order is not None and run.resumed_order[0] == epoch:
        return run.resumed_order[1]
    return epoch_order(run.dataset.n_a, run.dataset.n_b, run.cfg.seed, epoch)
