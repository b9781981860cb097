"""CycleGAN training, one readable loop, run through accelerate.

Each step is the paper's algorithm (Zhu et al. 2017, sections 3–4):

1. Generators. With both discriminators frozen, translate each real image, translate it back,
   and minimise adversarial + λ·cycle + λ_idt·λ·identity losses over G_A (A→B) and G_B (B→A)
   (``cycle_losses``, once from real A and once from real B).
2. Discriminators. D_A learns to tell real B from G_A's fakes and D_B real A from G_B's, each
   shown fakes drawn from a 50-image history pool; their loss is halved.

Names follow the reference implementation: D_A judges G_A's outputs (domain B), D_B judges
G_B's (domain A). The same command runs on a CPU, one GPU, or many processes under
``accelerate launch``; only the main process writes files. The main process also keeps the
run's dashboard (``tracking``): losses, learning rates, speed, memory and image panels in wandb.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import signal
import sys
import threading
import time
from itertools import chain
from pathlib import Path
from typing import Any, Iterable

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config import Config, ConfigError, config_hash, config_to_dict, dump_config
from ..data import UnalignedDataset, open_domains
from ..evaluation.evaluate import HeldOutEvaluator, flat_metrics, is_better, score
from ..models import build_discriminator, build_generator
from ..models.weights import save_weights, weights_metadata
from . import losses
from .checkpoint import (
    BEST,
    Checkpoint,
    DataState,
    ProcessState,
    Progress,
    TrainingState,
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
from .pool import ImagePool
from .sampling import ShardedBatchSampler, epoch_order, steps_per_epoch
from .schedule import epoch_lr_factor, step_lr_factor
from .tracking import HeldOutPanels, Tracker, memory_metrics, open_tracker


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run can be resumed."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} after step {step}; checkpoint saved to {checkpoint}")


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; training stops before the weights are touched."""


# --------------------------------------------------------------------------------------------
# The two halves of a training step


def cycle_losses(
    real: torch.Tensor, forward: nn.Module, backward: nn.Module, judge: nn.Module,
    cycle_weight: float, identity_weight: float, gan_mode: str,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The generator terms that start from real images x of one domain X (paper eq. 1–3, §5.2).

    ``forward``: X→Y and ``backward``: Y→X; ``judge`` is the discriminator of domain Y. Returns
    ``({"adversarial", "cycle", "identity"}, forward(x))``: forward(x) should fool the judge,
    backward(forward(x)) should give x back, and backward(x) should leave x, already in X, alone.
    """
    fake = forward(real)
    terms = {
        "adversarial": losses.generator_adversarial_loss(judge(fake), gan_mode),
        "cycle": losses.cycle_consistency_loss(backward(fake), real, cycle_weight),
    }
    if identity_weight > 0:
        terms["identity"] = losses.identity_loss(backward(real), real, identity_weight)
    return terms, fake


def discriminator_losses(
    d_a: nn.Module, d_b: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
    pooled_fake_a: torch.Tensor, pooled_fake_b: torch.Tensor, gan_mode: str,
) -> dict[str, torch.Tensor]:
    return {
        "D_A": losses.discriminator_loss(d_a(real_b), d_a(pooled_fake_b.detach()), gan_mode),
        "D_B": losses.discriminator_loss(d_b(real_a), d_b(pooled_fake_a.detach()), gan_mode),
    }


def set_requires_grad(modules: Iterable[nn.Module], flag: bool) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag)


# --------------------------------------------------------------------------------------------
# Signals: finish the step, save, exit


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


def train(cfg: Config, resume: str | None = None) -> Path:
    """Train both generators as ``cfg`` says; returns the run directory."""
    t, d = cfg.train, cfg.data
    run_dir = Path(cfg.output_dir).expanduser()
    checkpoints_dir = run_dir / "checkpoints"
    accelerator = make_accelerator(t.mixed_precision)
    is_main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes

    checkpoint = resolve_checkpoint(checkpoints_dir, resume) if resume else None
    if resume and checkpoint is None:
        accelerator.print(f"no checkpoint under {checkpoints_dir} yet: starting a new run")
    if checkpoint is None and list_checkpoints(checkpoints_dir):
        raise ConfigError(
            f"output_dir {run_dir} already holds checkpoints; pass --resume latest to continue it, "
            "or choose another output_dir")

    # Data first: a bad folder should fail before any model is built.
    channels = cfg.model.in_channels
    source_a, source_b = open_domains(d, d.train_split, channels=cfg.model.in_channels)
    dataset = UnalignedDataset(source_a, source_b, d, channels=channels)
    evaluator = HeldOutEvaluator(cfg, accelerator.device, load_extractor=is_main) if cfg.eval.every else None
    length = len(dataset)
    global_batch = t.batch_size * world
    per_epoch = steps_per_epoch(length, t.batch_size, world)
    if per_epoch == 0:
        raise ConfigError(
            f"train.batch_size={t.batch_size} × {world} processes exceeds the {length} images per epoch")
    if t.max_steps is not None:
        total_steps = t.max_steps
        lr_factor = step_lr_factor(t.max_steps, t.decay_steps if t.decay_steps is not None else t.max_steps // 2)
    else:
        total_steps = (t.n_epochs + t.n_epochs_decay) * per_epoch
        lr_factor = epoch_lr_factor(t.n_epochs, t.n_epochs_decay, per_epoch)

    # Networks: the same initial weights on every process.
    set_seed(cfg.seed)
    g_a, g_b = build_generator(cfg.model), build_generator(cfg.model, reverse=True)
    d_a = build_discriminator(cfg.model, cfg.model.out_channels)
    d_b = build_discriminator(cfg.model, cfg.model.in_channels)
    nets = {"G_A": g_a, "G_B": g_b, "D_A": d_a, "D_B": d_b}
    pools = {"A": ImagePool(t.pool_size, seed=cfg.seed * 1000 + 2 * rank),
             "B": ImagePool(t.pool_size, seed=cfg.seed * 1000 + 2 * rank + 1)}
    progress = Progress()
    wandb_run_id = None

    saved = load_checkpoint(checkpoint) if checkpoint else None
    if saved:
        saved.load_networks(nets)

    g_a, g_b, d_a, d_b = accelerator.prepare(g_a, g_b, d_a, d_b)
    # The generator step runs the discriminators frozen; calling their plain modules skips DDP's
    # gradient hooks, which would otherwise wait for weight gradients that are never computed.
    frozen_d_a, frozen_d_b = accelerator.unwrap_model(d_a), accelerator.unwrap_model(d_b)
    betas = (t.beta1, t.beta2)
    opt_g = torch.optim.Adam(chain(g_a.parameters(), g_b.parameters()), lr=t.lr, betas=betas)
    opt_d = torch.optim.Adam(chain(d_a.parameters(), d_b.parameters()), lr=t.lr, betas=betas)
    # One scaler per optimizer: generator and discriminator losses overflow at different scales.
    use_scaler = t.mixed_precision == "fp16"
    scaler_g = torch.amp.GradScaler(accelerator.device.type, enabled=use_scaler)
    scaler_d = torch.amp.GradScaler(accelerator.device.type, enabled=use_scaler)

    if saved:
        saved.check_data(len(source_a), len(source_b))
        opt_g.load_state_dict(saved.state.optimizers["G"])
        opt_d.load_state_dict(saved.state.optimizers["D"])
        scaler_g.load_state_dict(saved.state.scalers["G"])
        scaler_d.load_state_dict(saved.state.scalers["D"])
        progress = dataclasses.replace(saved.state.progress)  # a copy: the saved one tells _order_for its epoch
        wandb_run_id = saved.state.wandb_run_id
        if progress.position % global_batch:
            accelerator.print(f"warning: resuming with {world} processes × batch {t.batch_size}; "
                              f"{progress.position % global_batch} images of the current batch are drawn again")
        # Each process takes back its own RNG and pools; extra processes start from process 0's pools.
        own = saved.process(rank)
        restore_rng_state(own.rng)
        for name, pool in pools.items():
            pool.load_state_dict(own.pools[name], accelerator.device)
        accelerator.print(f"resumed from {checkpoint} at step {progress.step} (epoch {progress.epoch})")
    else:
        set_seed(cfg.seed + rank)  # different dropout / pool draws per process, same weights

    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_config(run_dir, cfg, accelerator)
    # The dashboard; a finished run that is resumed has nothing to show.
    tracker = open_tracker(cfg, run_dir, is_main=is_main, resume_id=wandb_run_id) \
        if progress.step < total_steps else Tracker()

    def save(step_reason: str) -> Path:
        """Gather every process's RNG and pools; the main process writes the checkpoint."""
        own_state = ProcessState(capture_rng_state(), {k: p.state_dict() for k, p in pools.items()},
                                 _weights_digest((g_a, g_b, d_a, d_b)))
        states = gather_objects(accelerator, own_state)
        if len({s.weights_digest for s in states}) > 1:
            # Synchronised gradients and identical starts keep every replica identical; if they
            # are not, something (a non-deterministic op, a bad launch) broke data parallelism.
            accelerator.print(f"warning: the processes' weights differ at step {progress.step} "
                              "(checkpointing process 0's)")
        path = checkpoints_dir / f"step-{progress.step}"
        if is_main:
            training_state = TrainingState(
                progress=progress,
                optimizers={"G": opt_g.state_dict(), "D": opt_d.state_dict()},
                scalers={"G": scaler_g.state_dict(), "D": scaler_d.state_dict()},
                data=DataState(dataset.n_a, dataset.n_b, cfg.seed,
                               epoch_order(dataset.n_a, dataset.n_b, cfg.seed, progress.epoch)),
                lr_factor=lr_factor(progress.step) if progress.step < total_steps else 0.0,
                num_processes=world,
                config_hash=config_hash(cfg),
                reason=step_reason,
                # The dashboard run --resume continues (the checkpoint's own when none is open now).
                wandb_run_id=tracker.run_id or wandb_run_id,
            )
            weights = {name: accelerator.unwrap_model(net).state_dict() for name, net in
                       zip(("G_A", "G_B", "D_A", "D_B"), (g_a, g_b, d_a, d_b))}
            path = save_checkpoint(checkpoints_dir, weights, training_state, states, keep=t.keep_checkpoints,
                                   metadata=metadata())
        accelerator.wait_for_everyone()
        return path

    log_path = run_dir / "log.jsonl"
    metadata = lambda: weights_metadata(config_to_dict(cfg)["model"], progress.step)  # noqa: E731
    best = _previous_best(checkpoints_dir, cfg.eval.metric, accelerator) if evaluator else None
    last_eval = None
    if evaluator and is_main:
        for note in evaluator.notes:
            tqdm.write(f"note: {note}", file=sys.stderr)
    bar = tqdm(total=total_steps, initial=progress.step, disable=not is_main, desc="train", unit="step",
               dynamic_ncols=True)
    last_saved_step = progress.step if saved else -1
    window_start, window_steps, window_sums = time.perf_counter(), 0, {}
    with tracker:  # finishes the dashboard run however training ends
        # The held-out images that every image panel of the run shows (main process only).
        panels = HeldOutPanels.load(cfg, (source_a, source_b)) if tracker.enabled else None
        with StopRequest() as stop:
            while progress.step < total_steps:
                order = _order_for(progress.epoch, saved, dataset, cfg.seed)
                sampler = ShardedBatchSampler(order, t.batch_size, rank, world,
                                              start_step=progress.position // global_batch)
                # A private generator keeps DataLoader from drawing its worker seed from the global
                # RNG, which would make a resumed run's random stream differ from an uninterrupted one.
                loader = DataLoader(dataset, batch_sampler=sampler, num_workers=d.num_workers,
                                    pin_memory=accelerator.device.type == "cuda",
                                    generator=torch.Generator().manual_seed(cfg.seed))
                for batch in loader:
                    real_a = batch["A"].to(accelerator.device, non_blocking=True)
                    real_b = batch["B"].to(accelerator.device, non_blocking=True)
                    for opt in (opt_g, opt_d):
                        for group in opt.param_groups:
                            group["lr"] = t.lr * lr_factor(progress.step)

                    # 1. Generators, with both discriminators frozen. The terms that start from real A
                    #    and those that start from real B are back-propagated one after the other: the
                    #    gradient is their sum either way, and only one half's activations are alive at
                    #    a time, which halves the step's peak memory. Processes sync once, at the end.
                    set_requires_grad((d_a, d_b), False)
                    opt_g.zero_grad(set_to_none=True)
                    lo = cfg.loss
                    with accelerator.no_sync(g_a), accelerator.no_sync(g_b):
                        with accelerator.autocast():
                            from_a, fake_b = cycle_losses(real_a, g_a, g_b, frozen_d_a, lo.lambda_a,
                                                          lo.lambda_a * lo.lambda_identity, lo.gan_mode)
                        _backward(accelerator, from_a, scaler_g, "generator", progress.step + 1, checkpoints_dir)
                    with accelerator.autocast():
                        from_b, fake_a = cycle_losses(real_b, g_b, g_a, frozen_d_b, lo.lambda_b,
                                                      lo.lambda_b * lo.lambda_identity, lo.gan_mode)
                    _backward(accelerator, from_b, scaler_g, "generator", progress.step + 1, checkpoints_dir)
                    _step(opt_g, scaler_g)
                    # Reference names: G_A/G_B adversarial, cycle_A/B, and idt_A = ‖G_A(b) − b‖ (from B).
                    g_terms = {"G_A": from_a["adversarial"], "G_B": from_b["adversarial"],
                               "cycle_A": from_a["cycle"], "cycle_B": from_b["cycle"]}
                    if "identity" in from_a:
                        g_terms |= {"idt_A": from_b["identity"], "idt_B": from_a["identity"]}

                    # 2. Discriminators, on fakes drawn from the history pools.
                    set_requires_grad((d_a, d_b), True)
                    with accelerator.autocast():
                        d_terms = discriminator_losses(d_a, d_b, real_a, real_b, pools["A"].query(fake_a),
                                                       pools["B"].query(fake_b), cfg.loss.gan_mode)
                    opt_d.zero_grad(set_to_none=True)
                    _backward(accelerator, d_terms, scaler_d, "discriminator", progress.step + 1, checkpoints_dir)
                    _step(opt_d, scaler_d)

                    progress.step += 1
                    progress.position += global_batch
                    window_steps += 1
                    bar.update(1)

                    for name, value in {**g_terms, **d_terms}.items():
                        window_sums[name] = window_sums.get(name, 0.0) + value.detach()
                    if progress.step % t.log_every == 0 or progress.step == total_steps:
                        # Mean over the steps since the last record: single-image losses are noisy.
                        values = {k: (v / window_steps).item() for k, v in window_sums.items()}
                        elapsed = time.perf_counter() - window_start
                        record = {"step": progress.step, "epoch": progress.epoch,
                                  "lr": t.lr * lr_factor(progress.step - 1),
                                  "it_per_s": window_steps / elapsed, **values}
                        window_start, window_steps, window_sums = time.perf_counter(), 0, {}
                        if is_main:
                            bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                            with log_path.open("a") as f:
                                f.write(json.dumps(record) + "\n")
                        tracker.log({**{f"loss/{k}": v for k, v in values.items()},
                                     "lr/G": opt_g.param_groups[0]["lr"], "lr/D": opt_d.param_groups[0]["lr"],
                                     "perf/it_per_s": record["it_per_s"],
                                     "perf/images_per_s": record["it_per_s"] * global_batch,  # of each domain
                                     "epoch": progress.epoch, **memory_metrics(accelerator.device)}, progress.step)
                    if panels is not None and (progress.step % cfg.log.images_every == 0
                                               or progress.step == total_steps):
                        began = time.perf_counter()
                        tracker.log(panels.render(accelerator.unwrap_model(g_a), accelerator.unwrap_model(g_b),
                                                  accelerator.device), progress.step)
                        window_start += time.perf_counter() - began  # drawing is not training: keep it out of it/s
                    if evaluator and (progress.step % cfg.eval.every == 0 or progress.step == total_steps):
                        began = time.perf_counter()
                        if is_main:
                            last_eval, best = _evaluate_held_out(
                                evaluator, accelerator.unwrap_model(g_a), accelerator.unwrap_model(g_b),
                                progress.step, best, checkpoints_dir, metadata(), tracker, log_path)
                        accelerator.wait_for_everyone()
                        window_start += time.perf_counter() - began

                    if progress.step % t.checkpoint_every == 0 or progress.step == total_steps:
                        save("periodic" if progress.step < total_steps else "final")
                        last_saved_step = progress.step
                    if any_process(accelerator, stop.signum is not None):
                        path = checkpoints_dir / f"step-{progress.step}"
                        if last_saved_step != progress.step:
                            path = save("interrupted")
                        bar.close()
                        raise TrainingInterrupted(stop.signum or signal.SIGTERM, progress.step, path)
                    if progress.step >= total_steps:
                        break
                else:  # the epoch's batches are exhausted
                    progress.epoch += 1
                    progress.position = 0
                    continue
                break
        bar.close()
        if last_saved_step != progress.step:
            save("final")
        if is_main:
            _write_final_generators(run_dir, accelerator.unwrap_model(g_a), accelerator.unwrap_model(g_b), cfg,
                                    progress.step)
            if tracker.enabled:  # the final held-out grid, larger than the periodic panels
                final = HeldOutPanels.load(cfg, (source_a, source_b), count=FINAL_GRID_IMAGES)
                tracker.log(final.render(accelerator.unwrap_model(g_a), accelerator.unwrap_model(g_b),
                                         accelerator.device, prefix="final"), progress.step)
            if last_eval is not None:
                _report_evaluations(last_eval, best, cfg.eval.metric, checkpoints_dir, tracker)
            if cfg.wandb.log_model:
                tracker.log_model([run_dir / "G_A.safetensors", run_dir / "G_B.safetensors", run_dir / "config.yaml"],
                                  progress.step)
            accelerator.print(f"done: {progress.step} steps; generators in "
                              f"{run_dir}/G_A.safetensors and G_B.safetensors")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return run_dir


# --------------------------------------------------------------------------------------------
# Held-out evaluation and the best generators

FINAL_GRID_IMAGES = 16  # held-out images per domain in the dashboard's grid at the end of a run


def _evaluate_held_out(
    evaluator: HeldOutEvaluator, g_a: nn.Module, g_b: nn.Module, step: int, best: dict[str, Any] | None,
    checkpoints_dir: Path, metadata: dict[str, str], tracker: Tracker, log_path: Path,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Evaluate on the held-out subset, log it, and keep the generators if they are the best yet.
    Returns (this evaluation's record, the best record)."""
    result = evaluator(g_a, g_b)
    result.step = step
    record = {"metric": evaluator.metric, "value": score(result, evaluator.metric), "step": step,
              "evaluation": result.to_json()}
    if is_better(record["value"], best["value"] if best else None, evaluator.metric):
        try:
            write_best(checkpoints_dir, {"G_A": g_a.state_dict(), "G_B": g_b.state_dict()}, record, metadata)
            best = record
        except OSError as e:  # a full disk costs this best, not the run (the previous best is intact)
            tqdm.write(f"warning: could not write {checkpoints_dir / BEST} at step {step}: {e.strerror or e}; "
                       "the previous best is kept", file=sys.stderr)
    values = flat_metrics(result)
    with log_path.open("a") as f:
        f.write(json.dumps({"step": step, "eval": values}) + "\n")
    logged: dict[str, Any] = {f"eval/{k}": v for k, v in values.items()}
    if best is not None:
        logged[f"eval/best_{evaluator.metric}"] = best["value"]
    tracker.log(logged, step)
    return record, best


def _previous_best(checkpoints_dir: Path, metric: str, accelerator: Accelerator) -> dict[str, Any] | None:
    """The best evaluation of an earlier part of this run, if it was chosen by the same metric."""
    best = read_best(checkpoints_dir)
    if best is not None and best.get("metric") != metric:
        accelerator.print(f"note: {checkpoints_dir / BEST} was chosen by {best.get('metric')}, not eval.metric "
                          f"{metric}: the next evaluation replaces it")
        return None
    return best


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


# --------------------------------------------------------------------------------------------
# Helpers of the loop


def _backward(accelerator: Accelerator, terms: dict[str, torch.Tensor], scaler: torch.amp.GradScaler,
              which: str, step: int, checkpoints_dir: Path) -> None:
    """Back-propagate the sum of ``terms``, after checking that it is finite on every process."""
    loss = sum(terms.values())
    _stop_if_not_finite(accelerator, loss, which, step, checkpoints_dir)
    if scaler.is_enabled():
        scaler.scale(loss).backward()
    else:
        accelerator.backward(loss)


def _step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    if scaler.is_enabled():
        scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        scaler.update()
    else:
        optimizer.step()


def _stop_if_not_finite(accelerator: Accelerator, loss: torch.Tensor, which: str, step: int,
                        checkpoints_dir: Path) -> None:
    if not any_process(accelerator, not bool(torch.isfinite(loss.detach()).all())):
        return
    previous = list_checkpoints(checkpoints_dir)
    last = previous[-1] if previous else "none (no checkpoint was written yet)"
    raise NonFiniteLoss(
        f"the {which} loss is {loss.item()} at step {step}; stopped before updating the weights. "
        f"Last good checkpoint: {last}")


def _order_for(epoch: int, saved: Checkpoint | None, dataset: UnalignedDataset, seed: int) -> torch.Tensor:
    """The epoch's data order: the checkpoint's own copy when resuming inside that epoch."""
    if saved and saved.state.progress.epoch == epoch:
        return saved.state.data.order
    return epoch_order(dataset.n_a, dataset.n_b, seed, epoch)


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


def _write_final_generators(run_dir: Path, g_a: nn.Module, g_b: nn.Module, cfg: Config, step: int) -> None:
    """``G_A.safetensors`` and ``G_B.safetensors`` beside ``config.yaml``: all that translation needs."""
    metadata = weights_metadata(config_to_dict(cfg)["model"], step)
    for name, net in (("G_A", g_a), ("G_B", g_b)):
        tmp = run_dir / f".{name}.safetensors.tmp"
        save_weights(tmp, net.state_dict(), metadata)
        tmp.replace(run_dir / f"{name}.safetensors")
