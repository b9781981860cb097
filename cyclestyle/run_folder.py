"""Where a run folder keeps what training writes and inference reads, and how a path resolves.

    OUTPUT_DIR/
      config.yaml                 the run's resolved config
      G_A.safetensors …           the final generators: one per direction the method trains
      log.jsonl                   one line per log record and evaluation
      checkpoints/
        latest                    one line naming the newest complete checkpoint
        step-N/                   a checkpoint (``training/checkpoint.py`` writes and reads it)
        best/                     the generators of the best held-out evaluation, and metrics.json

Training writes these and inference opens them; both read the layout here, so neither needs the
other. A weights file says which direction it translates (``cyclestyle.direction`` in its
metadata); files written before that was recorded follow the CycleGAN convention: ``G_A`` is
A→B and ``G_B`` is B→A.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .models.weights import CheckpointError, read_metadata

CONFIG = "config.yaml"
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "latest"  # the pointer file: one line naming the newest checkpoint of the run
BEST = "best"
DIRECTION_KEY = "cyclestyle.direction"  # weights metadata: the direction a generator file translates
# weights metadata: every direction the run trains and its generator's name (G_A …), so that a
# folder missing one of them (a CycleGAN run without G_B) is told from a one-way run (CUT)
TRANSLATORS_KEY = "cyclestyle.translators"
LEGACY_DIRECTIONS = {"G_A": "AtoB", "G_B": "BtoA"}  # files that record no direction
_STEP_DIR = re.compile(r"step-([0-9]+)")


def checkpoints_dir(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS


def list_checkpoints(checkpoints: Path) -> list[Path]:
    """Complete ``step-N`` folders, oldest first."""
    if not checkpoints.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoints.iterdir() if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def step_of(checkpoint: Path) -> int:
    """N of a ``step-N`` folder."""
    match = _STEP_DIR.fullmatch(checkpoint.name)
    if match is None:
        raise ValueError(f"{checkpoint} is not a step-N checkpoint folder")
    return int(match.group(1))


def last_good_checkpoint(checkpoints: Path) -> str:
    """The newest complete checkpoint's path, for an error that stops a run."""
    found = list_checkpoints(checkpoints)
    return str(found[-1]) if found else "none (no checkpoint was written yet)"


def read_latest(checkpoints: Path) -> Path | None:
    """The ``step-N`` folder that the ``latest`` pointer names, or None. An empty, unreadable or
    garbage pointer (``best``, ``..``, a path elsewhere, a folder since removed) names nothing:
    joined to the folder as it is, an empty name would be ``checkpoints/`` itself."""
    try:
        name = (checkpoints / LATEST).read_bytes().decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    target = checkpoints / name
    return target if _STEP_DIR.fullmatch(name) and target.is_dir() else None


def resolve_checkpoint(checkpoints: Path, which: str) -> Path | None:
    """``latest`` → the folder ``latest`` names, or the newest complete one when the pointer is
    missing or names anything but a ``step-N`` folder here (None when the run has none yet);
    anything else is a path to a ``step-N`` folder, or to a run folder (its latest)."""
    if which == LATEST:
        found = list_checkpoints(checkpoints)
        return read_latest(checkpoints) or (found[-1] if found else None)
    path = Path(which).expanduser()
    if (path / CHECKPOINTS).is_dir():  # a run directory
        return resolve_checkpoint(path / CHECKPOINTS, LATEST)
    if not path.is_dir():
        raise CheckpointError(f"--resume {which}: no such checkpoint folder")
    return path


def read_best(checkpoints: Path) -> dict[str, Any] | None:
    """The evaluation record kept with the best generators, or None when there are none."""
    try:
        return json.loads((checkpoints / BEST / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


def generator_files(folder: Path) -> dict[str, Path]:
    """The generator file of each direction in a run, checkpoint or best folder: the weights
    files whose metadata names a direction, else (older files) ``G_A`` and ``G_B``."""
    files: dict[str, Path] = {}
    for path in sorted(folder.glob("*.safetensors")):
        try:
            direction = read_metadata(path).get(DIRECTION_KEY)
        except CheckpointError:
            direction = None  # unreadable: a G_A or G_B is still named below, and its loading says why
        direction = direction or LEGACY_DIRECTIONS.get(path.stem)
        if direction in ("AtoB", "BtoA") and direction not in files:
            files[direction] = path
    return {d: files[d] for d in ("AtoB", "BtoA") if d in files}


def missing_generators(folder: Path, files: dict[str, Path]) -> dict[str, Path]:
    """The generator files of directions the run in ``folder`` trains but ``folder`` lacks (its
    generator ``files``, by direction): what the files' metadata says the run trains
    (``TRANSLATORS_KEY``), else for files written before it was recorded, the generators of the
    run's latest checkpoint. A run folder of those versions without checkpoints says nothing of
    the method that wrote it (a CUT run has G_A alone), so nothing is taken as missing there."""
    expected: dict[str, str] | None = None
    for path in files.values():
        try:
            meta = read_metadata(path)
        except CheckpointError:
            continue
        if TRANSLATORS_KEY in meta:
            try:
                recorded = json.loads(meta[TRANSLATORS_KEY])
            except ValueError:
                continue
            if isinstance(recorded, dict) and all(isinstance(v, str) for v in recorded.values()):
                expected = {d: n for d, n in recorded.items() if d in ("AtoB", "BtoA")}
                break
    if expected is None and folder != folder.parent and (folder / CHECKPOINTS).is_dir():
        try:
            latest = resolve_checkpoint(folder / CHECKPOINTS, LATEST)
        except CheckpointError:
            latest = None
        if latest is not None and latest.resolve() != folder.resolve():
            expected = {d: p.stem for d, p in generator_files(latest).items()}
    return {d: folder / f"{name}.safetensors" for d, name in (expected or {}).items() if d not in files}


def find_config(folder: Path) -> Path | None:
    """The run's ``config.yaml``: beside the weights, or in the run folder above a checkpoint."""
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / CONFIG).is_file():
            return candidate / CONFIG
    return None
