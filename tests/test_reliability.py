"""What a run may find in its folder, and what it leaves there: the ``latest`` pointer, pruning
after a resume from an older checkpoint, one run per folder, final generators, and the step's
loss weights (issue 12)."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch

from cyclestyle.config import ConfigError
from cyclestyle.data import DataError
from cyclestyle import run_folder
from cyclestyle.training import checkpoint as ckpt
from cyclestyle.training.lock import OutputDirBusy, OutputDirLock
from cyclestyle.training.loop import train

from .conftest import REPO, cli

pytestmark = pytest.mark.slow  # trainings killed, locked and resumed: not in `test.sh --quick`

CYCLEGAN_NETWORKS = ("G_A", "G_B", "D_A", "D_B")  # what a CycleGAN checkpoint holds


def write_tiny_checkpoint(checkpoints_dir: Path, step: int, keep: int = 10, **kwargs) -> Path:
    """A checkpoint of one-number networks: all that the file logic needs."""
    networks = {name: {"w": torch.full((1,), float(step))} for name in CYCLEGAN_NETWORKS}
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
    assert run_folder.resolve_checkpoint(checkpoints, "latest") == checkpoints / "step-8"
    assert run_folder.resolve_checkpoint(checkpoints, str(tmp_path)) == checkpoints / "step-8"  # --resume RUN_DIR


def test_a_good_latest_pointer_is_followed(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    write_tiny_checkpoint(checkpoints, 4)
    write_tiny_checkpoint(checkpoints, 8)
    (checkpoints / "latest").write_text("step-4\n")
    assert run_folder.resolve_checkpoint(checkpoints, "latest") == checkpoints / "step-4"


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
    assert {p.name for p in run_folder.list_checkpoints(checkpoints)} == kept
    assert (checkpoints / "latest").read_text() == f"step-{steps}\n"
    assert run_folder.resolve_checkpoint(checkpoints, "latest") == checkpoints / f"step-{steps}"
    assert ckpt.load_state(checkpoints / f"step-{steps}" / "training_state.pt")["progress"]["step"] == steps


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    for step in (4, 8, 12):
        write_tiny_checkpoint(checkpoints, step, keep=5)
    written = write_tiny_checkpoint(checkpoints, 6, keep=1, branched_from=4)
    assert run_folder.list_checkpoints(checkpoints) == [written]
    write_tiny_checkpoint(checkpoints, 10, keep=2)
    assert [p.name for p in run_folder.list_checkpoints(checkpoints)] == ["step-6", "step-10"]


# --------------------------------------------------------------------------------------------
# One run per output folder


def train_command(tiny_overrides: list[str], *extra: str) -> list[str]:
    sets = [*tiny_overrides, *extra]
    return cli("train", "--config", str(REPO / "configs" / "tiny.yaml"), *sum([["--set", s] for s in sets], []))


def test_a_second_run_in_a_locked_folder_refuses_in_one_line_naming_the_holder(tiny_config, tiny_overrides):
    cfg = tiny_config("train.max_steps=2")
    run_dir = Path(cfg.output_dir)
    with OutputDirLock.acquire(run_dir):  # this test process plays the first run
        with pytest.raises(OutputDirBusy, match=rf"pid {os.getpid()} on host {socket.gethostname()}"):
            train(cfg)
        second = subprocess.run(train_command(tiny_overrides, "train.max_steps=2"), capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in second.stderr
        assert not (run_dir / "checkpoints").exists()
    train(cfg)  # released: the folder is free again
    assert run_folder.list_checkpoints(run_dir / "checkpoints")


def test_the_lock_is_released_however_a_run_ends(tiny_config):
    cfg = tiny_config("train.max_steps=2")
    run_dir = train(cfg)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(cfg)  # refused after taking the lock
    OutputDirLock.acquire(run_dir).release()


def test_a_killed_run_frees_its_folder_at_once_though_its_data_workers_linger(tiny_overrides, tmp_path):
    """The kernel drops the lock with its process; DataLoader workers, forked while it was held,
    must not keep it (they notice their parent's death only seconds later)."""
    run_dir = tmp_path / "run"  # tiny_overrides' output_dir
    proc = subprocess.Popen(train_command(tiny_overrides, "data.num_workers=2", "train.max_steps=100000"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (run_dir / "log.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.01)
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "the run has no DataLoader workers"
    proc.kill()
    proc.wait()
    try:
        OutputDirLock.acquire(run_dir).release()
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()


def folder_without_images(tmp_path: Path) -> Path:
    root = tmp_path / "no-images"
    for split in ("trainA", "trainB"):
        (root / split).mkdir(parents=True, exist_ok=True)
    return root


def test_a_run_that_fails_before_writing_anything_leaves_nothing(tiny_config, tmp_path):
    """No folder (nor parent) created for a run that stopped at its data, and no lone .lock."""
    run_dir = tmp_path / "runs" / "new" / "run"
    with pytest.raises(DataError, match="no images in"):
        train(tiny_config(f"data.root={folder_without_images(tmp_path)}", f"output_dir={run_dir}"))
    assert not (tmp_path / "runs").exists()

    empty = tmp_path / "existing"  # a folder the run did not create stays, empty as it was
    empty.mkdir()
    with pytest.raises(DataError, match="no images in"):
        train(tiny_config(f"data.root={folder_without_images(tmp_path)}", f"output_dir={empty}"))
    assert empty.is_dir() and not list(empty.iterdir())


def test_a_failed_run_leaves_a_folder_that_holds_anything_else_as_it_was(tiny_config, tmp_path):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine\n")
    with pytest.raises(DataError, match="no images in"):
        train(tiny_config(f"data.root={folder_without_images(tmp_path)}", f"output_dir={run_dir}"))
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "notes.txt"]
    assert (run_dir / "notes.txt").read_text() == "mine\n"


def test_a_lock_taken_on_a_file_just_unlinked_is_taken_again_on_the_new_one(tmp_path, monkeypatch):
    """A run that opened .lock as the last one was releasing it can lock the unlinked file: it
    would then hold a lock no other run sees. acquire must notice and lock what the path names."""
    from cyclestyle.training import lock as lock_module

    run_dir = tmp_path / "run"
    real_flock, calls = lock_module.fcntl.flock, []

    def released_meanwhile(fd, operation):
        calls.append(fd)
        if len(calls) == 1:  # the holder unlinks the file between our open and our flock
            os.unlink(run_dir / ".lock")
        return real_flock(fd, operation)

    monkeypatch.setattr(lock_module.fcntl, "flock", released_meanwhile)
    with OutputDirLock.acquire(run_dir) as held:
        assert len(calls) == 2
        assert os.fstat(held.fd).st_ino == os.stat(run_dir / ".lock").st_ino
        with pytest.raises(OutputDirBusy):
            OutputDirLock.acquire(run_dir)  # a second run sees the lock that is held
        (run_dir / "config.yaml").write_text("seed: 0\n")  # the run wrote something: its lock file stays
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml"]


def test_temporary_names_are_the_process_own_on_this_host(tmp_path):
    name = ckpt.aside(tmp_path / "latest").name
    assert name.startswith(".tmp-latest-") and name.endswith(f"-{socket.gethostname()}-{os.getpid()}")


# --------------------------------------------------------------------------------------------
# A folder that holds a trained run's generators


def test_a_new_run_refuses_a_folder_with_final_generators_unless_resumed(tiny_config, tiny_overrides):
    """No checkpoint left (deleted to save space, or never kept) but the generators are: a new
    run would overwrite them without a word."""
    cfg = tiny_config("train.max_steps=2")
    run_dir = train(cfg)
    shutil.rmtree(run_dir / "checkpoints")
    before = (run_dir / "G_A.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"G_A\.safetensors.*--resume latest"):
        train(cfg)
    refused = subprocess.run(train_command(tiny_overrides, "train.max_steps=2"), capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "already holds trained generators" in refused.stderr
    assert (run_dir / "G_A.safetensors").read_bytes() == before
    train(cfg, resume="latest")  # asked for: a new run over them
    assert run_folder.list_checkpoints(run_dir / "checkpoints")


# --------------------------------------------------------------------------------------------
# The step's loss weights


def paper_generator_objective(g_a, g_b, d_a, d_b, a, b, lam_a: float, lam_b: float, lam_idt: float,
                              identity_lambdas: tuple[float, float] | None = None) -> torch.Tensor:
    """Eq. 3 of the paper with LSGAN and §5.2's identity term, as the reference weights it:
    λ_A for the cycle and identity terms that start from A (G_B(a) ≈ a), λ_B for those from B.
    ``identity_lambdas`` replaces (λ_A, λ_B) in the identity terms, to mis-wire them on purpose."""
    import torch.nn.functional as F

    idt_a, idt_b = identity_lambdas or (lam_a, lam_b)
    adversarial = ((d_a(g_a(a)) - 1) ** 2).mean() + ((d_b(g_b(b)) - 1) ** 2).mean()
    cycle = lam_a * F.l1_loss(g_b(g_a(a)), a) + lam_b * F.l1_loss(g_a(g_b(b)), b)
    identity = lam_idt * (idt_b * F.l1_loss(g_a(b), b) + idt_a * F.l1_loss(g_b(a), a))
    return adversarial + cycle + identity


def flat_gradients(loss: torch.Tensor, nets) -> list[torch.Tensor]:
    return [torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)])
            for net in nets]


def relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).norm() / y.norm()) for x, y in zip(a, b))


def test_the_generator_step_weights_each_term_as_the_paper(tmp_path):
    """λ_A ≠ λ_B and λ_idt > 0: the gradients that generator_step leaves on G_A and G_B are those
    of the paper's objective computed here by hand, to float noise; swapping λ_A and λ_B, or
    weighting each identity term by the other λ, would change them by far more."""
    import copy

    from cyclestyle.config import Config, LossConfig
    from cyclestyle.models import PatchDiscriminator, ResnetGenerator
    from cyclestyle.training.launch import make_accelerator
    from cyclestyle.training.methods.cyclegan import CycleGAN

    torch.manual_seed(0)
    nets = {"G_A": ResnetGenerator(ngf=4, n_blocks=1), "G_B": ResnetGenerator(ngf=4, n_blocks=1),
            "D_A": PatchDiscriminator(ndf=4, n_layers=2), "D_B": PatchDiscriminator(ndf=4, n_layers=2)}
    by_hand = {name: copy.deepcopy(net) for name, net in nets.items()}
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    lam_a, lam_b, lam_idt = 3.0, 11.0, 0.3

    accelerator = make_accelerator("no")
    cfg = Config(loss=LossConfig(lambda_a=lam_a, lambda_b=lam_b, lambda_identity=lam_idt))
    gan = CycleGAN(cfg, accelerator, nets, rank=0)
    terms, _, _ = gan.update_generators(a, b, 1)
    stepped = [torch.cat([p.grad.flatten() for p in gan.plain(n).parameters()]) for n in ("G_A", "G_B")]

    g_a, g_b, d_a, d_b = (by_hand[n] for n in ("G_A", "G_B", "D_A", "D_B"))
    expected = flat_gradients(paper_generator_objective(g_a, g_b, d_a, d_b, a, b, lam_a, lam_b, lam_idt), (g_a, g_b))
    assert relative(stepped, expected) < 1e-5
    swapped = flat_gradients(paper_generator_objective(g_a, g_b, d_a, d_b, a, b, lam_b, lam_a, lam_idt), (g_a, g_b))
    assert relative(swapped, expected) > 1e-2
    miswired = flat_gradients(paper_generator_objective(g_a, g_b, d_a, d_b, a, b, lam_a, lam_b, lam_idt,
                                                        identity_lambdas=(lam_b, lam_a)), (g_a, g_b))
    assert relative(miswired, expected) > 1e-2

    import torch.nn.functional as F

    with torch.no_grad():  # and the logged terms under the reference's names
        assert terms["idt_A"].item() == pytest.approx(lam_idt * lam_b * F.l1_loss(g_a(b), b).item(), rel=1e-5)
        assert terms["idt_B"].item() == pytest.approx(lam_idt * lam_a * F.l1_loss(g_b(a), a).item(), rel=1e-5)
        assert terms["cycle_A"].item() == pytest.approx(lam_a * F.l1_loss(g_b(g_a(a)), a).item(), rel=1e-5)
        assert terms["cycle_B"].item() == pytest.approx(lam_b * F.l1_loss(g_a(g_b(b)), b).item(), rel=1e-5)
