"""Opening a run: the checkpoint it resumes from, its data, schedule, networks and method, and
its outputs. What can fail cheaply fails first: a bad folder before any model is built."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from ..config import Config, ConfigError, lookup, split_metric, with_values
from ..data import PairedDataset, UnalignedDataset, open_domains
from ..evaluation import registry as metrics_registry
from ..evaluation.evaluate import HeldOutEvaluator
from ..models import generator_size_multiple
from ..run_folder import BEST, CONFIG, checkpoints_dir, generator_files, list_checkpoints, resolve_checkpoint
from .best import previous_best
from .checkpoint import Checkpoint, load_checkpoint, restore_rng_state
from .files import write_config
from .init_from import InitSource, load_initial_weights, resolve_init_source, source_sampling
from .launch import data_workers
from .recovery import recover_run_folder
from .methods import METHODS, Method
from .sampling import steps_per_epoch
from .samples import SampleLog, samples_dir
from .schedule import Plateau, cosine_factor, epoch_lr_factor, scaled_lr, step_decay_factor, step_lr_factor
from .speed import check_channels_last, configure_backends, speed_up
from .state import LogWindow, Run
from .tracking import open_tracker


def start_run(cfg: Config, resume: str | None, accelerator: Accelerator, run_dir: Path) -> Run:
    """The checkpoint to resume from, the data, the schedule, then the networks and the state."""
    checkpoint = _checkpoint_to_resume(run_dir, resume, accelerator)
    method = METHODS.get(cfg.method)
    init = _init_source(cfg, checkpoint, accelerator)
    cfg = _filled(cfg, method, run_dir, checkpoint, init)
    dataset, sources = _open_data(cfg, method)
    evaluator = HeldOutEvaluator(cfg, accelerator.device, load_extractor=accelerator.is_main_process) \
        if cfg.eval.every else None
    total_steps, lr_factor = _schedule(cfg, len(dataset), accelerator.num_processes)
    saved = load_checkpoint(checkpoint) if checkpoint else None
    run = Run(cfg, accelerator, run_dir, sources, dataset, evaluator, total_steps, lr_factor,
              _make_method(method, cfg, accelerator, saved, init),
              num_workers=data_workers(cfg.data.num_workers, accelerator))
    run.plateau = lr_factor if isinstance(lr_factor, Plateau) else None
    _note_lr_scaling(run)
    if saved:
        _resume(run, saved)
    else:
        # different dropout / pool draws per process, same weights; NumPy takes seeds below 2**32
        set_seed((cfg.seed + accelerator.process_index) % 2**32)
    _open_outputs(run, resumed=saved is not None)
    return run


def _filled(cfg: Config, method: type[Method], run_dir: Path, checkpoint: Path | None,
            init: InitSource | None) -> Config:
    """``cfg`` with the keys it leaves to the method filled in (``Method.with_defaults``): from the
    run's recorded config when it resumes; for a run started from other weights, the anti-aliasing
    of the source's generator (so that a CycleGAN run's weights start a CUT run), the method's
    values for the rest."""
    if checkpoint is not None:
        return method.with_defaults(cfg, recorded_config(run_dir))
    if init is not None:
        cfg = with_values(cfg, {key: value for key, value in source_sampling(init).items() if lookup(cfg, key) is None})
    return method.with_defaults(cfg)


def recorded_config(run_dir: Path) -> dict:
    """The run's config.yaml as written (plain YAML, not checked), or {} when it has none: what
    a resumed run takes the keys it leaves to the method from (``Method.with_defaults``)."""
    try:
        loaded = yaml.safe_load((run_dir / CONFIG).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _open_data(cfg: Config, method: type[Method]) -> tuple[UnalignedDataset, tuple]:
    """The training images of the method's domains: (A, B), or (A,); pairs for a paired method."""
    m = cfg.model
    sources = open_domains(cfg.data, cfg.data.train_split, channels=m.in_channels, channels_b=m.out_channels,
                           domains=method.domains)
    source_b = sources[1] if len(sources) > 1 else None  # a one-domain method has no B
    kind = PairedDataset if method.paired else UnalignedDataset
    dataset = kind(sources[0], source_b, cfg.data, channels=m.in_channels, channels_b=m.out_channels,
                   size_multiple=generator_size_multiple(m))
    return dataset, sources


def _init_source(cfg: Config, checkpoint: Path | None, accelerator: Accelerator) -> InitSource | None:
    """The weights a new run starts from (``train.init_from``), found (or downloaded) by the main
    process first; a resumed run goes on from its checkpoint instead."""
    init = cfg.train.init_from
    if init is None:
        return None
    if checkpoint is not None:
        accelerator.print(f"note: train.init_from {init} started this run; it goes on from {checkpoint}")
        return None
    with accelerator.main_process_first():
        return resolve_init_source(init)


def _make_method(method: type[Method], cfg: Config, accelerator: Accelerator, saved: Checkpoint | None,
                 init: InitSource | None) -> Method:
    """The method's networks built from the seed (the same on every process), the checkpoint's
    weights (or ``train.init_from``'s) loaded into them, sped up (``train.compile`` …) and handed
    to the method."""
    configure_backends(accelerator.device, cfg.train)
    check_channels_last(accelerator.device, cfg.train.channels_last)
    set_seed(cfg.seed)  # the same initial weights on every process
    networks = method.build_networks(cfg)
    if saved:
        saved.load_networks(networks)
    elif init:
        accelerator.print(load_initial_weights(networks, method.translators_for(cfg), cfg.train.init_from, init))
    networks = {name: speed_up(net, cfg.train, accelerator.device) for name, net in networks.items()}
    return method(cfg, accelerator, networks, accelerator.process_index)


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
    or, without ``--resume``, a trained run's best or final generators (which it would overwrite)."""
    checkpoints = checkpoints_dir(run_dir)
    checkpoint = resolve_checkpoint(checkpoints, resume) if resume else None
    if resume and checkpoint is None:
        accelerator.print(f"no checkpoint under {checkpoints} yet: starting a new run")
    if checkpoint is None and list_checkpoints(checkpoints):
        raise ConfigError(
            f"output_dir {run_dir} already holds checkpoints; pass --resume latest to continue it, "
            "or choose another output_dir")
    if resume is None and (checkpoints / BEST).is_dir():  # the first evaluation would replace it
        raise ConfigError(
            f"output_dir {run_dir} holds the best generators of an earlier run ({checkpoints / BEST}); "
            "choose another output_dir, move that folder away, or pass --resume latest to keep training over it")
    generators = [path.name for path in generator_files(run_dir).values()] if run_dir.is_dir() else []
    if resume is None and generators:
        raise ConfigError(
            f"output_dir {run_dir} already holds trained generators ({', '.join(generators)}) and no checkpoint; "
            "choose another output_dir, or pass --resume latest to train a new run over them")
    return checkpoint


def _schedule(cfg: Config, images: int, processes: int) -> tuple[int, Callable[[int], float]]:
    """(total steps, learning-rate factor of each step): in steps when ``max_steps`` is set, else
    the paper's epochs; the factor as ``train.lr_policy`` says (``linear``: §4's constant, then
    decaying linearly to zero)."""
    t = cfg.train
    per_epoch = steps_per_epoch(images, t.batch_size, processes)
    if per_epoch == 0:
        raise ConfigError(
            f"train.batch_size={t.batch_size} × {processes} processes exceeds the {images} images per epoch")
    if t.max_steps is not None:
        decay = t.decay_steps if t.decay_steps is not None else t.max_steps // 2
        total, unit, constant = t.max_steps, 1, t.max_steps - decay
        linear = step_lr_factor(t.max_steps, decay)
    else:
        total, unit, constant = (t.n_epochs + t.n_epochs_decay) * per_epoch, per_epoch, t.n_epochs
        linear = epoch_lr_factor(t.n_epochs, t.n_epochs_decay, per_epoch)
    if t.lr_policy == "step":
        return total, step_decay_factor(t.lr_decay_iters, unit)
    if t.lr_policy == "cosine":
        return total, cosine_factor(constant, unit)
    if t.lr_policy == "plateau":
        better = metrics_registry.get(split_metric(cfg.eval.metric)[1]).better
        return total, Plateau(better, scaled_lr(t.lr, t.lr_scaling, t.batch_size * processes))
    return total, linear


def _resume(run: Run, saved: Checkpoint) -> None:
    """Take up where ``saved`` left off: optimizers, progress, and this process's RNG and pools."""
    state, accelerator = saved.state, run.accelerator
    saved.check_data(run.dataset.n_a, run.dataset.n_b)
    run.method.load_optimizer_states(state.optimizers, state.scalers)
    run.progress = state.progress
    run.branched_from = state.progress.step
    run.resumed_order = (state.progress.epoch, state.data.order)
    run.wandb_run_id = state.wandb_run_id
    if run.plateau is not None and state.lr_state is not None:
        run.plateau.load_state_dict(state.lr_state)
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
        write_config(run.run_dir, cfg, accelerator)
        recover_run_folder(run.run_dir, run.progress.step, accelerator.print)  # killed processes' leftovers
    if run.progress.step < run.total_steps:  # a finished run that is resumed has nothing to show
        run.tracker = open_tracker(cfg, run.run_dir, is_main=is_main, resume_id=run.wandb_run_id)
    if run.evaluator:
        run.best = previous_best(run.checkpoints_dir, run.evaluator, accelerator)
        if is_main:
            for note in run.evaluator.notes:
                tqdm.write(f"note: {note}", file=sys.stderr)
    run.bar = tqdm(total=run.total_steps, initial=run.progress.step, disable=not is_main, desc="train",
                   unit="step", dynamic_ncols=True)
    run.last_saved_step = run.progress.step if resumed else -1
    if is_main and cfg.log.keep_samples:
        run.samples = SampleLog(samples_dir(run.run_dir), cfg.log.keep_samples, run.run_dir.resolve().name)
    run.window = LogWindow()
