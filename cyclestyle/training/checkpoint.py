"""Checkpoints that a run can be killed and resumed from without changing a single bit.

Layout of ``OUTPUT_DIR/checkpoints/step-N/``::

    G_A.safetensors G_B.safetensors D_A.safetensors D_B.safetensors   network weights (CycleGAN's;
                                                                      each method saves its own)
    training_state.pt      optimizers, grad scalers, step, epoch, data order (``TrainingState``)
    process-R.pt           per process R: its RNG states and its two image pools (``ProcessState``)

and, when the run evaluates itself (``eval.every``), ``checkpoints/best/``: the generators of
the best held-out evaluation so far and that evaluation (``metrics.json``).

A checkpoint is written into a temporary folder and renamed into place, so a crash or a full disk
mid-write never leaves a half checkpoint under a real name; then ``latest`` (a one-line text file)
is replaced atomically and the oldest checkpoints of the run's lineage beyond ``keep`` are removed
(``prune``). Only ``.pt`` files
hold non-tensor state, and they are read with ``torch.load(weights_only=True)``, which executes no
code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..files import process_alive
from ..models.weights import CheckpointError, load_failure, load_weights, save_weights
from ..run_folder import BEST, LATEST, list_checkpoints, step_of


# --------------------------------------------------------------------------------------------
# What a checkpoint holds: the one definition of training_state.pt and process-R.pt


@dataclasses.dataclass
class Progress:
    """Where the run is: optimizer steps taken, current epoch and rows of its order consumed."""

    step: int = 0
    epoch: int = 0
    position: int = 0


@dataclasses.dataclass
class DataState:
    """The data a run trains on: the domains' sizes (a resume needs the same data), the seed that
    every epoch's order derives from, and the current epoch's order itself."""

    n_a: int
    n_b: int
    seed: int
    order: torch.Tensor


@dataclasses.dataclass
class TrainingState:
    """``training_state.pt``: all that a resumed run needs besides weights and per-process state.

    ``to_dict`` writes, and ``from_dict`` reads, the keys that every version of the loop has
    written, so that checkpoints of earlier versions resume too.
    """

    progress: Progress
    optimizers: dict[str, dict[str, Any]]  # "G", "D": Adam state dicts
    scalers: dict[str, dict[str, Any]]  # "G", "D": grad scaler state dicts
    data: DataState
    lr_factor: float  # the schedule's factor at progress.step; 0 once the run is done
    num_processes: int
    config_hash: str
    reason: str  # "periodic", "interrupted" or "final"
    wandb_run_id: str | None = None  # the dashboard run a resume continues; absent in older versions
    # What train.mixed_precision resolved to ("no", "bf16", "fp16"): config.yaml may say "auto",
    # which another machine resolves otherwise. Absent in older versions.
    mixed_precision: str | None = None
    # The learning-rate policy's own state where it has one (plateau's); absent in older versions.
    lr_state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.data
        return {
            "progress": dataclasses.asdict(self.progress),
            "optimizers": self.optimizers,
            "scalers": self.scalers,
            "data": {"n_a": d.n_a, "n_b": d.n_b, "seed": d.seed, "order": d.order},
            "lr_factor": self.lr_factor,
            "num_processes": self.num_processes,
            "config_hash": self.config_hash,
            "reason": self.reason,
            "wandb_run_id": self.wandb_run_id,
            "mixed_precision": self.mixed_precision,
            "lr_state": self.lr_state,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainingState:
        return cls(
            progress=Progress(**state["progress"]), optimizers=state["optimizers"], scalers=state["scalers"],
            data=DataState(**state["data"]), lr_factor=state["lr_factor"], num_processes=state["num_processes"],
            config_hash=state["config_hash"], reason=state["reason"], wandb_run_id=state.get("wandb_run_id"),
            mixed_precision=state.get("mixed_precision"), lr_state=state.get("lr_state"))


@dataclasses.dataclass
class ProcessState:
    """``process-R.pt``: one process's random streams and history pools, which differ between
    processes, and a digest of its weights, which must not (older versions wrote none)."""

    rng: dict[str, Any]
    pools: dict[str, dict[str, Any]]
    weights_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rng": self.rng, "pools": self.pools, "weights_digest": self.weights_digest}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ProcessState:
        return cls(rng=state["rng"], pools=state["pools"], weights_digest=state.get("weights_digest"))


@dataclasses.dataclass
class Checkpoint:
    """A ``step-N`` folder as ``load_checkpoint`` reads it back."""

    path: Path
    networks: dict[str, dict[str, torch.Tensor]]
    state: TrainingState
    processes: list[ProcessState]

    def load_networks(self, networks: dict[str, nn.Module]) -> None:
        """Load the saved weights into ``networks``, which must be built from the same config."""
        missing = [name for name in networks if name not in self.networks]
        if missing:
            raise CheckpointError(f"checkpoint {self.path} has no {missing[0]}.safetensors (it holds "
                                  f"{', '.join(self.networks) or 'no networks'}): a run of another method?")
        for name, net in networks.items():
            problem = misfit(self.networks[name], net.state_dict())
            if problem:
                raise CheckpointError(f"{self.path / (name + '.safetensors')} does not fit the network the config "
                                      f"builds: {problem}; resume with the model settings the run was trained "
                                      "with (its config.yaml)")
            net.load_state_dict(self.networks[name])

    def check_data(self, n_a: int, n_b: int) -> None:
        """Resuming replays the saved data order, which only means something for the same images."""
        data = self.state.data
        if (data.n_a, data.n_b) != (n_a, n_b):
            raise CheckpointError(
                f"checkpoint {self.path} was trained on {data.n_a} A and {data.n_b} B images, "
                f"but the data now has {n_a} and {n_b}; resume needs the same data")

    def process(self, rank: int) -> ProcessState:
        """Process ``rank``'s state; processes beyond the saved ones start from process 0's."""
        return self.processes[rank] if rank < len(self.processes) else self.processes[0]


def misfit(saved: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str = "the checkpoint"
            ) -> str:
    """What keeps ``saved`` from loading into a network whose state dict is ``expected``, in the
    user's terms (the first tensor of another shape, or a tensor one has and the other lacks;
    ``source``: what ``saved`` is called); empty when it fits."""
    for key, tensor in expected.items():
        if key in saved and tuple(saved[key].shape) != tuple(tensor.shape):
            count = sum(1 for k, t in expected.items() if k in saved and tuple(saved[k].shape) != tuple(t.shape))
            return (f"{key} is {tuple(saved[key].shape)} in {source} and {tuple(tensor.shape)} in the network "
                    f"({count} tensor{'s' * (count != 1)} differ)")
    missing, extra = [k for k in expected if k not in saved], [k for k in saved if k not in expected]
    if missing:
        return f"{source} lacks {missing[0]} ({len(missing)} tensors)"
    if extra:
        return f"{source} has {extra[0]}, which the network does not ({len(extra)} tensors)"
    return ""


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
    metadata: Mapping[str, dict[str, str]] | None = None,
    branched_from: int | None = None,
) -> Path:
    """Write ``step-N`` atomically, point ``latest`` at it, and prune to the newest ``keep`` of
    the run's own lineage (``prune``; ``branched_from``: the step a resumed run went on from)."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step-{step}"
    tmp = aside(final)
    if tmp.exists():  # left by a process of the same pid on this host, long dead
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        for name, state_dict in networks.items():
            save_weights(tmp / f"{name}.safetensors", state_dict, (metadata or {}).get(name))
        torch.save(training_state, tmp / "training_state.pt")
        for rank, process_state in enumerate(process_states):
            torch.save(process_state, tmp / f"process-{rank}.pt")
        _fsync_tree(tmp)
        if final.exists():  # a re-save of the same step (e.g. interrupted right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_text_atomically(checkpoints_dir / LATEST, final.name + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(checkpoints_dir, final, keep, branched_from)
    return final


def prune(checkpoints_dir: Path, written: Path, keep: int, branched_from: int | None = None) -> None:
    """Keep the newest ``keep`` checkpoints of the lineage that ``written`` ends, never ``written``.

    A run resumed from an older checkpoint (step ``branched_from``) leaves the checkpoints above
    it behind: they are another history, and counting them as newest would prune the checkpoints
    of this one (with keep 1, the one just written). They go with the new lineage's first write.
    """
    found = list_checkpoints(checkpoints_dir)
    left_behind = [p for p in found if branched_from is not None and p != written and step_of(p) > branched_from]
    lineage = [p for p in found if p not in left_behind]
    for old in left_behind + [p for p in lineage[:-keep] if p != written]:
        shutil.rmtree(old, ignore_errors=True)


def write_best(checkpoints_dir: Path, generators: dict[str, dict[str, torch.Tensor]], record: dict[str, Any],
               metadata: Mapping[str, dict[str, str]] | None = None) -> Path:
    """Replace ``checkpoints/best/`` with these generators and ``record`` (the evaluation that
    chose them, as ``metrics.json``). Written aside and renamed into place, like a checkpoint."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / BEST
    tmp, old = aside(final), aside(final, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, state_dict in generators.items():
            save_weights(tmp / f"{name}.safetensors", state_dict, (metadata or {}).get(name))
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


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"missing checkpoint file {path}") from None
    except Exception as e:  # unpickling errors come in many types
        raise CheckpointError(f"corrupt checkpoint file {path}: {load_failure(path, e)}") from None


def read_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any], list[dict[str, Any]]]:
    """Networks, training state and every process's state from a ``step-N`` folder."""
    networks = {p.stem: load_weights(p) for p in sorted(path.glob("*.safetensors"))}
    training_state = load_state(path / "training_state.pt")
    ranks = sorted(int(p.stem.split("-")[1]) for p in path.glob("process-*.pt"))
    if not ranks:
        raise CheckpointError(f"checkpoint {path} has no process-*.pt file")
    process_states = [load_state(path / f"process-{r}.pt") for r in ranks]
    return networks, training_state, process_states


def save_checkpoint(
    checkpoints_dir: Path, networks: dict[str, dict[str, torch.Tensor]], state: TrainingState,
    processes: list[ProcessState], keep: int, metadata: Mapping[str, dict[str, str]] | None = None,
    branched_from: int | None = None,
) -> Path:
    """``write_checkpoint`` for ``step-{state.progress.step}``; a failed write names the last good one."""
    step = state.progress.step
    try:
        return write_checkpoint(checkpoints_dir, step, networks, state.to_dict(), [p.to_dict() for p in processes],
                                keep=keep, metadata=metadata, branched_from=branched_from)
    except OSError as e:
        previous = list_checkpoints(checkpoints_dir)
        last = previous[-1] if previous else "none"
        raise CheckpointError(f"could not write checkpoint {checkpoints_dir / f'step-{step}'}: {e.strerror or e}; "
                              f"last complete checkpoint: {last}") from None


def load_checkpoint(path: Path) -> Checkpoint:
    """``read_checkpoint``, typed."""
    networks, state, processes = read_checkpoint(path)
    return Checkpoint(path, networks, TrainingState.from_dict(state), [ProcessState.from_dict(p) for p in processes])


def aside(path: Path, kind: str = "tmp") -> Path:
    """A hidden name beside ``path`` that is this process's own: written there, then renamed into
    place. The host is in it as well as the pid, for folders that several machines share (where
    pids repeat, and where a lock may be only local: NFS with ``local_lock``)."""
    return path.with_name(f".{kind}-{path.name}-{socket.gethostname()}-{os.getpid()}")


_ASIDE = re.compile(r"\.(tmp|old)-(.+)-([0-9]+)")  # what ``aside`` names: kind, NAME-HOST, pid


def remove_dead_temporaries(folder: Path) -> list[Path]:
    """Remove from ``folder`` what ``aside`` named for processes of this host that no longer run
    (a ``kill -9`` mid-write leaves them: ``.tmp-step-N-HOST-PID/`` with partial weights and the
    like); those of running processes, and of other hosts (whose pids say nothing here), stay.
    ``write_best`` killed between its two renames left no ``best`` but ``.old-best-…``, the
    previous best, whole: that is put back rather than removed. Returns what was removed."""
    host, removed = socket.gethostname(), []
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    for path in entries:
        match = _ASIDE.fullmatch(path.name)
        if match is None or not match.group(2).endswith(f"-{host}") or process_alive(int(match.group(3))):
            continue
        target = path.with_name(match.group(2)[: -len(host) - 1])
        if match.group(1) == "old" and not target.exists() and not target.is_symlink():
            os.replace(path, target)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def _write_text_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename, the text on disk first: a rename that reaches
    the disk before the data would leave an empty file after a power cut."""
    tmp = aside(path)
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the renames inside ``folder`` durable (its entries are the directory's data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
