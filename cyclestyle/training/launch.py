"""How a run's processes start and agree: one Accelerator per process, and the few collective
calls the loop needs (does any process want to stop? every process's state for a checkpoint).

The same command runs on a CPU, one GPU, or many processes under ``accelerate launch`` or
``torchrun``; a launch that silently started the wrong number of processes would have every
process believe it is the main one and write the same files, so it is refused or shouted about.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

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
