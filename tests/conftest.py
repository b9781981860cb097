import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclestyle.training.configure import load_config
from cyclestyle.demo.toy import make_toy_dataset

REPO = Path(__file__).resolve().parents[1]

# A tiny CUT: two residual blocks, so CUT's layers 12 and 13 are our blocks 0 and 1; few patches.
TINY_CUT = ["model.n_blocks=2", "cut.nce_layers=[0,4,8,12,13]", "cut.num_patches=16", "cut.mlp_dim=32"]
# A tiny fast style network (ngf 8, one residual block, 32 px) on a random VGG-16, in fp32 on
# every CPU (auto would be bf16 on a Zen 5); the style image comes from the style_image fixture.
TINY_STYLE = ["style.vgg_weights=random", "model.ngf=8", "model.n_blocks=1", "data.load_size=32",
              "data.crop_size=32", "data.num_workers=0", "style.tv_weight=10", "train.mixed_precision=no"]

# No test may reach a W&B server, even on a developer's machine that holds a key: the dashboard
# is off for every run here (subprocesses inherit this) except in test_tracking.py, whose fixture
# clears the WANDB_* variables and works offline with no credentials.
os.environ["WANDB_MODE"] = "disabled"


def _share_the_cpus_among_xdist_workers() -> None:
    """Under pytest-xdist, each worker's torch (and the runs it launches, through OMP_NUM_THREADS)
    takes its share of the CPUs, not all of them: N workers of N threads each would oversubscribe
    the machine N times over. Measured on 2 CPUs (test_cut.py and two torchrun tests, -n 2): 41 s
    with 1 thread per worker, 142 s with 2, 100 s with no xdist. Left alone without xdist, or when
    the caller sets OMP_NUM_THREADS."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cpus // workers)
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


_share_the_cpus_among_xdist_workers()

# The fixtures that exist to train a run: a test that asks for one (itself or through another
# fixture) trains end to end, so it is `slow` wherever it lives (see scripts/test.sh --quick).
TRAINING_FIXTURES = {"tiny_config", "tiny_overrides"}


def pytest_collection_modifyitems(items):
    for item in items:
        if TRAINING_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """A small two-domain dataset built by the project itself (48 px, 12 images per domain)."""
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), n_train=12, n_test=4, size=48, seed=0)


@pytest.fixture(scope="session")
def style_image(tmp_path_factory) -> Path:
    """A striped, saturated 'painting' unlike the toy photos."""
    path = tmp_path_factory.mktemp("style") / "stripes.png"
    y, x = np.mgrid[0:40, 0:56]
    stripes = np.stack([(np.sin(x / 2.0) > 0) * 230, (np.sin(y / 3.0) > 0) * 200, np.full_like(x, 40)], axis=-1)
    Image.fromarray(stripes.astype(np.uint8)).save(path)
    return path


@pytest.fixture
def tiny_overrides(toy_root, tmp_path):
    """Overrides on configs/tiny.yaml for a run of a few seconds, into a fresh output folder."""
    return [f"data.root={toy_root}", f"output_dir={tmp_path / 'run'}", "model.n_blocks=2",
            "train.max_steps=12", "train.checkpoint_every=4", "train.log_every=2", "train.keep_checkpoints=5",
            # fp32 on every CPU: with the default (auto) a Zen 5 would train in bf16 and a Zen 3 not.
            "train.mixed_precision=no"]


@pytest.fixture
def tiny_config(tiny_overrides):
    return lambda *extra: load_config(REPO / "configs" / "tiny.yaml", [*tiny_overrides, *extra])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cyclestyle", *args]


def kill_after_a_checkpoint(args: list[str], run_dir: Path, timeout: float = 120, command: list[str] | None = None
                            ) -> Path:
    """Run ``cyclestyle *args`` (or ``command + args``) and SIGKILL it as soon as it has written a
    checkpoint under ``run_dir`` (no chance to save anything more); returns the checkpoint it
    stopped at."""
    import subprocess
    import time

    from cyclestyle.run_folder import resolve_checkpoint

    proc = subprocess.Popen([*command, *args] if command else cli(*args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=REPO)
    deadline = time.time() + timeout
    while not (run_dir / "checkpoints" / "latest").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    stopped_at = resolve_checkpoint(run_dir / "checkpoints", "latest")
    assert stopped_at is not None
    return stopped_at


def poison_cycle_loss_from_step(monkeypatch, step: int) -> None:
    """Make CycleGAN's cycle-consistency loss NaN from training step ``step`` on (it is computed
    twice per step: from A and from B)."""
    from cyclestyle.training import losses

    calls = {"n": 0}
    real_cycle = losses.cycle_consistency_loss

    def poisoned(rec, real, weight):
        calls["n"] += 1
        value = real_cycle(rec, real, weight)
        return value * float("nan") if calls["n"] > 2 * (step - 1) else value

    monkeypatch.setattr(losses, "cycle_consistency_loss", poisoned)


def few_cpus(monkeypatch) -> int:
    """Let this process see at most 2 of its CPUs (as a container's or a cluster job's share
    would), for torch's worker check as for ours; returns how many. Keeps worker tests light on
    a machine of many cores."""
    allowed = set(sorted(os.sched_getaffinity(0))[:2])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(allowed))
    return len(allowed)


def worker_warnings(recorded) -> list[str]:
    """torch's DataLoader warnings of more workers than CPUs among ``recorded`` (pytest's recwarn)."""
    return [str(w.message) for w in recorded if "worker processes in total" in str(w.message)]


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module of tiny networks and images (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): one thread is as fast there, and steady on a CPU
    shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_compiled_matches_eager(eager, compiled, x, output_tolerance: float, gradient_tolerance: float) -> None:
    """The same weights and input, before any optimizer step: the outputs and weight gradients of
    a compiled network agree with the eager one's to float noise (compiled kernels fuse and
    reorder), and its state dict keys are untouched."""
    assert list(compiled.state_dict()) == list(eager.state_dict())
    outputs = [net(x) for net in (eager, compiled)]
    for out in outputs:
        out.square().mean().backward()
    assert (outputs[1] - outputs[0]).abs().max() <= output_tolerance * max(1.0, outputs[0].abs().max().item())
    # As one vector: a conv bias in front of instance norm has a gradient of exactly zero in
    # exact arithmetic, so its float noise is no measure of agreement on its own.
    grads = [torch.cat([p.grad.flatten() for p in net.parameters()]) for net in (eager, compiled)]
    assert (grads[1] - grads[0]).norm() <= gradient_tolerance * grads[0].norm()
