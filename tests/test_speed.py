"""The speed paths (``training/speed.py``): what a CPU can check of them.

mixed_precision auto follows the hardware, channels_last stays off on a CPU (its gradients are
wrong there, and the guard sees it), compiled networks compute what eager ones do, and the
switches are validated.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from cyclestyle.config import ConfigError, TrainConfig
from cyclestyle.models import PatchDiscriminator, ResnetGenerator
from cyclestyle.training import checkpoint as ckpt
from cyclestyle.training import speed
from cyclestyle.training.loop import stop_agreement_due, train
from cyclestyle.training.schedule import scaled_lr
from cyclestyle.training.update import NonFiniteLoss

from .conftest import assert_compiled_matches_eager, poison_cycle_loss_from_step

pytestmark = pytest.mark.slow  # trainings in each precision, compiled networks: not in `test.sh --quick`


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "no")])
def test_auto_mixed_precision_follows_the_cpu(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: has_bf16)
    resolved, reason = speed.resolve_mixed_precision("auto", "cpu")
    assert resolved == expected
    assert ("bf16" if has_bf16 else "fp32") in reason and "auto" in reason
    for explicit in ("no", "bf16", "fp16"):  # a setting that is not auto is kept as it is
        assert speed.resolve_mixed_precision(explicit, "cpu")[0] == explicit


def test_cpu_bf16_is_read_from_the_cpu_flags():
    flags = open("/proc/cpuinfo").read()
    assert speed.cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_a_run_says_which_precision_auto_chose_and_trains_in_it(tiny_config, tmp_path, monkeypatch, capsys):
    """With bf16 hardware, auto trains under bf16 autocast and says so; the next run in the same
    process, in fp32, is not refused by accelerate's process-wide state."""
    from cyclestyle.training.methods import cyclegan

    seen = []
    real = cyclegan.cycle_losses

    def spy(*args):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real(*args)

    monkeypatch.setattr(cyclegan, "cycle_losses", spy)
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: True)
    train(tiny_config(f"output_dir={tmp_path / 'auto'}", "train.max_steps=2", "train.mixed_precision=auto"))
    out = capsys.readouterr()
    assert "note: train.mixed_precision=auto: bf16" in out.out + out.err
    assert seen and all(s == (True, torch.bfloat16) for s in seen)

    seen.clear()
    train(tiny_config(f"output_dir={tmp_path / 'fp32'}", "train.max_steps=2", "train.mixed_precision=no"))
    assert seen and not any(enabled for enabled, _ in seen)


def test_channels_last_is_refused_on_a_cpu_before_anything_is_written(tiny_config, tmp_path):
    cfg = tiny_config(f"output_dir={tmp_path / 'nhwc'}", "train.channels_last=true")
    with pytest.raises(ConfigError) as e:
        train(cfg)
    assert "train.channels_last" in str(e.value) and "CUDA only" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "nhwc" / "checkpoints").exists()


def test_the_channels_last_guard_sees_the_cpu_instance_norm_bug():
    """The check that guards channels_last on a GPU catches the known wrong gradients of instance
    norm's backward on a CPU (``shared/facts/instance_norm_channels_last_cpu.py``): the guard is
    able to fail."""
    assert not speed.channels_last_is_exact(torch.device("cpu"))


def test_compiled_networks_compute_the_eager_outputs_and_gradients():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for eager in (ResnetGenerator(ngf=8, n_blocks=1), PatchDiscriminator(ndf=8, n_layers=2)):
        compiled = speed.speed_up(copy.deepcopy(eager), TrainConfig(compile="default"), torch.device("cpu"))
        assert_compiled_matches_eager(eager, compiled, x, output_tolerance=1e-5, gradient_tolerance=1e-4)


@pytest.mark.parametrize("override, named", [("train.compile=fast", "train.compile"),
                                             ("train.mixed_precision=fp8", "train.mixed_precision"),
                                             ("train.channels_last=maybe", "train.channels_last"),
                                             ("train.lr_scaling=cube", "train.lr_scaling")])
def test_speed_switches_are_validated_in_one_line(tiny_config, override, named):
    with pytest.raises(ConfigError) as e:
        tiny_config(override)
    assert named in str(e.value) and "\n" not in str(e.value)


def test_a_deferred_finite_check_skips_a_nan_update_on_the_device():
    """The fused Adam kernel leaves weights, moments and step count alone when a gradient is NaN;
    the count is read later, and then training stops in one line."""
    from accelerate import Accelerator

    from cyclestyle.training.update import FiniteGuard, adam

    guard = FiniteGuard(deferred=True)
    net = torch.nn.Linear(4, 2)
    optimizer = adam(net.parameters(), TrainConfig(), torch.device("cpu"), guard.deferred)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    net(torch.ones(1, 4)).sum().backward()
    guard.update(optimizer, scaler)  # a finite step
    before = {k: v.clone() for k, v in net.state_dict().items()}
    moments = {k: v.clone() for k, v in optimizer.state[net.weight].items()}
    net.zero_grad()
    (net(torch.ones(1, 4)).sum() * float("nan")).backward()
    guard.update(optimizer, scaler)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(moments[k], v) for k, v in optimizer.state[net.weight].items())
    with pytest.raises(NonFiniteLoss, match=r"not finite in steps 1-2 \(1 updates skipped"):
        guard.raise_if_skipped(Accelerator(cpu=True), 2)


def test_a_deferred_run_stops_at_the_next_read_with_no_nan_in_its_checkpoints(tiny_config, monkeypatch):
    from cyclestyle.training.checkpoint import read_checkpoint

    poison_cycle_loss_from_step(monkeypatch, 7)
    cfg = tiny_config("train.finite_check=deferred")
    with pytest.raises(NonFiniteLoss, match=r"not finite in steps 7-8.*step-4"):  # read at the log of step 8
        train(cfg)
    networks, state, _ = read_checkpoint(Path(cfg.output_dir) / "checkpoints" / "step-4")
    assert all(torch.isfinite(t).all() for net in networks.values() for t in net.values())
    assert not (Path(cfg.output_dir) / "checkpoints" / "step-8").exists()


def test_lr_scaling_scales_the_rate_by_the_images_per_step(tiny_config, tmp_path, capsys):
    assert scaled_lr(2e-4, "none", 16) == 2e-4
    assert scaled_lr(2e-4, "sqrt", 16) == pytest.approx(8e-4)
    assert scaled_lr(2e-4, "linear", 16) == pytest.approx(3.2e-3)
    assert scaled_lr(2e-4, "sqrt", 1) == 2e-4  # the paper's batch 1 is the reference

    cfg = tiny_config(f"output_dir={tmp_path / 'run'}", "train.batch_size=4", "train.lr=0.001",
                      "train.lr_scaling=sqrt", "train.max_steps=4", "train.decay_steps=2")
    run = train(cfg)
    assert "train.lr 0.001 becomes 0.002 for 4 images per step" in capsys.readouterr().out
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # steps 1-2 at the scaled rate, then the linear decay of the last 2 steps (factor 1/2 at step 4)
    assert [r["lr"] for r in records] == pytest.approx([0.002, 0.001])


def test_a_checkpoint_records_its_precision_and_a_resume_in_another_says_so(tiny_config, tmp_path, capsys):
    """config.yaml may say auto, which another machine resolves otherwise: the checkpoint keeps
    what the run trained in, and a resume that continues in something else says so."""
    out = tmp_path / "run"
    train(tiny_config(f"output_dir={out}", "train.max_steps=4", "train.mixed_precision=no"))
    assert ckpt.load_state(out / "checkpoints" / "step-4" / "training_state.pt")["mixed_precision"] == "no"
    capsys.readouterr()
    train(tiny_config(f"output_dir={out}", "train.max_steps=6", "train.mixed_precision=bf16"), resume="latest")
    assert "the checkpoint was trained with mixed_precision no" in capsys.readouterr().out
    assert ckpt.load_state(out / "checkpoints" / "step-6" / "training_state.pt")["mixed_precision"] == "bf16"


def test_processes_on_gpus_agree_on_stopping_only_where_they_wait_anyway():
    assert stop_agreement_due(1, "cuda", at_record=False)  # alone: stops at the next step
    assert stop_agreement_due(2, "cpu", at_record=False)  # CPUs: after every step
    assert not stop_agreement_due(2, "cuda", at_record=False)  # GPUs: no wait for the device per step
    assert stop_agreement_due(2, "cuda", at_record=True)
