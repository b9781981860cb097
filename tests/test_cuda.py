"""The speed paths on a CUDA device: what a CPU cannot check of them (issue 16).

Skipped where there is no GPU, which includes CI; ``scripts/gpu_check.sh`` runs them on one.
On a GPU: channels_last gives NCHW's gradients, the fused Adam kernel skips a NaN update,
compiled networks compute the eager ones, a training step in the fast modes does not wait for the
device, and a short run in each mode trains and resumes.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from cyclestyle.config import TrainConfig
from cyclestyle.models import PatchDiscriminator, ResnetGenerator
from cyclestyle.training import loop, speed
from cyclestyle.training.loop import train

from .conftest import assert_compiled_matches_eager

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
FAST = ["train.mixed_precision=bf16", "train.channels_last=true"]


def test_channels_last_gives_the_nchw_gradients_on_this_gpu():
    assert speed.channels_last_is_exact(CUDA)


def test_auto_picks_bf16_on_a_gpu_that_computes_it():
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "no"
    assert speed.resolve_mixed_precision("auto", "cuda")[0] == expected


def test_the_fused_adam_kernel_skips_a_nan_update_on_the_gpu():
    from cyclestyle.training.update import FiniteGuard, adam

    guard = FiniteGuard(deferred=True)
    net = torch.nn.Linear(4, 2).to(CUDA)
    optimizer = adam(net.parameters(), TrainConfig(), CUDA, guard.deferred)
    assert optimizer.defaults["fused"]
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    net(torch.ones(1, 4, device=CUDA)).sum().backward()
    guard.update(optimizer, scaler)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.zero_grad()
    (net(torch.ones(1, 4, device=CUDA)).sum() * float("nan")).backward()
    guard.update(optimizer, scaler)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_networks_compute_the_eager_outputs_and_gradients_on_the_gpu(mode):
    torch.manual_seed(0)
    x = (torch.rand(1, 3, 64, 64, device=CUDA) * 2 - 1).contiguous(memory_format=torch.channels_last)
    for eager in (ResnetGenerator(ngf=8, n_blocks=2), PatchDiscriminator(ndf=8, n_layers=2)):
        eager = eager.to(CUDA, memory_format=torch.channels_last)
        compiled = speed.speed_up(copy.deepcopy(eager), TrainConfig(compile=mode, channels_last=True), CUDA)
        assert_compiled_matches_eager(eager, compiled, x, output_tolerance=1e-3, gradient_tolerance=1e-3)


def test_a_step_in_the_fast_modes_does_not_wait_for_the_device(tiny_config, monkeypatch):
    """After the first step (which compiles and allocates), a step queues its work and returns:
    torch raises on any synchronising call (``.item()``, a host copy, ``nonzero``) inside it."""
    real = loop._take_step

    def strict(run, batch):
        if run.progress.step == 0:
            return real(run, batch)
        torch.cuda.set_sync_debug_mode("error")
        try:
            return real(run, batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(loop, "_take_step", strict)
    train(tiny_config(*FAST, "train.finite_check=auto", "train.max_steps=6", "train.log_every=3"))


@pytest.mark.parametrize("extra", [[], ["train.compile=default"], ["train.compile=reduce-overhead"]])
def test_a_run_in_each_fast_mode_trains_and_resumes_on_the_gpu(tiny_config, tmp_path, extra):
    out = tmp_path / "run"
    cfg = tiny_config(*FAST, *extra, f"output_dir={out}", "train.max_steps=8", "train.log_every=4",
                      "train.checkpoint_every=4")
    train(cfg)
    train(tiny_config(*FAST, *extra, f"output_dir={out}", "train.max_steps=12", "train.log_every=4",
                      "train.checkpoint_every=4"), resume="latest")
    records = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "it_per_s" in r] == [4, 8, 12]
    assert all(torch.isfinite(torch.tensor(v)) for r in records for k, v in r.items() if k.startswith("cycle"))
