"""Multi-process training on CPU (gloo), launched the way a user launches it."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.checkpoint import NETWORKS, read_checkpoint
from cyclestyle.config import load_config
from cyclestyle.models import build_discriminator, build_generator

from .conftest import REPO

# Same images in both layouts: no history pool, no flips, no crops (48 px toy images, kept whole).
EXACT = ["train.pool_size=0", "data.flip=false", "data.preprocess=none", "model.n_blocks=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_args(toy_root: Path, out: Path, *overrides: str) -> list[str]:
    sets = [f"data.root={toy_root}", f"output_dir={out}", "train.log_every=1", "train.checkpoint_every=2",
            "train.keep_checkpoints=10", *overrides]
    return ["-m", "cyclestyle", "train", "--config", str(REPO / "configs" / "tiny.yaml"),
            *sum([["--set", s] for s in sets], [])]


def run(cmd: list[str], resume: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd + (["--resume", "latest"] if resume else []),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def torchrun(n: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n)]


def outputs(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    """Every network's output on fixed inputs. Outputs, not weights, are compared: a convolution
    bias just before an instance norm has no effect and a zero gradient, so Adam moves it by
    ±lr on float noise, differently in every summation order."""
    cfg = load_config(run_dir / "config.yaml")
    folder = run_dir / "checkpoints" / f"step-{step}"
    nets = {"G_A": build_generator(cfg.model), "G_B": build_generator(cfg.model, reverse=True),
            "D_A": build_discriminator(cfg.model, 3), "D_B": build_discriminator(cfg.model, 3)}
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = {}
    for name, net in nets.items():
        net.load_state_dict(load_file(folder / f"{name}.safetensors"))
        with torch.no_grad():
            out[name] = net(x)
    return out


def max_difference(a, b) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in NETWORKS)


def test_accelerate_launch_gives_two_identical_replicas(toy_root, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU machine: two gloo processes
    whose weights stay bitwise identical (checked by each process's digest at every checkpoint)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *train_args(toy_root, tmp_path / "run", "train.max_steps=4")]
    run(cmd)
    for step in (2, 4):
        _, state, processes = read_checkpoint(tmp_path / "run" / "checkpoints" / f"step-{step}")
        assert state["num_processes"] == 2 and len(processes) == 2
        assert processes[0]["weights_digest"] == processes[1]["weights_digest"]
        # ...while each process drew its own data and kept its own random state
        assert not torch.equal(processes[0]["rng"]["torch"], processes[1]["rng"]["torch"])


def test_two_processes_of_batch_1_equal_one_process_of_batch_2(toy_root, tmp_path):
    run(torchrun(2) + train_args(toy_root, tmp_path / "two", "train.max_steps=3", "train.batch_size=1", *EXACT))
    run([sys.executable] + train_args(toy_root, tmp_path / "one", "train.max_steps=3", "train.batch_size=2", *EXACT))
    two, one = outputs(tmp_path / "two", 3), outputs(tmp_path / "one", 3)
    assert max_difference(one, two) < 1e-4
    # And the comparison has teeth: one more step makes a visible difference.
    run([sys.executable] + train_args(toy_root, tmp_path / "one4", "train.max_steps=4", "train.batch_size=2", *EXACT))
    assert max_difference(outputs(tmp_path / "one4", 4), two) > 1e-3
    losses_two = [json.loads(l) for l in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in losses_two] == [1, 2, 3]


@pytest.mark.parametrize("first, second", [(2, 1), (1, 2)])
def test_checkpoint_resumes_with_another_process_count(toy_root, tmp_path, first, second):
    out = tmp_path / "run"

    def launch(n: int) -> list[str]:
        return torchrun(n) if n > 1 else [sys.executable]

    # Global batch 2 either way (2 × 1 or 1 × 2), so the position in the epoch stays aligned.
    run(launch(first) + train_args(toy_root, out, "train.max_steps=2", f"train.batch_size={2 // first}"))
    result = run(launch(second) + train_args(toy_root, out, "train.max_steps=4", f"train.batch_size={2 // second}"),
                 resume=True)
    assert "resumed from" in result.stdout + result.stderr
    _, state, processes = read_checkpoint(out / "checkpoints" / "step-4")
    assert state["num_processes"] == second and len(processes) == second
    assert state["progress"] == {"step": 4, "epoch": 0, "position": 8}


def test_accelerate_cpu_launch_of_two_warns_that_it_started_one(toy_root, tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           *train_args(toy_root, tmp_path / "run", "train.max_steps=1")]
    result = run(cmd)
    assert "asked for 2 processes, but this run has 1" in result.stdout + result.stderr
