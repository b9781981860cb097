"""Checkpoints that a run can be killed and resumed from without changing a single bit.

Layout of ``OUTPUT_DIR/checkpoints/step-N/``::

    G_A.safetensors G_B.safetensors D_A.safetensors D_B.safetensors   network weights
    training_state.pt      optimizers, LR schedulers, grad scalers, step, epoch, data order
    process-R.pt           per process R: its RNG states and its two image pools

and, when the run evaluates itself (``eval.every``), ``checkpoints/best/``: the generators of
the best held-out evaluation so far and that evaluation (``metrics.json``).

A checkpoint is written into a temporary folder and renamed into place, so a crash or a full disk
mid-write never leaves a half checkpoint under a real name; then ``latest`` (a one-line text file)
is replaced atomically and the oldest checkpoints beyond ``keep`` are removed. Only ``.pt`` files
hold non-tensor state, and they are read with ``torch.load(weights_only=True)``, which executes no
code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.weights import CheckpointError, load_weights, save_weights

NETWORKS = ("G_A", "G_B", "D_A", "D_B")
_STEP_DIR = re.compile(r"^step-(\d+)$")


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"missing checkpoint file {path}") from None
    except Exception as e:  # unpickling errors come in many types
        raise CheckpointError(f"corrupt checkpoint file {path}: {str(e).splitlines()[0]}") from None


# --------------------------------------------------------------------------------------------
# RNG states


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and every CUDA device's generator, as weights_only-loadable data."""
    version, mt_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt_state), gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        saved = state["cuda"]
        if len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)
        else:  # resumed on another number of GPUs: each device takes the saved state it can
            for i in range(min(len(saved), torch.cuda.device_count())):
                torch.cuda.set_rng_state(saved[i], i)


# --------------------------------------------------------------------------------------------
# Writing and finding checkpoints


def write_checkpoint(
    checkpoints_dir: Path,
    step: int,
    networks: dict[str, dict[str, torch.Tensor]],
    training_state: dict[str, Any],
    process_states: list[dict[str, Any]],
    keep: int,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``step-N`` atomically, point ``latest`` at it, and prune to the newest ``keep``."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step-{step}"
    tmp = checkpoints_dir / f".tmp-step-{step}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        for name, state_dict in networks.items():
            save_weights(tmp / f"{name}.safetensors", state_dict, metadata)
        torch.save(training_state, tmp / "training_state.pt")
        for rank, process_state in enumerate(process_states):
            torch.save(process_state, tmp / f"process-{rank}.pt")
        _fsync_tree(tmp)
        if final.exists():  # a re-save of the same step (e.g. interrupted right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_text_atomically(checkpoints_dir / "latest", final.name + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(checkpoints_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


BEST = "best"


def write_best(checkpoints_dir: Path, generators: dict[str, dict[str, torch.Tensor]], record: dict[str, Any],
               metadata: dict[str, str] | None = None) -> Path:
    """Replace ``checkpoints/best/`` with these generators and ``record`` (the evaluation that
    chose them, as ``metrics.json``). Written aside and renamed into place, like a checkpoint."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / BEST
    tmp = checkpoints_dir / f".tmp-{BEST}-{os.getpid()}"
    old = checkpoints_dir / f".old-{BEST}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, state_dict in generators.items():
            save_weights(tmp / f"{name}.safetensors", state_dict, metadata)
        (tmp / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
        _fsync_tree(tmp)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)  # put the previous best back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_best(checkpoints_dir: Path) -> dict[str, Any] | None:
    """The record ``write_best`` stored with the best generators, or None when there are none."""
    try:
        return json.loads((checkpoints_dir / BEST / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Complete ``step-N`` folders, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoints_dir.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(checkpoints_dir: Path, which: str) -> Path | None:
    """``latest`` → the folder ``latest`` names (None when the run has no checkpoint yet);
    anything else is a path to a ``step-N`` folder."""
    if which == "latest":
        pointer = checkpoints_dir / "latest"
        if pointer.is_file():
            target = checkpoints_dir / pointer.read_text().strip()
            if target.is_dir():
                return target
        found = list_checkpoints(checkpoints_dir)  # pointer lost: fall back to the newest complete one
        return found[-1] if found else None
    path = Path(which).expanduser()
    if (path / "checkpoints").is_dir():  # a run directory
        return resolve_checkpoint(path / "checkpoints", "latest")
    if not path.is_dir():
        raise CheckpointError(f"--resume {which}: no such checkpoint folder")
    return path


def read_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any], list[dict[str, Any]]]:
    """Networks, training state and every process's state from a ``step-N`` folder."""
    networks = {name: load_weights(path / f"{name}.safetensors") for name in NETWORKS}
    training_state = load_state(path / "training_state.pt")
    ranks = sorted(int(p.stem.split("-")[1]) for p in path.glob("process-*.pt"))
    if not ranks:
        raise CheckpointError(f"checkpoint {path} has no process-*.pt file")
    process_states = [load_state(path / f"process-{r}.pt") for r in ranks]
    return networks, training_state, process_states


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def _write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
