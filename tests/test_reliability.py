"""What a run may find in its folder, and what it leaves there: the ``latest`` pointer, pruning
after a resume from an older checkpoint, one run per folder, final generators, and the step's
loss weights (issue 12)."""

import os
from pathlib import Path

import pytest
import torch

from cyclestyle.training import checkpoint as ckpt


def write_tiny_checkpoint(checkpoints_dir: Path, step: int, keep: int = 10, **kwargs) -> Path:
    """A checkpoint of one-number networks: all that the file logic needs."""
    networks = {name: {"w": torch.full((1,), float(step))} for name in ckpt.NETWORKS}
    return ckpt.write_checkpoint(checkpoints_dir, step, networks, {"step": step}, [{"rank": 0}], keep=keep, **kwargs)


# --------------------------------------------------------------------------------------------
# The latest pointer


@pytest.mark.parametrize("pointer", [b"", b"\n", b"garbage\n", b"best\n", b"..\n", b"step-99\n", b"step-4/..\n",
                                     b"\xff\xfe\n", b"/tmp\n"])
def test_a_bad_latest_pointer_falls_back_to_the_newest_checkpoint(tmp_path, pointer):
    """Only a step-N folder inside checkpoints/ is a checkpoint; an empty pointer used to name
    checkpoints/ itself, and ``best`` the best generators."""
    checkpoints = tmp_path / "checkpoints"
    write_tiny_checkpoint(checkpoints, 4)
    write_tiny_checkpoint(checkpoints, 8)
    (checkpoints / "best").mkdir()
    (checkpoints / "latest").write_bytes(pointer)
    assert ckpt.resolve_checkpoint(checkpoints, "latest") == checkpoints / "step-8"
    assert ckpt.resolve_checkpoint(checkpoints, str(tmp_path)) == checkpoints / "step-8"  # --resume RUN_DIR


def test_a_good_latest_pointer_is_followed(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    write_tiny_checkpoint(checkpoints, 4)
    write_tiny_checkpoint(checkpoints, 8)
    (checkpoints / "latest").write_text("step-4\n")
    assert ckpt.resolve_checkpoint(checkpoints, "latest") == checkpoints / "step-4"


def test_the_latest_pointer_reaches_the_disk_before_its_rename(tmp_path, monkeypatch):
    """A rename that reaches the disk before the data leaves an empty pointer after a power cut."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", f"{src} -> {dst}"))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    checkpoints = tmp_path / "checkpoints"
    write_tiny_checkpoint(checkpoints, 4)
    (pointer_rename,) = [i for i, (kind, what) in enumerate(events)
                         if kind == "replace" and what.endswith(f"-> {checkpoints / 'latest'}")]
    temporary = events[pointer_rename][1].split(" -> ")[0]
    assert ("fsync", temporary) in events[:pointer_rename]
    assert (checkpoints / "latest").read_text() == "step-4\n"
