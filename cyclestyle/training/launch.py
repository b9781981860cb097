"""How a run's processes start, agree and end: one Accelerator per process, the few collective
calls the loop needs (does any process want to stop? every process's state for a checkpoint),
the run folder's lock, the CPUs a process may use, and the process group's teardown.

The same command runs on a CPU, one GPU, or many processes under ``accelerate launch`` or
``torchrun``; a launch that silently started the wrong number of processes would have every
process believe it is the main one and write the same files, so it is refused or shouted about.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from tqdm.auto import tqdm

from .lock import OutputDirBusy, OutputDirLock, busy_message
from .speed import resolve_mixed_precision


class LaunchError(RuntimeError):
    """The processes that started are not the processes the launcher was asked for."""


def make_accelerator(mixed_precision: str) -> Accelerator:
    """An Accelerator that also joins a multi-process launch on a machine without GPUs, with
    ``mixed_precision`` ``auto`` resolved for the device it runs on (``speed``), said in one note.

    Under ``torchrun`` or ``accelerate launch --multi_gpu`` with no CUDA device, accelerate only
    forms a (gloo) process group when told ``cpu=True``; otherwise every process would run alone,
    believe it is the main one, and all would write the same files.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    resolved, reason = resolve_mixed_precision(mixed_precision, "cuda" if torch.cuda.is_available() else "cpu")
    earlier = AcceleratorState._shared_state.get("_mixed_precision")
    if launched == 1 and earlier is not None and earlier != resolved:
        # accelerate keeps one state per process and refuses a second Accelerator with another
        # mixed precision: a notebook or script that trains twice (auto, then fp32) must not fail.
        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(mixed_precision=resolved, cpu=launched > 1 and not torch.cuda.is_available())
    if mixed_precision == "auto":
        accelerator.print(f"note: {reason}")
    if accelerator.num_processes != launched:
        raise LaunchError(
            f"launched as {launched} processes (WORLD_SIZE={launched}) but accelerate joined "
            f"{accelerator.num_processes}; check the launcher and `accelerate config`")
    requested = requested_processes()
    if requested is not None and requested > accelerator.num_processes:
        accelerator.print(
            f"\n{'!' * 78}\n! The launch asked for {requested} processes, but this run has "
            f"{accelerator.num_processes}.\n! `accelerate launch --cpu --num_processes N` starts one process "
            "unless MPI is set up.\n! For N CPU processes use `accelerate launch --multi_gpu --num_processes N` "
            f"or `torchrun --nproc_per_node N`.\n{'!' * 78}\n")
    return accelerator


def requested_processes() -> int | None:
    """The process count given to ``accelerate launch`` on its command line, if it was.

    ``accelerate launch --cpu --num_processes 2`` starts a single process and passes the count on
    to nobody, so the only place it can be read is the launcher's own command line (Linux /proc).
    """
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    by_script = len(argv) > 2 and Path(argv[1]).name == "accelerate" and argv[2] == "launch"  # python .../accelerate launch
    by_binary = len(argv) > 1 and Path(argv[0]).name == "accelerate" and argv[1] == "launch"
    by_module = "accelerate.commands.launch" in argv  # python -m accelerate.commands.launch
    if not (by_script or by_binary or by_module):
        return None
    for i, arg in enumerate(argv):
        for flag in ("--num_processes", "--num-processes"):
            value = argv[i + 1] if arg == flag and i + 1 < len(argv) else arg.partition("=")[2] \
                if arg.startswith(flag + "=") else None
            if value is not None and value.isdigit():
                return int(value)
    return None


def any_process(accelerator: Accelerator, flag: bool) -> bool:
    """True if ``flag`` is set on any process, so all processes stop at the same step."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, reduction="sum").item() > 0)


def gather_objects(accelerator: Accelerator, obj: Any) -> list[Any]:
    """``obj`` of every process, in rank order (picklable objects, for the main process to save)."""
    if accelerator.num_processes == 1:
        return [obj]
    gathered: list[Any] = [None] * accelerator.num_processes
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def stop_agreement_due(processes: int, device_type: str, at_record: bool) -> bool:
    """Whether the processes agree now on whether to stop (a Ctrl-C reaches each at its own time,
    and all must save the same step). One process needs no agreement. Several on CPUs agree after
    every step: their collective costs little. On GPUs the agreement reads a value back from the
    device, a wait for all queued work, so they agree only at log records and checkpoints, which
    wait anyway: no step waits for the device, and a Ctrl-C stops within train.log_every steps."""
    return processes == 1 or device_type == "cpu" or at_record


@contextlib.contextmanager
def output_dir_lock(run_dir: Path, accelerator: Accelerator) -> Iterator[None]:
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


def leave_process_group(accelerator: Accelerator, failure: BaseException | None = None) -> None:
    """Destroy the process group, however the run ended, once nothing else holds it.

    Gloo's worker threads free each finished collective's tensors, and a tensor that Python let
    go of first needs the GIL for that. A process that exits with its group alive can reach that
    while the interpreter is finalizing: the thread is then stopped inside a destructor, and the
    process aborts ("terminate called without an active exception") after training has ended.
    The networks wrapped for data parallelism hold the group too (in the frames of ``failure``
    and of the exceptions it was raised from, when a run stops on an exception), so they go
    first: then ``destroy_process_group`` lets the last reference go, which joins gloo's threads
    while Python is alive.
    """
    if accelerator.num_processes == 1:
        accelerator.end_training()
        return
    seen: set[int] = set()
    while failure is not None and id(failure) not in seen:  # the error, and any it replaced
        seen.add(id(failure))
        traceback.clear_frames(failure.__traceback__)  # the run's locals; the exception keeps its lines
        failure = failure.__cause__ or failure.__context__
    accelerator.free_memory()  # accelerate's references to the wrapped networks and optimizers
    accelerator.end_training()  # destroy_process_group


def data_workers(requested: int, accelerator: Accelerator) -> int:
    """``data.num_workers``, but no more than the CPUs this process may run on (one note says so).

    More workers than CPUs only share them: nothing is faster, every worker costs its memory, and
    torch warns at every epoch's DataLoader. The CPUs are the process's affinity mask where the
    system has one (a container's or a cluster job's share), as torch's own check counts them."""
    available = usable_cpus()
    if requested <= available:
        return requested
    if accelerator.is_main_process:
        cpus = "1 CPU is" if available == 1 else f"{available} CPUs are"
        tqdm.write(f"note: data.num_workers={requested} but {cpus} available: using {available}", file=sys.stderr)
    return available


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, or the machine's count where the
    system has no masks (macOS, Windows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
