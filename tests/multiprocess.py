"""Launching training runs as a user does (one process, or torchrun's gloo processes on the CPU)
and reading back what their checkpoints say about data parallelism: shared by the tests of every
method's multi-process guarantees."""

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from cyclestyle.config import Config
from cyclestyle.training.configure import load_config
from cyclestyle.training.checkpoint import read_checkpoint
from cyclestyle.training.launch import make_accelerator
from cyclestyle.training.methods import METHODS

from .conftest import REPO

TINY = REPO / "configs" / "tiny.yaml"
# Same images in both layouts: no history pool, no flips, no crops (48 px toy images, kept whole).
EXACT = ["train.pool_size=0", "data.flip=false", "data.preprocess=none", "model.n_blocks=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(toy_root: Path, out: Path, *overrides: str, config: Path = TINY) -> list[str]:
    """``-m cyclestyle train`` on ``config`` (tiny.yaml unless told) and the toy data, logging every
    step and keeping every checkpoint, with ``overrides`` last."""
    sets = [f"data.root={toy_root}", f"output_dir={out}", "train.log_every=1", "train.checkpoint_every=2",
            "train.keep_checkpoints=10", *overrides]
    return ["-m", "cyclestyle", "train", "--config", str(config), *sum([["--set", s] for s in sets], [])]


def run(cmd: list[str], resume: bool = False) -> subprocess.CompletedProcess:
    """Run ``cmd`` (``--resume latest`` added when ``resume``); it must succeed."""
    result = subprocess.run(cmd + (["--resume", "latest"] if resume else []),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def torchrun(n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)]


def launch(n: int) -> list[str]:
    """The launcher of ``n`` processes: torchrun, or plain Python for one."""
    return torchrun(n) if n > 1 else [sys.executable]


def trained_parameters(cfg: Config) -> dict[str, list[str]]:
    """For each optimizer of ``cfg``'s method, the network each of its parameters belongs to, in
    the optimizer's order. Read from the method as it prepares itself (one process), so that no
    test has to know which optimizer trains which network, and none can be left out."""
    method = METHODS.get(cfg.method)
    prepared = method(cfg, make_accelerator("no"), method.build_networks(cfg), rank=0)
    owner = {p: name for name, net in prepared.networks.items() for p in net.parameters()}
    owners = {name: [owner[p] for group in u.optimizer.param_groups for p in group["params"]]
              for name, u in prepared.updates.items()}
    assert {n for names in owners.values() for n in names} == set(prepared.networks), "a network no optimizer trains"
    return owners


def first_step_gradients(run_dir: Path) -> dict[str, torch.Tensor]:
    """The gradient applied at step 1 to each network the run trains (by name: G_A, F …), read
    back from the step-1 checkpoint: after one step Adam's first moment is exactly (1 − β1)·g. In
    a multi-process run that g is the average over the processes, so this is what data
    parallelism is about, before any optimizer step can turn float noise into weight differences
    (Adam's first updates are ±lr whatever the gradient's size, so near-zero gradients of either
    sign give full-size steps)."""
    _, state, _ = read_checkpoint(run_dir / "checkpoints" / "step-1")
    cfg = load_config(run_dir / "config.yaml", check_paths=False)
    pieces: dict[str, list[torch.Tensor]] = {}
    for optimizer, owners in trained_parameters(cfg).items():
        moments = state["optimizers"][optimizer]["state"]
        assert sorted(moments) == list(range(len(owners))), f"{optimizer}: a parameter without a gradient"
        for i, network in enumerate(owners):
            pieces.setdefault(network, []).append(moments[i]["exp_avg"].flatten())
    return {network: torch.cat(p) / (1 - cfg.train.beta1) for network, p in pieces.items()}


def relative_differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖a − b‖ / ‖b‖ for each network (rounded, to read in a failure's message)."""
    assert a.keys() == b.keys()
    return {n: float(f"{float((a[n] - b[n]).norm() / b[n].norm()):.2g}") for n in a}


def assert_two_processes_average_like_one_batch(gradients: Callable[[str, int, int], dict[str, torch.Tensor]]) -> None:
    """``gradients(name, processes, batch)``: the first step's gradients of a run. Two processes of
    batch 1 must give one process of batch 2's gradients to float noise (under 1%), and one process
    of batch 1, half the images, must not (over 10%): what DDP's averaging has to tell apart."""
    one = gradients("one", 1, 2)
    two = relative_differences(gradients("two", 2, 1), one)
    assert max(two.values()) < 1e-2, f"2 × batch 1 against 1 × batch 2: {two}"
    half = relative_differences(gradients("half", 1, 1), one)
    assert min(half.values()) > 0.1, f"1 × batch 1 (half the images) against 1 × batch 2: {half}"
