"""Finding a trained translator in what a user points at: a run folder, a checkpoint or a file."""

from __future__ import annotations

from pathlib import Path

from ..models.weights import CheckpointError
from ..training.checkpoint import resolve_checkpoint

DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}


def find_generator(weights: str | Path, direction: str) -> Path:
    """The generator file for ``direction`` ("AtoB" → G_A, "BtoA" → G_B) in what a user points at:
    a run directory (its final generators, or its latest checkpoint while it is still training),
    a ``checkpoints/step-N`` folder, or a generator ``.safetensors`` file itself."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be AtoB or BtoA, not {direction!r}")
    name = f"{DIRECTIONS[direction]}.safetensors"
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"--weights {weights}: no such file or folder")
    if (path / name).is_file():
        return path / name
    latest = resolve_checkpoint(path / "checkpoints", "latest")
    if latest is not None and (latest / name).is_file():
        return latest / name
    raise CheckpointError(f"--weights {weights}: no {name} there, nor in a checkpoints/ folder under it")
