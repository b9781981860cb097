"""The official code's options that cyclestyle had lacked (issue 23, item 5): ``loss.gan_mode
wgangp`` and its gradient penalty, the learning-rate policies, the preprocessing modes and
``data.max_dataset_size``; each against a hand computation, and each bad value in one line."""

from __future__ import annotations

import functools
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cyclestyle.config import ConfigError, read_config
from cyclestyle.data import open_domains
from cyclestyle.training import losses
from cyclestyle.training.checkpoint import TrainingState, read_checkpoint
from cyclestyle.training.configure import load_config
from cyclestyle.training.draws import mixing_weights
from cyclestyle.training.methods.cyclegan import discriminator_losses
from cyclestyle.training.schedule import Plateau, cosine_factor, step_decay_factor
from cyclestyle.training.start import _schedule

from .conftest import REPO, TINY_CUT

# --------------------------------------------------------------------------------------------
# wgangp


class Quadratic(nn.Module):
    """D(x) = a/2 · Σ x²: its gradient at x is a·x, so the penalty has a closed form."""

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.a * (x ** 2).flatten(1).sum(1)


def test_gradient_penalty_value_and_gradient_match_a_hand_computation():
    torch.manual_seed(0)
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    alpha = torch.tensor([0.25, 0.8])
    critic = Quadratic(0.3)
    penalty = losses.gradient_penalty(critic, real, fake, alpha, weight=10.0)
    # By hand: x̂_i = α_i real_i + (1 − α_i) fake_i; ‖∇D(x̂_i)‖ = a‖x̂_i‖;
    # P = λ/B Σ (a‖x̂_i‖ − 1)², dP/da = λ/B Σ 2 (a‖x̂_i‖ − 1) ‖x̂_i‖.
    mixed = [alpha[i] * real[i] + (1 - alpha[i]) * fake[i] for i in range(2)]
    norms = [float(m.norm()) for m in mixed]
    expected = 10.0 / 2 * sum((0.3 * n - 1) ** 2 for n in norms)
    expected_grad = 10.0 / 2 * sum(2 * (0.3 * n - 1) * n for n in norms)
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    assert critic.a.grad.item() == pytest.approx(expected_grad, rel=1e-5)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_keeps_inputs_out_of_the_graph():
    w = torch.randn(1, 3, 4, 4)
    w = w / w.norm()  # D(x) = w·x: ‖∇D‖ = 1 everywhere

    class Linear(nn.Module):
        def forward(self, x):
            return (x * w).flatten(1).sum(1)

    real = torch.randn(3, 3, 4, 4, requires_grad=True)
    fake = torch.randn(3, 3, 4, 4, requires_grad=True)
    penalty = losses.gradient_penalty(Linear(), real, fake, torch.rand(3))
    assert penalty.item() == pytest.approx(0.0, abs=1e-9)
    assert real.grad is None and fake.grad is None  # the penalty trains D alone


def test_wgangp_adversarial_terms_are_the_reference_critic():
    real, fake = torch.tensor([[1.0, 3.0]]), torch.tensor([[-2.0, 0.0]])
    assert losses.generator_adversarial_loss(fake, "wgangp").item() == pytest.approx(1.0)  # −mean D(G(z))
    # halved, as every D loss: ½ (−mean D(x) + mean D(G(z))) = ½ (−2 − 1)
    assert losses.discriminator_loss(real, fake, "wgangp").item() == pytest.approx(-1.5)


def test_cyclegan_critics_get_half_their_penalty_under_wgangp_only():
    torch.manual_seed(1)
    d_a, d_b = Quadratic(0.5), Quadratic(2.0)
    images = [torch.randn(1, 3, 4, 4) for _ in range(4)]
    alphas = (torch.tensor([0.4]), torch.tensor([0.9]))
    terms = discriminator_losses(d_a, d_b, *images, "wgangp", alphas, 10.0)
    real_a, real_b, fake_a, fake_b = images
    assert terms["gp_A"].item() == pytest.approx(0.5 * losses.gradient_penalty(d_a, real_b, fake_b, alphas[0]).item())
    assert terms["gp_B"].item() == pytest.approx(0.5 * losses.gradient_penalty(d_b, real_a, fake_a, alphas[1]).item())
    assert set(discriminator_losses(d_a, d_b, *images, "lsgan")) == {"D_A", "D_B"}


def test_mixing_weights_are_per_image_whatever_the_process_layout():
    whole = mixing_weights(0, 7, "gp/A", 0, 4)
    halves = torch.cat([mixing_weights(0, 7, "gp/A", 0, 2), mixing_weights(0, 7, "gp/A", 2, 2)])
    assert torch.equal(whole, halves) and ((whole >= 0) & (whole < 1)).all()
    assert not torch.equal(whole, mixing_weights(0, 8, "gp/A", 0, 4))  # another step, other draws
    assert not torch.equal(whole, mixing_weights(0, 7, "gp/B", 0, 4))


# --------------------------------------------------------------------------------------------
# Learning-rate policies


def test_step_policy_multiplies_by_a_tenth_every_lr_decay_iters_epochs():
    f = step_decay_factor(50, unit=10)  # 10 steps per epoch
    for step, expected in ((0, 1.0), (499, 1.0), (500, 0.1), (999, 0.1), (1000, 0.01), (1999, 0.001)):
        assert f(step) == pytest.approx(expected)


def test_cosine_policy_follows_half_a_cosine_over_n_epochs():
    f = cosine_factor(100, unit=10)
    assert f(0) == 1.0
    assert f(250) == pytest.approx((1 + math.cos(math.pi * 25 / 100)) / 2)  # epoch 25: 0.8536
    assert f(500) == pytest.approx(0.5)
    assert f(1000) == pytest.approx(0.0, abs=1e-12)
    assert f(1500) == pytest.approx(0.5)  # past T_max it rises again, as torch's (and the reference's)


def test_step_and_cosine_agree_with_torchs_schedulers_stepped_per_epoch():
    for make, ours in ((lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.1), step_decay_factor(3, 1)),
                       (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0), cosine_factor(7, 1))):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2e-4)
        scheduler = make(optimizer)
        for epoch in range(20):
            assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * ours(epoch), rel=1e-9, abs=1e-15)
            optimizer.step()
            scheduler.step()


def test_plateau_lowers_by_a_fifth_after_six_evaluations_without_a_one_percent_gain():
    p = Plateau("min", base_lr=2e-4)
    for value in (10.0, 9.95, 9.92, 9.91, 9.905, 9.9):  # none is 1 % below 10: five bad ones
        p.observe(value)
    assert p(123) == 1.0 and p.bad == 5 and p.best == 10.0
    p.observe(9.95)  # the sixth: the rate × 0.2, the count starts again
    assert p(0) == pytest.approx(0.2) and p.bad == 0
    p.observe(9.8)  # 2 % better: a new best
    assert p.best == 9.8 and p.bad == 0 and p(0) == pytest.approx(0.2)
    up = Plateau("max", base_lr=2e-4)  # PSNR: better higher
    for value in (20.0, *[20.1] * 6):
        up.observe(value)
    assert up(0) == pytest.approx(0.2)


def test_plateau_agrees_with_torchs_reduce_on_plateau_with_the_reference_settings():
    torch.manual_seed(0)
    values = (torch.rand(60) * 3 + torch.linspace(10, 1, 60)).tolist()
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2e-4)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    ours = Plateau("min", base_lr=2e-4)
    for value in values:
        reference.step(value)
        ours.observe(value)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * ours(0), rel=1e-12)
    assert ours(0) < 1.0  # the sequence did lower it


def test_plateau_state_round_trips_through_a_checkpoint_dict():
    p = Plateau("min", base_lr=2e-4)
    for value in (5.0, 5.0, 4.0, 4.5):
        p.observe(value)
    state = TrainingState.from_dict({**_state_dict(), "lr_state": p.state_dict()}).lr_state
    q = Plateau("min", base_lr=2e-4)
    q.load_state_dict(state)
    for value in (4.4,) * 7:
        p.observe(value)
        q.observe(value)
        assert (p(0), p.best, p.bad) == (q(0), q.best, q.bad)
    assert TrainingState.from_dict(_state_dict()).lr_state is None  # a checkpoint of an older version


def _state_dict() -> dict:
    return {"progress": {"step": 0, "epoch": 0, "position": 0}, "optimizers": {}, "scalers": {},
            "data": {"n_a": 1, "n_b": 1, "seed": 0, "order": torch.zeros(1)}, "lr_factor": 1.0,
            "num_processes": 1, "config_hash": "x", "reason": "periodic"}


@pytest.mark.parametrize("policy, epoch_factors", [
    ("linear", {0: 1.0, 2: 1.0, 3: 0.75, 5: 0.25}),  # 1 − max(0, e + 1 − 3) / (3 + 1)
    ("step", {0: 1.0, 1: 1.0, 2: 0.1, 4: 0.01, 5: 0.01}),  # lr_decay_iters 2
    ("cosine", {0: 1.0, 1: 0.75, 3: 0.0, 4: 0.25}),  # (1 + cos(π e / 3)) / 2
])
def test_the_run_schedule_follows_train_lr_policy_in_epochs(policy, epoch_factors):
    cfg = read_config(None, ["train.n_epochs=3", "train.n_epochs_decay=3", f"train.lr_policy={policy}",
                             "train.lr_decay_iters=2"])
    total, factor = _schedule(cfg, images=4, processes=1)  # 4 steps per epoch
    assert total == 24
    for epoch, expected in epoch_factors.items():
        assert factor(4 * epoch) == pytest.approx(expected, abs=1e-12)
        assert factor(4 * epoch + 3) == pytest.approx(expected, abs=1e-12)


def test_the_step_form_counts_the_policies_in_steps():
    cfg = read_config(None, ["train.max_steps=20", "train.decay_steps=10", "train.lr_policy=cosine"])
    _, factor = _schedule(cfg, images=4, processes=1)
    assert factor(5) == pytest.approx(0.5) and factor(10) == pytest.approx(0.0, abs=1e-12)  # T_max 20 − 10
    cfg = read_config(None, ["train.max_steps=20", "train.lr_policy=step", "train.lr_decay_iters=7"])
    _, factor = _schedule(cfg, images=4, processes=1)
    assert (factor(6), factor(7), factor(14)) == pytest.approx((1.0, 0.1, 0.01))
    cfg = read_config(None, ["train.max_steps=20", "train.lr_policy=plateau", "eval.every=5", "eval.metric=psnr"])
    _, factor = _schedule(cfg, images=4, processes=1)
    assert isinstance(factor, Plateau) and factor.mode == "max"


# --------------------------------------------------------------------------------------------
# Bad values: one line naming the key


@pytest.mark.parametrize("overrides, message", [
    (["loss.gan_mode=wgan"], "loss.gan_mode must be one of lsgan, vanilla, hinge, wgangp"),
    (["loss.lambda_gp=-1"], "loss.lambda_gp must not be negative"),
    (["train.lr_policy=lambda"], "train.lr_policy must be one of linear, step, plateau, cosine"),
    (["train.lr_decay_iters=0"], "train.lr_decay_iters must be positive"),
    (["train.lr_policy=plateau"], "train.lr_policy plateau .* needs eval.every > 0"),
    (["train.lr_policy=cosine", "train.n_epochs=0"], "train.lr_policy cosine anneals over train.n_epochs, which is 0"),
    (["train.lr_policy=cosine", "train.max_steps=10", "train.decay_steps=10"],
     "cosine anneals over train.max_steps - train.decay_steps, which is 0"),
    (["loss.gan_mode=wgangp", "train.compile=default"], "loss.gan_mode wgangp .* set train.compile none"),
    (["data.preprocess=scale_height"], "data.preprocess must be one of resize_and_crop, scale_width, "),
    (["data.max_dataset_size=0"], "data.max_dataset_size must be positive"),
    (["data.max_dataset_size=inf"], "data.max_dataset_size must be an integer"),
])
def test_bad_option_values_are_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        read_config(None, overrides)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# Data


def test_max_dataset_size_keeps_the_first_images_of_each_sorted_domain(toy_root):
    every = open_domains(read_config(None, [f"data.root={toy_root}"]).data, "train")
    first = open_domains(read_config(None, [f"data.root={toy_root}", "data.max_dataset_size=5"]).data, "train")
    for all_of, limited in zip(every, first):
        assert len(all_of) == 12 and len(limited) == 5
        assert [limited.describe(i) for i in range(5)] == [all_of.describe(i) for i in range(5)]
    larger = open_domains(read_config(None, [f"data.root={toy_root}", "data.max_dataset_size=100"]).data, "test")
    assert [len(s) for s in larger] == [4, 4]


# --------------------------------------------------------------------------------------------
# End to end: wgangp and a policy with state, killed and resumed


@pytest.mark.slow
def test_wgangp_with_the_plateau_policy_resumes_bitwise(tiny_overrides, tmp_path, monkeypatch):
    """A tiny CycleGAN with wgangp and ``plateau`` on the held-out cycle L1 (threshold and patience
    lowered so that the rate falls at every evaluation after the first: the state matters), resumed
    from its step-4 checkpoint: bitwise the same weights, schedule state and learning rates."""
    from cyclestyle.training.loop import train

    monkeypatch.setattr(Plateau, "__init__", functools.partialmethod(Plateau.__init__, threshold=1.0, patience=0))
    sets = [*tiny_overrides, "loss.gan_mode=wgangp", "train.lr_policy=plateau", "eval.every=2",
            "eval.metric=cycle_l1", "eval.num_images=2", "train.max_steps=8", "train.checkpoint_every=4"]
    straight = train(load_config(REPO / "configs" / "tiny.yaml", [*sets, f"output_dir={tmp_path / 'a'}"]))
    _, state, _ = read_checkpoint(straight / "checkpoints" / "step-8")
    assert state["lr_state"]["scale"] == pytest.approx(0.2 ** 3)  # evaluations at 2, 4, 6, 8
    lrs = [r["lr"] for r in map(json.loads, (straight / "log.jsonl").read_text().splitlines()) if "lr" in r]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(2e-4 * 0.2 ** 2)  # step 8 ran before its evaluation

    resumed_dir = tmp_path / "b"
    shutil.copytree(straight, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step-8")
    (resumed_dir / "checkpoints" / "latest").write_text("step-4\n")
    resumed = train(load_config(REPO / "configs" / "tiny.yaml", [*sets, f"output_dir={resumed_dir}"]), resume="latest")
    _, again, _ = read_checkpoint(resumed / "checkpoints" / "step-8")
    assert again["lr_state"] == state["lr_state"]
    for name in ("G_A", "G_B", "D_A", "D_B"):
        a = load_file(straight / "checkpoints" / "step-8" / f"{name}.safetensors")
        b = load_file(resumed / "checkpoints" / "step-8" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name
    log = [json.loads(line) for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["gp_A"]) and r["gp_A"] >= 0 for r in log if "gp_A" in r)


@pytest.mark.slow
def test_cut_trains_with_wgangp_and_logs_its_penalty(tiny_overrides, tmp_path):
    from cyclestyle.training.loop import train

    run = train(load_config(REPO / "configs" / "tiny.yaml", [
        *tiny_overrides, "method=cut", "loss.gan_mode=wgangp", *TINY_CUT,
        "train.max_steps=4", f"output_dir={tmp_path / 'cut'}"]))
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    penalties = [r["D_gp"] for r in records if "D_gp" in r]
    assert penalties and all(math.isfinite(v) and v >= 0 for v in penalties)
    assert Path(run / "G_A.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_wgangp_two_processes_of_batch_1_equal_one_process_of_batch_2(method, toy_root, tmp_path):
    """The penalty's second-order gradient goes through data parallelism (torchrun's gloo
    processes) and each image draws its own α wherever it is computed: the first step's averaged
    gradients of every network agree with one process of batch 2, to float noise (the bound of
    tests/test_distributed.py); one process of batch 1 does not."""
    from .multiprocess import (EXACT, assert_two_processes_average_like_one_batch, first_step_gradients, launch, run,
                               train_args)

    def gradients(name: str, processes: int, batch: int) -> dict[str, torch.Tensor]:
        sets = [*([] if method == "cyclegan" else [f"method={method}", *TINY_CUT]), "loss.gan_mode=wgangp",
                "train.max_steps=1", "train.checkpoint_every=1", f"train.batch_size={batch}", *EXACT]
        run(launch(processes) + train_args(toy_root, tmp_path / name, *sets))
        return first_step_gradients(tmp_path / name)

    assert_two_processes_average_like_one_batch(gradients)


def test_the_added_keys_are_written_to_config_yaml_only_off_their_default(tmp_path):
    """So that a run of an earlier version reads back to the same text (tests/test_compat.py), and a
    run that sets one says so."""
    from cyclestyle.config import config_to_dict, dump_config

    default = config_to_dict(read_config(None))
    assert "lr_policy" not in default["train"] and "max_dataset_size" not in default["data"]
    assert "lambda_gp" not in default["loss"] and "lr_decay_iters" not in default["train"]
    cfg = read_config(None, ["train.lr_policy=cosine", "loss.lambda_gp=5", "data.max_dataset_size=7"])
    written = config_to_dict(cfg)
    assert (written["train"]["lr_policy"], written["loss"]["lambda_gp"], written["data"]["max_dataset_size"]) == \
        ("cosine", 5.0, 7)
    (tmp_path / "config.yaml").write_text(dump_config(cfg))
    assert read_config(tmp_path / "config.yaml") == cfg
