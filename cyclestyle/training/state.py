"""The state of one training run: what ``start.py`` set up, and how far the loop has taken it."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader

from ..config import Config
from ..data import Source, UnalignedDataset
from ..evaluation.evaluate import HeldOutEvaluator
from ..run_folder import LOG, checkpoints_dir
from .checkpoint import Progress
from .methods import Method
from .samples import SampleLog
from .schedule import Plateau, scaled_lr
from .tracking import HeldOutPanels, Tracker


@dataclasses.dataclass
class LogWindow:
    """The loss terms summed since the last log record and the time their steps took: one
    image's losses are noisy, so each record shows the mean over its window."""

    start: float = dataclasses.field(default_factory=time.perf_counter)
    steps: int = 0
    sums: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        self.steps += 1
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + value.detach()

    def exclude_since(self, began: float) -> None:
        """Leave the time since ``began`` (drawing, evaluating: not training) out of the speed."""
        self.start += time.perf_counter() - began

    def close(self) -> tuple[dict[str, float], float]:
        """(each term's mean, steps per second) over the window, which starts afresh."""
        values = {k: (v / self.steps).item() for k, v in self.sums.items()}
        it_per_s = self.steps / (time.perf_counter() - self.start)
        self.start, self.steps, self.sums = time.perf_counter(), 0, {}
        return values, it_per_s


@dataclasses.dataclass
class Run:
    """One training run: what ``start.start_run`` set up, and how far the loop has taken it."""

    cfg: Config
    accelerator: Accelerator
    run_dir: Path
    sources: tuple[Source, ...]  # of the method's domains: (A, B), or (A,)
    dataset: UnalignedDataset
    evaluator: HeldOutEvaluator | None
    total_steps: int
    lr_factor: Callable[[int], float]  # of the step about to be taken (0-based)
    method: Method
    plateau: Plateau | None = None  # train.lr_policy plateau: lr_factor itself, fed each held-out evaluation
    progress: Progress = dataclasses.field(default_factory=Progress)
    # (epoch, order) of the checkpoint resumed from: that epoch goes on in the order it began with.
    resumed_order: tuple[int, torch.Tensor] | None = None
    wandb_run_id: str | None = None  # the dashboard run that this one continues
    tracker: Tracker = dataclasses.field(default_factory=Tracker)
    panels: HeldOutPanels | None = None
    samples: SampleLog | None = None  # samples/ on disk (main process; log.keep_samples > 0)
    last_record: dict[str, Any] | None = None  # the latest log record, for the samples page
    last_metrics: dict[str, Any] | None = None  # the latest held-out metrics ({"step": …, "AtoB/psnr": …})
    best: dict[str, Any] | None = None  # the best held-out evaluation so far
    last_eval: dict[str, Any] | None = None
    last_saved_step: int = -1
    # The step resumed from, until the first checkpoint: checkpoints above it are of a branch
    # that this run leaves behind, removed by that first write (``checkpoint.prune``).
    branched_from: int | None = None
    window: LogWindow = dataclasses.field(default_factory=LogWindow)
    bar: Any = None  # the progress bar (tqdm)
    num_workers: int = 0  # DataLoader workers: data.num_workers, at most the CPUs this process may use
    loader: DataLoader | None = None  # the run's one DataLoader (``batches.epoch_batches``)
    first_step_s: float | None = None  # this process's first step: with train.compile, compilation's cost

    @property
    def checkpoints_dir(self) -> Path:
        return checkpoints_dir(self.run_dir)

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG

    @property
    def global_batch(self) -> int:
        return self.cfg.train.batch_size * self.accelerator.num_processes

    @property
    def base_lr(self) -> float:
        """``train.lr`` scaled for the global batch (``train.lr_scaling``)."""
        t = self.cfg.train
        return scaled_lr(t.lr, t.lr_scaling, self.global_batch)

    def lr(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): the base rate times the schedule's factor."""
        return self.base_lr * self.lr_factor(step)

    def due(self, every: int) -> bool:
        """Whether something done every ``every`` steps, and after the last, is due now."""
        return self.progress.step % every == 0 or self.progress.step == self.total_steps

    def translators(self) -> dict[str, nn.Module]:
        """The generator of each direction the method trains (``{"AtoB": G_A, …}``), without
        accelerate's wrappers, as panels, evaluation and files take them."""
        return {direction: self.method.plain(name) for direction, name in self.method.translators.items()}

    def translator_names(self) -> tuple[str | None, str | None]:
        """The names of the A→B and B→A generators (None for a direction the method does not train)."""
        return self.method.translators.get("AtoB"), self.method.translators.get("BtoA")

    def generator_files(self) -> dict[str, nn.Module]:
        """The same generators by the name of their files (``{"G_A": …}``)."""
        translators = self.translators()
        return {name: translators[direction] for direction, name in self.method.translators.items()}
