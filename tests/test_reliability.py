"""What a run may find in its folder, and what it leaves there: the ``latest`` pointer, pruning
after a resume from an older checkpoint, one run per folder, final generators, and the step's
loss weights (issue 12)."""

import os
from pathlib import Path

import pytest
import torch

from cyclestyle.training import checkpoint as ckpt
from cyclestyle.training.loop import train


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


# --------------------------------------------------------------------------------------------
# Pruning by the run's own history


@pytest.mark.parametrize("keep, steps, kept", [(1, 6, {"step-6"}), (2, 10, {"step-8", "step-10"})])
def test_a_run_resumed_from_an_older_checkpoint_prunes_by_its_own_history(tiny_config, keep, steps, kept):
    """Resumed from step 4 of a run that went on to 12: steps 8 and 12 are a branch left behind.
    Counting them as the newest used to prune the new checkpoints (with keep 1, the one just
    written, and `latest` then fell back to the abandoned step 12)."""
    run = train(tiny_config())  # checkpoints 4, 8, 12
    cfg = tiny_config(f"train.keep_checkpoints={keep}", "train.checkpoint_every=2", f"train.max_steps={steps}")
    train(cfg, resume=str(run / "checkpoints" / "step-4"))
    checkpoints = run / "checkpoints"
    assert {p.name for p in ckpt.list_checkpoints(checkpoints)} == kept
    assert (checkpoints / "latest").read_text() == f"step-{steps}\n"
    assert ckpt.resolve_checkpoint(checkpoints, "latest") == checkpoints / f"step-{steps}"
    assert ckpt.load_state(checkpoints / f"step-{steps}" / "training_state.pt")["progress"]["step"] == steps


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for step in (4, 8, 12):
        write_tiny_checkpoint(checkpoints, step, keep=5)
    written = write_tiny_checkpoint(checkpoints, 6, keep=1, branched_from=4)
    assert ckpt.list_checkpoints(checkpoints) == [written]
    write_tiny_checkpoint(checkpoints, 10, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(checkpoints)] == ["step-6", "step-10"]
