"""Training: the run around a method's step, through accelerate.

``train`` opens a run (``start.py``: the checkpoint it resumes from, the data, the schedule, the
networks of the run's ``method``), then takes the steps of the method's algorithm (for CycleGAN,
the paper's: ``methods/cyclegan.py``) until the schedule ends. After each step it does what is
due, in this order: the log record and dashboard, the held-out evaluation (``best.py``), image
panels (on the dashboard, and in ``samples/`` with that record and evaluation: ``samples.py``), a
checkpoint (``checkpoint.py``), and stopping when asked to (``signals.py``).

The same command runs on a CPU, one GPU, or many processes under ``accelerate launch``
(``launch.py``); only the main process writes files. The main process also keeps the run's
dashboard (``tracking.py``): losses, learning rates, speed, memory and image panels in wandb.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

import torch
from tqdm.auto import tqdm

from ..config import Config, config_hash
from ..run_folder import last_good_checkpoint
from .batches import epoch_batches
from .best import evaluate_held_out, follow_plateau, report_evaluations
from .checkpoint import DataState, ProcessState, TrainingState, capture_rng_state, save_checkpoint
from .files import generator_metadata, weights_digest, write_final_generators
from .launch import any_process, gather_objects, leave_process_group, make_accelerator, output_dir_lock, \
    stop_agreement_due
from .sampling import epoch_order
from .signals import StopRequest, TrainingInterrupted
from .speed import to_memory_format
from .start import start_run
from .state import Run
from .tracking import HeldOutPanels, memory_metrics
from .update import NonFiniteLoss

FINAL_GRID_IMAGES = 16  # held-out images per domain in the dashboard's grid at the end of a run


def train(cfg: Config, resume: str | None = None) -> Path:
    """Train the networks of ``cfg.method`` as ``cfg`` says; returns the run directory.
    ``cfg`` is a checked config (``load_config``); ``resume``: ``latest`` or a checkpoint folder."""
    accelerator = make_accelerator(cfg.train.mixed_precision)
    run_dir = Path(cfg.output_dir).expanduser()
    try:
        with output_dir_lock(run_dir, accelerator):  # one run per folder, for the whole run
            _run(cfg, resume, accelerator, run_dir)
            accelerator.wait_for_everyone()  # also: gloo's threads are done with every earlier collective
    except BaseException as e:
        leave_process_group(accelerator, e)
        raise
    leave_process_group(accelerator)
    return run_dir


def _run(cfg: Config, resume: str | None, accelerator, run_dir: Path) -> None:
    """Open the run, take its steps, save and finish it (see the module docstring)."""
    run = start_run(cfg, resume, accelerator, run_dir)
    with run.tracker:  # finishes the dashboard run however training ends
        # The held-out images that every image panel of the run shows (main process only); a
        # method that learns from pairs (pix2pix) shows each image's true target beside its output.
        if run.tracker.enabled or run.samples:
            run.panels = HeldOutPanels.load(run.cfg, run.sources, truth=run.method.paired)
        try:
            with StopRequest() as stop:
                _train_until_done(run, stop)
            run.bar.close()
            if run.last_saved_step != run.progress.step:
                _save(run, "final")
        except NonFiniteLoss as e:  # the loss's name and step; the checkpoint to go back to is ours to say
            raise e.with_checkpoint(last_good_checkpoint(run.checkpoints_dir)) from None
        if run.accelerator.is_main_process:
            _finish(run)


# --------------------------------------------------------------------------------------------
# Steps, and what follows each


def _train_until_done(run: Run, stop: StopRequest) -> None:
    """Epoch after epoch of steps until the schedule's last, each followed by what is due."""
    while run.progress.step < run.total_steps:
        for batch in epoch_batches(run):
            _take_step(run, batch)
            _after_step(run, stop)
            if run.progress.step >= run.total_steps:
                return
        run.progress.epoch += 1  # the epoch's batches are exhausted
        run.progress.position = 0


def _take_step(run: Run, batch: dict[str, torch.Tensor]) -> None:
    """One step of the method's algorithm at the schedule's learning rate."""
    device, began = run.accelerator.device, time.perf_counter()
    batch = {domain: to_memory_format(images.to(device, non_blocking=True), run.cfg.train)
             for domain, images in batch.items()}
    run.method.set_lr(run.lr(run.progress.step))
    terms = run.method.step(batch, run.progress.step + 1)
    if run.first_step_s is None:  # compilation runs on the host, within the first step's calls
        run.first_step_s = time.perf_counter() - began
        if run.cfg.train.compile != "none":
            _report_compile_time(run)
    run.progress.step += 1
    run.progress.position += run.global_batch
    run.window.add(terms)
    run.bar.update(1)


def _after_step(run: Run, stop: StopRequest) -> None:
    """What is due after a step: the log record, the held-out evaluation, image panels (which
    show both), a checkpoint; then stop if any process was asked to."""
    cfg = run.cfg
    log_due, save_due = run.due(cfg.train.log_every), run.due(cfg.train.checkpoint_every)
    if log_due:
        _log_record(run)
    if run.evaluator and run.due(cfg.eval.every):
        _evaluate(run)
    if run.panels is not None and run.due(cfg.log.images_every):
        _log_panels(run)
    if save_due:
        _save(run, "periodic" if run.progress.step < run.total_steps else "final")
        run.last_saved_step = run.progress.step
    if stop_agreement_due(run.accelerator.num_processes, run.accelerator.device.type, log_due or save_due) \
            and any_process(run.accelerator, stop.signum is not None):
        _stop(run, stop.signum)


def _log_record(run: Run) -> None:
    """The window's mean losses, learning rate and speed: a line of ``log.jsonl`` and the bar
    (main process), and the dashboard with the memory in use."""
    progress, device = run.progress, run.accelerator.device
    run.method.guard.raise_if_skipped(run.accelerator, progress.step)
    values, it_per_s = run.window.close()
    record = {"step": progress.step, "epoch": progress.epoch, "lr": run.lr(progress.step - 1),
              "it_per_s": it_per_s, **values}
    if run.accelerator.is_main_process:
        run.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
        with run.log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        run.last_record = record
    run.tracker.log({**{f"loss/{k}": v for k, v in values.items()},
                     **{f"lr/{k}": u.optimizer.param_groups[0]["lr"] for k, u in run.method.updates.items()},
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
    """The held-out images as the generators translate them now, on the dashboard and in
    ``samples/`` with the latest losses and held-out metrics (``samples.py``)."""
    began, step = time.perf_counter(), run.progress.step
    translators = run.translators()
    panels = run.panels.render(translators.get("AtoB"), translators.get("BtoA"), run.accelerator.device,
                               names=run.translator_names())
    run.tracker.log(panels, step)
    if run.samples is not None:
        run.samples.add(step, panels, run.last_record, run.last_metrics)
    run.window.exclude_since(began)  # drawing is not training: keep it out of it/s


def _evaluate(run: Run) -> None:
    """The held-out evaluation, on the main process while the others wait."""
    began = time.perf_counter()
    if run.accelerator.is_main_process:
        evaluate_held_out(run)
    run.accelerator.wait_for_everyone()
    if run.plateau is not None:
        follow_plateau(run)
    run.window.exclude_since(began)


def _save(run: Run, reason: str) -> Path:
    """Gather every process's RNG and pools; the main process writes the checkpoint."""
    accelerator, step = run.accelerator, run.progress.step
    run.method.guard.raise_if_skipped(accelerator, step)  # no checkpoint after a NaN
    own = ProcessState(capture_rng_state(), {k: p.state_dict() for k, p in run.method.pools.items()},
                       weights_digest(run.method.networks.values()))
    states = gather_objects(accelerator, own)
    if len({s.weights_digest for s in states}) > 1:
        # Synchronised gradients and identical starts keep every replica identical; if they
        # are not, something (a non-deterministic op, a bad launch) broke data parallelism.
        accelerator.print(f"warning: the processes' weights differ at step {step} (checkpointing process 0's)")
    path = run.checkpoints_dir / f"step-{step}"
    if accelerator.is_main_process:
        weights = {name: accelerator.unwrap_model(net).state_dict() for name, net in run.method.networks.items()}
        path = save_checkpoint(run.checkpoints_dir, weights, _training_state(run, reason), states,
                               keep=run.cfg.train.keep_checkpoints, metadata=generator_metadata(run.cfg, step),
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
        wandb_run_id=run.tracker.run_id or run.wandb_run_id, mixed_precision=run.accelerator.mixed_precision,
        lr_state=run.plateau.state_dict() if run.plateau else None)


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
    write_final_generators(run_dir, files, generator_metadata(cfg, step))
    if run.tracker.enabled:  # the final held-out grid, larger than the periodic panels
        final = HeldOutPanels.load(cfg, run.sources, count=FINAL_GRID_IMAGES, truth=run.method.paired)
        translators = run.translators()
        run.tracker.log(final.render(translators.get("AtoB"), translators.get("BtoA"), run.accelerator.device,
                                     prefix="final", names=run.translator_names()), step)
    if run.last_eval is not None:
        report_evaluations(run.last_eval, run.best, cfg.eval.metric, run.checkpoints_dir, run.tracker)
    if cfg.wandb.log_model:
        run.tracker.log_model([run_dir / f"{name}.safetensors" for name in files] + [run_dir / "config.yaml"], step)
    names = " and ".join(f"{name}.safetensors" for name in files)
    run.accelerator.print(f"done: {step} steps; generators in {run_dir}/{names}")
