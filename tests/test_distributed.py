"""Multi-process training on CPU (gloo), launched the way a user launches it."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from cyclestyle.training.checkpoint import read_checkpoint

from .conftest import REPO, TINY_CUT, TINY_STYLE
from .multiprocess import (
    EXACT,
    assert_two_processes_average_like_one_batch,
    first_step_gradients,
    free_port,
    launch,
    run,
    torchrun,
    train_args,
)

pytestmark = pytest.mark.slow  # torchrun and accelerate launches of two processes: not in `test.sh --quick`

METHODS = ("cyclegan", "cut", "fastcut", "fast_style")


def method_args(method: str, toy_root: Path, out: Path, style_image: Path, *overrides: str) -> list[str]:
    """``train_args`` of a tiny run of ``method``: tiny.yaml as it is for CycleGAN, with the tiny
    CUT settings for CUT and FastCUT, fast_style.yaml on the toy photos of domain A for the fast
    style network."""
    if method == "fast_style":
        sets = ["data.format=folder", f"style.images=[{style_image}]", *TINY_STYLE]
        return train_args(toy_root, out, *sets, *overrides, config=REPO / "configs" / "fast_style.yaml")
    sets = [] if method == "cyclegan" else [f"method={method}", *TINY_CUT]
    return train_args(toy_root, out, *sets, *overrides)


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


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_of_batch_1_equal_one_process_of_batch_2(method, toy_root, style_image, tmp_path):
    """Same images per step, and the same averaged gradient for every network the method trains
    (CUT's projection heads F included): compared at step 1, to float noise. The two layouts sum
    in different orders and CPUs differ in their kernels; on the toy images, instance norm
    amplifies that noise in CycleGAN's generators to 4e-4 of the gradient's norm (measured on Zen
    5; one process computing the two images one at a time differs from batch 2 as much; the other
    methods' networks, 5e-6 at most). One process of batch 1 computes what process 0 alone would
    apply if a network's gradient were not averaged, or if CUT drew image 1's patches as image 0's:
    that differs by over 10% for each network (measured: 40% and more)."""
    def gradients(name: str, processes: int, batch: int) -> dict[str, torch.Tensor]:
        steps = ["train.max_steps=2", "train.checkpoint_every=1", f"train.batch_size={batch}", *EXACT]
        run(launch(processes) + method_args(method, toy_root, tmp_path / name, style_image, *steps))
        return first_step_gradients(tmp_path / name)

    assert_two_processes_average_like_one_batch(gradients)
    # The replicas stay identical, and both steps are logged once.
    for step in (1, 2):
        _, _, processes = read_checkpoint(tmp_path / "two" / "checkpoints" / f"step-{step}")
        assert processes[0]["weights_digest"] == processes[1]["weights_digest"]
    records = [json.loads(l) for l in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]


@pytest.mark.parametrize("method, first, second", [
    ("cyclegan", 2, 1), ("cyclegan", 1, 2), ("cut", 2, 1), ("fastcut", 1, 2), ("fast_style", 2, 1)])
def test_checkpoint_resumes_with_another_process_count(method, first, second, toy_root, style_image, tmp_path):
    """A run checkpointed by ``first`` processes goes on in ``second`` and finishes: the
    networks, optimizers and progress do not depend on the process count (a process that the
    checkpoint lacks takes process 0's random state)."""
    out = tmp_path / "run"

    def train_in(processes: int, steps: int, resume: bool = False) -> str:
        # Global batch 2 either way (2 × 1 or 1 × 2), so the position in the epoch stays aligned.
        sets = [f"train.max_steps={steps}", f"train.batch_size={2 // processes}"]
        result = run(launch(processes) + method_args(method, toy_root, out, style_image, *sets), resume=resume)
        return result.stdout + result.stderr

    train_in(first, 2)
    assert "resumed from" in train_in(second, 4, resume=True)
    _, state, processes = read_checkpoint(out / "checkpoints" / "step-4")
    assert state["num_processes"] == second and len(processes) == second
    assert len({p["weights_digest"] for p in processes}) == 1
    assert state["progress"] == {"step": 4, "epoch": 0, "position": 8}
    records = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(v) for r in records for k, v in r.items() if k not in ("step", "epoch"))
    assert (out / "G_A.safetensors").is_file()


def test_accelerate_cpu_launch_of_two_warns_that_it_started_one(toy_root, tmp_path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           *train_args(toy_root, tmp_path / "run", "train.max_steps=1")]
    result = run(cmd)
    assert "asked for 2 processes, but this run has 1" in result.stdout + result.stderr


STOPS_ON_NAN = '''
import os, sys
from pathlib import Path
import torch
from cyclestyle.training.configure import load_config
from cyclestyle.training import losses
from cyclestyle.training.loop import NonFiniteLoss, train

real_cycle = losses.cycle_consistency_loss
losses.cycle_consistency_loss = lambda rec, real, weight: real_cycle(rec, real, weight) * float("nan")
try:
    train(load_config(sys.argv[1], sys.argv[2:]))
except NonFiniteLoss:
    pass
threads = sorted(n for t in Path("/proc/self/task").iterdir() if "gloo" in (n := (t / "comm").read_text().strip()))
print(f"rank {os.environ['RANK']}: group {torch.distributed.is_initialized()}, gloo threads {threads}", flush=True)
'''


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process's threads from /proc")
def test_a_run_that_stops_on_an_error_leaves_no_process_group_behind(toy_root, tmp_path):
    """Gloo's threads free each finished collective's tensors, taking the GIL when Python let go
    of them first; a process that exits with its group alive can reach that while the interpreter
    is finalizing, and aborts ("terminate called without an active exception"). However train()
    ends, here on a NaN loss in both processes, the group is destroyed and its threads joined."""
    script = tmp_path / "stops_on_nan.py"
    script.write_text(STOPS_ON_NAN)
    sets = [f"data.root={toy_root}", f"output_dir={tmp_path / 'run'}", "model.n_blocks=1", "train.max_steps=4"]
    result = run(torchrun(2) + [str(script), str(REPO / "configs" / "tiny.yaml"), *sets])
    for rank in (0, 1):
        assert f"rank {rank}: group False, gloo threads []" in result.stdout, result.stdout + result.stderr[-2000:]
