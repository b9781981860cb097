"""What a run that starts or resumes does first in its folder: clear what killed processes left,
and make the log read as one run.

A ``kill -9`` during a write leaves the write's temporaries (``checkpoint.aside`` names them with
the host and pid): ``remove_dead_temporaries`` removes those of dead processes of this host. And a
run resumed from step N goes on from N, so ``log.jsonl``'s records past N are of a history that
no checkpoint holds (steps the killed process took after its last checkpoint, or a branch left
behind by ``--resume step-N``): ``trim_log`` moves them to ``log.dropped.jsonl``, so that every
step appears once in the log and no record is lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from .checkpoint import aside, remove_dead_temporaries
from .samples import samples_dir, trim_samples

DROPPED_LOG = "log.dropped.jsonl"


def recover_run_folder(run_dir: Path, step: int, note: Callable[[str], None] = print) -> None:
    """Before a run starts (``step`` 0) or resumes at ``step`` in ``run_dir`` (its lock held):
    remove the temporaries of dead processes, and trim ``log.jsonl`` and ``samples/`` to ``step``; each
    said in a note."""
    removed = remove_dead_temporaries(run_dir) + remove_dead_temporaries(run_dir / "checkpoints") + \
        remove_dead_temporaries(samples_dir(run_dir))
    if removed:
        shown = ", ".join(p.name for p in removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        note(f"note: removed {len(removed)} temporaries of killed processes ({shown})")
    dropped = trim_log(run_dir / "log.jsonl", step, run_dir / DROPPED_LOG)
    if dropped:
        note(f"note: {dropped} records of log.jsonl were past step {step}, where this run "
             f"{'resumes' if step else 'starts'}: moved to {run_dir / DROPPED_LOG}")
    images = trim_samples(samples_dir(run_dir), step, run_dir.resolve().name)
    if images:
        note(f"note: removed {images} sample images of {samples_dir(run_dir)} past step {step}, where this run "
             f"{'resumes' if step else 'starts'}")


def trim_log(log: Path, step: int, dropped_to: Path) -> int:
    """Keep in ``log`` the records of steps up to ``step``; the others (and lines torn by a kill,
    which are no record) are appended to ``dropped_to`` first, then ``log`` is replaced whole.
    Returns how many lines moved."""
    try:
        lines = log.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    except FileNotFoundError:
        return 0
    kept, dropped = [], []
    for line in lines:
        (kept if _step_of(line) is not None and _step_of(line) <= step else dropped).append(line)
    dropped = [line for line in dropped if line.strip()]  # blank lines hold nothing to keep
    if len(kept) == len(lines):
        return 0
    if dropped:
        with dropped_to.open("ab") as f:
            f.write("".join(f"{line}\n" for line in dropped).encode("utf-8", "surrogateescape"))
            f.flush()
            os.fsync(f.fileno())
    tmp = aside(log)
    try:
        tmp.write_bytes("".join(f"{line}\n" for line in kept).encode("utf-8", "surrogateescape"))
        os.replace(tmp, log)
    finally:
        tmp.unlink(missing_ok=True)
    return len(dropped)


def _step_of(line: str) -> int | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None
