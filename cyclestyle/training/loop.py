"""Training: the run around a method's step, through accelerate.

``train`` opens a run (the checkpoint it resumes from, the data, the schedule, the networks of
the run's ``method``, see ``methods``), then takes the steps of the method's algorithm (for
CycleGAN, the paper's: ``methods/cyclegan.py``) until the schedule ends.
After each step it does what is due, in this order: the log record and dashboard, image panels,
the held-out evaluation, a checkpoint (``checkpoint``), and stopping when asked to.

The same command runs on a CPU, one GPU, or many processes under ``accelerate launch``
(``launch``); only the main process writes files. The main process also keeps the run's
dashboard (``tracking``): losses, learning rates, speed, memory and image panels in wandb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, NoReturn

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..config import Config, ConfigError, TrainConfig, config_hash, config_to_dict, dump_config
from ..data import Source, UnalignedDataset, open_domains
from ..evaluation.evaluate import HeldOutEvaluator, flat_metrics, is_better, score
from ..models import generator_size_multiple
from ..models.weights import save_weights, weights_metadata
from .checkpoint import (
    BEST,
    Checkpoint,
    DataState,
    ProcessState,
    Progress,
    TrainingState,
    aside,
    capture_rng_state,
    list_checkpoints,
    load_checkpoint,
    read_best,
    resolve_checkpoint,
    restore_rng_state,
    save_checkpoint,
    write_best,
)
from .launch import LaunchError, any_process, gather_objects, make_accelerator  # noqa: F401 (LaunchError: for cli)
from .lock import OutputDirBusy, OutputDirLock, busy_message
from .recovery import recover_run_folder
from .methods import Method, method_class
from .sampling import ShardedBatchSampler, epoch_order, steps_per_epoch
from .schedule import epoch_lr_factor, scaled_lr, step_lr_factor
from .speed import check_channels_last, configure_backends, speed_up, to_memory_format
from .step import NonFiniteLoss  # noqa: F401 (for cli)
from .tracking import HeldOutPanels, Tracker, memory_metrics, open_tracker

FINAL_GRID_IMAGES = 16  # held-out images per domain in the dashboard's grid at the end of a run
FINAL_GENERATORS = ("G_A.safetensors", "G_B.safetensors")  # what a finished run leaves in its folder


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run can be resumed."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; checkpoint saved to {checkpoint}")


class StopRequest:
    """Records SIGINT/SIGTERM instead of dying mid-step; a second Ctrl-C stops at once (the last
    checkpoint written is complete either way, since checkpoints are written atomically)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# The run


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
    """One training run: what ``_start_run`` set up, and how far the loop has taken it."""

    cfg: Config
    accelerator: Accelerator
    run_dir: Path
    sources: tuple[Source, ...]  # of the method's domains: (A, B), or (A,)
    dataset: UnalignedDataset
    evaluator: HeldOutEvaluator | None
    total_steps: int
    lr_factor: Callable[[int], float]  # of the step about to be taken (0-based)
    method: Method
    progress: Progress = dataclasses.field(default_factory=Progress)
    # (epoch, order) of the checkpoint resumed from: that epoch goes on in the order it began with.
    resumed_order: tuple[int, torch.Tensor] | None = None
    wandb_run_id: str | None = None  # the dashboard run that this one continues
    tracker: Tracker = dataclasses.field(default_factory=Tracker)
    panels: HeldOutPanels | None = None
    best: dict[str, Any] | None = None  # the best held-out evaluation so far
    last_eval: dict[str, Any] | None = None
    last_saved_step: int = -1
    # The step resumed from, until the first checkpoint: checkpoints above it are of a branch
    # that this run leaves behind, removed by that first write (``checkpoint.prune``).
    branched_from: int | None = None
    window: LogWindow = dataclasses.field(default_factory=LogWindow)
    bar: Any = None  # the progress bar (tqdm)
    num_workers: int = 0  # DataLoader workers: data.num_workers, at most the CPUs this process may use
    loader: DataLoader | None = None  # the run's one DataLoader (``_epoch_batches``)
    first_step_s: float | None = None  # this process's first step: with train.compile, compilation's cost

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.jsonl"

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
        networks = self.method.networks
        return {direction: self.accelerator.unwrap_model(networks[name])
                for direction, name in self.method.translators.items()}

    def generator_files(self) -> dict[str, nn.Module]:
        """The same generators by the name of their files (``{"G_A": …}``)."""
        translators = self.translators()
        return {name: translators[direction] for direction, name in self.method.translators.items()}


def train(cfg: Config, resume: str | None = None) -> Path:
    """Train the networks of ``cfg.method`` as ``cfg`` says; returns the run directory."""
    accelerator = make_accelerator(cfg.train.mixed_precision)
    run_dir = Path(cfg.output_dir).expanduser()
    try:
        with _output_dir_lock(run_dir, accelerator):  # one run per folder, for the whole run
            _run(cfg, resume, accelerator, run_dir)
            accelerator.wait_for_everyone()  # also: gloo's threads are done with every earlier collective
    except BaseException as e:
        _leave_process_group(accelerator, e.__traceback__)
        raise
    _leave_process_group(accelerator)
    return run_dir


def _run(cfg: Config, resume: str | None, accelerator: Accelerator, run_dir: Path) -> None:
    """Open the run, take its steps, save and finish it (see the module docstring)."""
    run = _start_run(cfg, resume, accelerator, run_dir)
    with run.tracker:  # finishes the dashboard run however training ends
        # The held-out images that every image panel of the run shows (main process only).
        run.panels = HeldOutPanels.load(cfg, run.sources) if run.tracker.enabled else None
        with StopRequest() as stop:
            _train_until_done(run, stop)
        run.bar.close()
        if run.last_saved_step != run.progress.step:
            _save(run, "final")
        if run.accelerator.is_main_process:
            _finish(run)


def _leave_process_group(accelerator: Accelerator, failure: TracebackType | None = None) -> None:
    """Destroy the process group, however the run ended, once nothing else holds it.

    Gloo's worker threads free each finished collective's tensors, and a tensor that Python let
    go of first needs the GIL for that. A process that exits with its group alive can reach that
    while the interpreter is finalizing: the thread is then stopped inside a destructor, and the
    process aborts ("terminate called without an active exception") after training has ended.
    The networks wrapped for data parallelism hold the group too (in the frames of ``failure``
    when a run stops on an exception), so they go first: then ``destroy_process_group`` lets the
    last reference go, which joins gloo's threads while Python is alive.
    """
    if accelerator.num_processes == 1:
        accelerator.end_training()
        return
    if failure is not None:
        traceback.clear_frames(failure)  # the run's locals; the exception keeps its lines
    accelerator.free_memory()  # accelerate's references to the wrapped networks and optimizers
    accelerator.end_training()  # destroy_process_group


# --------------------------------------------------------------------------------------------
# Opening a run: what can fail cheaply fails first


@contextlib.contextmanager
def _output_dir_lock(run_dir: Path, accelerator: Accelerator) -> Iterator[None]:
    """Hold ``run_dir``'s lock (main process) while the block runs; every process stops with
    ``OutputDirBusy`` when another run holds it."""
    lock, busy = None, None
    if accelerator.is_main_process:
        try:
            lock = OutputDirLock.acquire(run_dir)
        except OutputDirBusy as e:
            busy = e
    if any_process(accelerator, busy is not None):
        raise busy or OutputDirBusy(busy_message(run_dir))
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _start_run(cfg: Config, resume: str | None, accelerator: Accelerator, run_dir: Path) -> Run:
    """The checkpoint to resume from, the data, the schedule, then the networks and the state."""
    checkpoint = _checkpoint_to_resume(run_dir, resume, accelerator)
    # Data first: a bad folder should fail before any model is built.
    m, method = cfg.model, method_class(cfg.method)
    sources = open_domains(cfg.data, cfg.data.train_split, channels=m.in_channels, channels_b=m.out_channels,
                           domains=method.domains)
    source_b = sources[1] if len(sources) > 1 else None  # a one-domain method has no B
    dataset = UnalignedDataset(sources[0], source_b, cfg.data, channels=m.in_channels, channels_b=m.out_channels,
                               size_multiple=generator_size_multiple(m))
    evaluator = HeldOutEvaluator(cfg, accelerator.device, load_extractor=accelerator.is_main_process) \
        if cfg.eval.every else None
    total_steps, lr_factor = _schedule(cfg.train, len(dataset), accelerator.num_processes)

    configure_backends(accelerator.device, cfg.train)
    check_channels_last(accelerator.device, cfg.train.channels_last)
    set_seed(cfg.seed)  # the same initial weights on every process
    networks = method.build_networks(cfg)
    saved = load_checkpoint(checkpoint) if checkpoint else None
    if saved:
        saved.load_networks(networks)
    networks = {name: speed_up(net, cfg.train, accelerator.device) for name, net in networks.items()}
    run = Run(cfg, accelerator, run_dir, sources, dataset, evaluator, total_steps, lr_factor,
              method.prepare(accelerator, networks, cfg, accelerator.process_index),
              num_workers=_data_workers(cfg.data.num_workers, accelerator))
    _note_lr_scaling(run)
    if saved:
        _resume(run, saved)
    else:
        set_seed(cfg.seed + accelerator.process_index)  # different dropout / pool draws per process, same weights
    _open_outputs(run, resumed=saved is not None)
    return run


def _note_lr_scaling(run: Run) -> None:
    """One line with the learning rate that ``train.lr_scaling`` made of ``train.lr``."""
    t = run.cfg.train
    if t.lr_scaling != "none":
        run.accelerator.print(
            f"note: train.lr_scaling={t.lr_scaling}: train.lr {t.lr:g} becomes {run.base_lr:g} for "
            f"{run.global_batch} images per step "
            f"(batch {t.batch_size} × {run.accelerator.num_processes} processes)")


def _checkpoint_to_resume(run_dir: Path, resume: str | None, accelerator: Accelerator) -> Path | None:
    """The checkpoint ``resume`` names; a new run refuses an output_dir that holds checkpoints,
    or, without ``--resume``, a trained run's final generators (which it would overwrite)."""
    checkpoints_dir = run_dir / "checkpoints"
    checkpoint = resolve_checkpoint(checkpoints_dir, resume) if resume else None
    if resume and checkpoint is None:
        accelerator.print(f"no checkpoint under {checkpoints_dir} yet: starting a new run")
    if checkpoint is None and list_checkpoints(checkpoints_dir):
        raise ConfigError(
            f"output_dir {run_dir} already holds checkpoints; pass --resume latest to continue it, "
            "or choose another output_dir")
    if resume is None and (checkpoints_dir / BEST).is_dir():  # the first evaluation would replace it
        raise ConfigError(
            f"output_dir {run_dir} holds the best generators of an earlier run ({checkpoints_dir / BEST}); "
            "choose another output_dir, move that folder away, or pass --resume latest to keep training over it")
    generators = [name for name in FINAL_GENERATORS if (run_dir / name).exists()]
    if resume is None and generators:
        raise ConfigError(
            f"output_dir {run_dir} already holds trained generators ({', '.join(generators)}) and no checkpoint; "
            "choose another output_dir, or pass --resume latest to train a new run over them")
    return checkpoint


def _schedule(t: TrainConfig, images: int, processes: int) -> tuple[int, Callable[[int], float]]:
    """(total steps, learning-rate factor of each step): in steps when ``max_steps`` is set, else
    the paper's epochs (§4: constant, then decaying linearly to zero)."""
    per_epoch = steps_per_epoch(images, t.batch_size, processes)
    if per_epoch == 0:
        raise ConfigError(
            f"train.batch_size={t.batch_size} × {processes} processes exceeds the {images} images per epoch")
    if t.max_steps is not None:
        decay = t.decay_steps if t.decay_steps is not None else t.max_steps // 2
        return t.max_steps, step_lr_factor(t.max_steps, decay)
    return (t.n_epochs + t.n_epochs_decay) * per_epoch, epoch_lr_factor(t.n_epochs, t.n_epochs_decay, per_epoch)


def _resume(run: Run, saved: Checkpoint) -> None:
    """Take up where ``saved`` left off: optimizers, progress, and this process's RNG and pools."""
    state, accelerator = saved.state, run.accelerator
    saved.check_data(run.dataset.n_a, run.dataset.n_b)
    run.method.load_optimizer_states(state.optimizers, state.scalers)
    run.progress = state.progress
    run.branched_from = state.progress.step
    run.resumed_order = (state.progress.epoch, state.data.order)
    run.wandb_run_id = state.wandb_run_id
    if state.mixed_precision not in (None, accelerator.mixed_precision):
        accelerator.print(f"note: the checkpoint was trained with mixed_precision {state.mixed_precision}; "
                          f"train.mixed_precision={run.cfg.train.mixed_precision} continues it with "
                          f"{accelerator.mixed_precision} here")
    if run.progress.position % run.global_batch:
        accelerator.print(f"warning: resuming with {accelerator.num_processes} processes × batch "
                          f"{run.cfg.train.batch_size}; {run.progress.position % run.global_batch} images "
                          "of the current batch are drawn again")
    # Each process takes back its own RNG and pools; extra processes start from process 0's pools.
    own = saved.process(accelerator.process_index)
    restore_rng_state(own.rng)
    for name, pool in run.method.pools.items():
        pool.load_state_dict(own.pools[name], accelerator.device)
    accelerator.print(f"resumed from {saved.path} at step {run.progress.step} (epoch {run.progress.epoch})")


def _open_outputs(run: Run, resumed: bool) -> None:
    """The run folder and its config, the dashboard, the best evaluation so far, the progress bar."""
    cfg, accelerator, is_main = run.cfg, run.accelerator, run.accelerator.is_main_process
    if is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run.run_dir, cfg, accelerator)
        recover_run_folder(run.run_dir, run.progress.step, accelerator.print)  # killed processes' leftovers
    if run.progress.step < run.total_steps:  # a finished run that is resumed has nothing to show
        run.tracker = open_tracker(cfg, run.run_dir, is_main=is_main, resume_id=run.wandb_run_id)
    if run.evaluator:
        run.best = _previous_best(run.checkpoints_dir, run.evaluator, accelerator)
        if is_main:
            for note in run.evaluator.notes:
                tqdm.write(f"note: {note}", file=sys.stderr)
    run.bar = tqdm(total=run.total_steps, initial=run.progress.step, disable=not is_main, desc="train",
                   unit="step", dynamic_ncols=True)
    run.last_saved_step = run.progress.step if resumed else -1
    run.window = LogWindow()


# --------------------------------------------------------------------------------------------
# Steps, and what follows each


def _train_until_done(run: Run, stop: StopRequest) -> None:
    """Epoch after epoch of steps until the schedule's last, each followed by what is due."""
    while run.progress.step < run.total_steps:
        for batch in _epoch_batches(run):
            _take_step(run, batch)
            _after_step(run, stop)
            if run.progress.step >= run.total_steps:
                return
        run.progress.epoch += 1  # the epoch's batches are exhausted
        run.progress.position = 0


def _epoch_batches(run: Run) -> DataLoader:
    """This process's batches of the current epoch, from where the run stands in it.

    One DataLoader serves the whole run: its batch sampler (``_CurrentEpoch``) reads the epoch
    and position at each pass, so its workers persist across epochs instead of being started
    again for each (which, with few steps per epoch at a large batch, costs more than the epoch).
    """
    if run.loader is None:
        workers = run.num_workers
        # A private generator keeps DataLoader from drawing its worker seed from the global
        # RNG, which would make a resumed run's random stream differ from an uninterrupted one.
        run.loader = DataLoader(run.dataset, batch_sampler=_CurrentEpoch(run), num_workers=workers,
                                pin_memory=run.accelerator.device.type == "cuda", persistent_workers=workers > 0,
                                prefetch_factor=2 if workers else None,
                                generator=torch.Generator().manual_seed(run.cfg.seed))
    return run.loader


class _CurrentEpoch(Sampler[list[tuple[int, int, int]]]):
    """The run's batch sampler: each pass yields this process's share of the current epoch's
    batches (``ShardedBatchSampler``), starting where the run stands in it."""

    def __init__(self, run: Run):
        self.run = run

    def _epoch(self) -> ShardedBatchSampler:
        run = self.run
        return ShardedBatchSampler(_epoch_order(run), run.cfg.train.batch_size, run.accelerator.process_index,
                                   run.accelerator.num_processes, start_step=run.progress.position // run.global_batch)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self._epoch())

    def __len__(self) -> int:
        return len(self._epoch())


def _data_workers(requested: int, accelerator: Accelerator) -> int:
    """``data.num_workers``, but no more than the CPUs this process may run on (one note says so).

    More workers than CPUs only share them: nothing is faster, every worker costs its memory, and
    torch warns at every epoch's DataLoader. The CPUs are the process's affinity mask where the
    system has one (a container's or a cluster job's share), as torch's own check counts them."""
    available = _usable_cpus()
    if requested <= available:
        return requested
    if accelerator.is_main_process:
        cpus = "1 CPU is" if available == 1 else f"{available} CPUs are"
        tqdm.write(f"note: data.num_workers={requested} but {cpus} available: using {available}", file=sys.stderr)
    return available


def _usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, or the machine's count where the
    system has no masks (macOS, Windows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _epoch_order(run: Run) -> torch.Tensor:
    """The epoch's data order: the checkpoint's own copy when resuming inside that epoch."""
    epoch = run.progress.epoch
    if run.resumed_order is not None and run.resumed_order[0] == epoch:
        return run.resumed_order[1]
    return epoch_order(run.dataset.n_a, run.dataset.n_b, run.cfg.seed, epoch)


def _take_step(run: Run, batch: dict[str, torch.Tensor]) -> None:
    """One step of the method's algorithm at the schedule's learning rate."""
    device, began = run.accelerator.device, time.perf_counter()
    batch = {domain: to_memory_format(images.to(device, non_blocking=True), run.cfg.train)
             for domain, images in batch.items()}
    run.method.set_lr(run.lr(run.progress.step))
    terms = run.method.step(run.accelerator, batch, run.progress.step + 1, run.checkpoints_dir)
    if run.first_step_s is None:  # compilation runs on the host, within the first step's calls
        run.first_step_s = time.perf_counter() - began
        if run.cfg.train.compile != "none":
            _report_compile_time(run)
    run.progress.step += 1
    run.progress.position += run.global_batch
    run.window.add(terms)
    run.bar.update(1)


def _after_step(run: Run, stop: StopRequest) -> None:
    """What is due after a step: the log record, image panels, the held-out evaluation, a
    checkpoint; then stop if any process was asked to."""
    cfg = run.cfg
    log_due, save_due = run.due(cfg.train.log_every), run.due(cfg.train.checkpoint_every)
    if log_due:
        _log_record(run)
    if run.panels is not None and run.due(cfg.log.images_every):
        _log_panels(run)
    if run.evaluator and run.due(cfg.eval.every):
        _evaluate(run)
    if save_due:
        _save(run, "periodic" if run.progress.step < run.total_steps else "final")
        run.last_saved_step = run.progress.step
    if stop_agreement_due(run.accelerator.num_processes, run.accelerator.device.type, log_due or save_due) \
            and any_process(run.accelerator, stop.signum is not None):
        _stop(run, stop.signum)


def stop_agreement_due(processes: int, device_type: str, at_record: bool) -> bool:
    """Whether the processes agree now on whether to stop (a Ctrl-C reaches each at its own time,
    and all must save the same step). One process needs no agreement. Several on CPUs agree after
    every step: their collective costs little. On GPUs the agreement reads a value back from the
    device, a wait for all queued work, so they agree only at log records and checkpoints, which
    wait anyway: no step waits for the device, and a Ctrl-C stops within train.log_every steps."""
    return processes == 1 or device_type == "cpu" or at_record


def _log_record(run: Run) -> None:
    """The window's mean losses, learning rate and speed: a line of ``log.jsonl`` and the bar
    (main process), and the dashboard with the memory in use."""
    progress, device = run.progress, run.accelerator.device
    run.method.guard.raise_if_skipped(run.accelerator, progress.step, run.checkpoints_dir)
    values, it_per_s = run.window.close()
    record = {"step": progress.step, "epoch": progress.epoch, "lr": run.lr(progress.step - 1),
              "it_per_s": it_per_s, **values}
    if run.accelerator.is_main_process:
        run.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
        with run.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
    run.tracker.log({**{f"loss/{k}": v for k, v in values.items()},
                     **{f"lr/{k}": o.param_groups[0]["lr"] for k, o in run.method.optimizers.items()},
                     "perf/it_per_s": it_per_s,
                     "perf/images_per_s": it_per_s * run.global_batch,  # of each domain
                     "epoch": progress.epoch, **memory_metrics(device)}, progress.step)


def _report_compile_time(run: Run) -> None:
    """One line (and the dashboard's summary): what the first, compiling step cost."""
    if run.accelerator.is_main_process:
        tqdm.write(f"note: train.compile={run.cfg.train.compile}: the first step took {run.first_step_s:.1f} s, "
                   "compilation included (the first log record's speed includes it)", file=sys.stderr)
        run.tracker.summarize({"perf/first_step_s": run.first_step_s})


def _log_panels(run: Run) -> None:
    """The held-out images as the generators translate them now, on the dashboard."""
    began = time.perf_counter()
    translators = run.translators()
    run.tracker.log(run.panels.render(translators.get("AtoB"), translators.get("BtoA"), run.accelerator.device),
                    run.progress.step)
    run.window.exclude_since(began)  # drawing is not training: keep it out of it/s


def _evaluate(run: Run) -> None:
    """The held-out evaluation, on the main process while the others wait."""
    began = time.perf_counter()
    if run.accelerator.is_main_process:
        _evaluate_held_out(run)
    run.accelerator.wait_for_everyone()
    run.window.exclude_since(began)


def _save(run: Run, reason: str) -> Path:
    """Gather every process's RNG and pools; the main process writes the checkpoint."""
    accelerator, step = run.accelerator, run.progress.step
    run.method.guard.raise_if_skipped(accelerator, step, run.checkpoints_dir)  # no checkpoint after a NaN
    own = ProcessState(capture_rng_state(), {k: p.state_dict() for k, p in run.method.pools.items()},
                       _weights_digest(run.method.networks.values()))
    states = gather_objects(accelerator, own)
    if len({s.weights_digest for s in states}) > 1:
        # Synchronised gradients and identical starts keep every replica identical; if they
        # are not, something (a non-deterministic op, a bad launch) broke data parallelism.
        accelerator.print(f"warning: the processes' weights differ at step {step} (checkpointing process 0's)")
    path = run.checkpoints_dir / f"step-{step}"
    if accelerator.is_main_process:
        weights = {name: accelerator.unwrap_model(net).state_dict() for name, net in run.method.networks.items()}
        path = save_checkpoint(run.checkpoints_dir, weights, _training_state(run, reason), states,
                               keep=run.cfg.train.keep_checkpoints, metadata=_generator_metadata(run.cfg, step),
                               branched_from=run.branched_from)
    run.branched_from = None  # the branch left behind is gone with this first checkpoint
    accelerator.wait_for_everyone()
    return path


def _training_state(run: Run, reason: str) -> TrainingState:
    """What ``training_state.pt`` keeps of the run now."""
    progress, dataset, seed = run.progress, run.dataset, run.cfg.seed
    optimizers, scalers = run.method.optimizer_states()
    return TrainingState(
        progress=progress, optimizers=optimizers, scalers=scalers,
        data=DataState(dataset.n_a, dataset.n_b, seed, epoch_order(dataset.n_a, dataset.n_b, seed, progress.epoch)),
        lr_factor=run.lr_factor(progress.step) if progress.step < run.total_steps else 0.0,
        num_processes=run.accelerator.num_processes, config_hash=config_hash(run.cfg), reason=reason,
        # The dashboard run --resume continues (the checkpoint's own when none is open now).
        wandb_run_id=run.tracker.run_id or run.wandb_run_id, mixed_precision=run.accelerator.mixed_precision)


def _stop(run: Run, signum: int | None) -> NoReturn:
    """Save the step just taken, unless it is saved already, and raise ``TrainingInterrupted``."""
    path = run.checkpoints_dir / f"step-{run.progress.step}"
    if run.last_saved_step != run.progress.step:
        path = _save(run, "interrupted")
    run.bar.close()
    raise TrainingInterrupted(signum or signal.SIGTERM, run.progress.step, path)


def _finish(run: Run) -> None:
    """The final generators, the dashboard's last grid, evaluations and model, and a last line."""
    cfg, step, run_dir = run.cfg, run.progress.step, run.run_dir
    files = run.generator_files()
    _write_final_generators(run_dir, files, _generator_metadata(cfg, step))
    if run.tracker.enabled:  # the final held-out grid, larger than the periodic panels
        final = HeldOutPanels.load(cfg, run.sources, count=FINAL_GRID_IMAGES)
        translators = run.translators()
        run.tracker.log(final.render(translators.get("AtoB"), translators.get("BtoA"), run.accelerator.device,
                                     prefix="final"), step)
    if run.last_eval is not None:
        _report_evaluations(run.last_eval, run.best, cfg.eval.metric, run.checkpoints_dir, run.tracker)
    if cfg.wandb.log_model:
        run.tracker.log_model([run_dir / f"{name}.safetensors" for name in files] + [run_dir / "config.yaml"], step)
    names = " and ".join(f"{name}.safetensors" for name in files)
    run.accelerator.print(f"done: {step} steps; generators in {run_dir}/{names}")


# --------------------------------------------------------------------------------------------
# Held-out evaluation and the best generators


def _evaluate_held_out(run: Run) -> None:
    """Evaluate on the held-out subset, log it, and keep the generators if they are the best yet."""
    evaluator, step = run.evaluator, run.progress.step
    translators = run.translators()
    result = evaluator(translators.get("AtoB"), translators.get("BtoA"))
    result.step = step
    record = {"metric": evaluator.metric, "value": score(result, evaluator.metric), "step": step,
              "setting": evaluator.setting, "evaluation": result.to_json()}
    if is_better(record["value"], run.best["value"] if run.best else None, evaluator.metric):
        try:
            write_best(run.checkpoints_dir, {k: g.state_dict() for k, g in run.generator_files().items()}, record,
                       _generator_metadata(run.cfg, step))
            run.best = record
        except OSError as e:  # a full disk costs this best, not the run (the previous best is intact)
            tqdm.write(f"warning: could not write {run.checkpoints_dir / BEST} at step {step}: {e.strerror or e}; "
                       "the previous best is kept", file=sys.stderr)
    values = flat_metrics(result)
    with run.log_path.open("a") as f:
        f.write(json.dumps({"step": step, "eval": values}) + "\n")
    logged: dict[str, Any] = {f"eval/{k}": v for k, v in values.items()}
    if run.best is not None:
        logged[f"eval/best_{evaluator.metric}"] = run.best["value"]
    run.tracker.log(logged, step)
    run.last_eval = record


def _previous_best(checkpoints_dir: Path, evaluator: HeldOutEvaluator, accelerator: Accelerator
                   ) -> dict[str, Any] | None:
    """The best evaluation of an earlier part of this run, if its value can be set beside this
    run's: chosen by the same metric, in the same setting (``held_out_setting``: the held-out
    images, the FID protocol and network, the true translations). Otherwise one note says why,
    and the next evaluation replaces it.

    A best written before the setting was recorded has none: nothing shows that it was measured
    as this run measures, and a stale value that no new evaluation can beat (a legacy FID beside
    clean ones) would keep the run's real best from ever being saved, so it counts as not
    comparable too."""
    best = read_best(checkpoints_dir)
    if best is None:
        return None
    if best.get("metric") != evaluator.metric:
        accelerator.print(f"note: {checkpoints_dir / BEST} was chosen by {best.get('metric')}, not eval.metric "
                          f"{evaluator.metric}: the next evaluation replaces it")
        return None
    differs = _setting_differences(best.get("setting"), evaluator.setting)
    if differs:
        accelerator.print(f"note: {checkpoints_dir / BEST / 'metrics.json'} is not comparable with this run's "
                          f"evaluations ({differs}): the next evaluation replaces it")
        return None
    return best


def _setting_differences(recorded: Any, current: dict[str, Any]) -> str:
    """What differs between a best's recorded setting and this run's, as ``key=old (now new)``
    items; empty when nothing does."""
    if not isinstance(recorded, dict):
        return "it records no evaluation setting: written by an older version"
    keys = sorted(recorded.keys() | current.keys())
    return ", ".join(f"{k}={recorded.get(k)} (now {current.get(k)})" for k in keys if recorded.get(k) != current.get(k))


def _report_evaluations(last: dict[str, Any], best: dict[str, Any] | None, metric: str, checkpoints_dir: Path,
                        tracker: Tracker) -> None:
    """Both results: the last generators (what the run ends with) and the best (what papers quote)."""
    def fmt(value: float | None) -> str:
        return "not computed" if value is None else f"{value:.4g}"

    line = f"held-out {metric}: last (step {last['step']}) {fmt(last['value'])}"
    if best is not None:
        line += f"; best (step {best['step']}) {fmt(best['value'])}, generators in {checkpoints_dir / BEST}"
        tracker.summarize({f"best/{metric}": best["value"], "best/step": best["step"]})
    print(line)
    tracker.summarize({f"last/{metric}": last["value"], "last/step": last["step"]})
    protocol = last.get("evaluation", {}).get("fid_protocol")
    if protocol:  # which published tables the run's FIDs can be set beside
        tracker.summarize({"eval/fid_protocol": protocol})


# --------------------------------------------------------------------------------------------
# Files of the run


def _generator_metadata(cfg: Config, step: int) -> dict[str, dict[str, str]]:
    """The metadata of each network's weights file (by name: G_A …), in checkpoints, the best and
    the final generators: the run's model config, the step, and the network's own architecture
    name and arguments, so that any file rebuilds its network alone."""
    model = config_to_dict(cfg)["model"]
    specs = method_class(cfg.method).network_specs(cfg)
    return {name: weights_metadata(model, step, specs.get(name)) for name in specs}


def _weights_digest(nets: Iterable[nn.Module]) -> str:
    """A hash of every parameter and buffer, to check that all processes hold the same weights."""
    h = hashlib.sha256()
    for net in nets:
        for t in net.state_dict().values():
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _write_config(run_dir: Path, cfg: Config, accelerator: Accelerator) -> None:
    path = run_dir / "config.yaml"
    text = dump_config(cfg)
    if path.exists() and path.read_text() != text:
        accelerator.print(f"note: the config differs from the one in {path}; the new one replaces it "
                          f"(the old one is kept as config.previous.yaml)")
        path.replace(run_dir / "config.previous.yaml")
    path.write_text(text)


def _write_final_generators(run_dir: Path, generators: dict[str, nn.Module],
                            metadata: dict[str, dict[str, str]]) -> None:
    """``G_A.safetensors`` (and ``G_B.safetensors`` for a method that trains both directions)
    beside ``config.yaml``: all that translation needs. Written aside under a name of this
    process's own, then renamed into place."""
    for name, net in generators.items():
        final = run_dir / f"{name}.safetensors"
        tmp = aside(final)
        save_weights(tmp, net.state_dict(), metadata[name])
        tmp.replace(final)
