"""What makes CUT and FastCUT train as their reference does (issue 22): the references'
initialisation, anti-aliased sampling, the decay-epoch data rule, the method's defaults for the
keys a config leaves to it (and what a resumed or older run keeps), fp32 PatchNCE logits, and
``cut.lambda_nce: 0``."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from cyclestyle.config import DataConfig, ConfigError, dump_config, unset_keys
from cyclestyle.data import FolderSource, UnalignedDataset, preprocess
from cyclestyle.models import PatchDiscriminator, ResnetGenerator
from cyclestyle.models.antialias import Downsample, Upsample
from cyclestyle.models.init import init_weights, xavier_std
from cyclestyle.training.batches import CurrentEpoch
from cyclestyle.training.configure import load_config
from cyclestyle.training.losses import patch_nce_loss
from cyclestyle.training.methods import METHODS
from cyclestyle.training.sampling import epoch_order

from .conftest import REPO, TINY_CUT

FIXTURES = REPO / "tests" / "fixtures"


# --------------------------------------------------------------------------------------------
# Initialisation (models/init.py)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 128, 3)
        self.up = nn.ConvTranspose2d(128, 64, 3)
        self.linear = nn.Linear(256, 512)
        self.bn = nn.BatchNorm2d(128)
        self.inorm = nn.InstanceNorm2d(128, affine=True)


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_weights_draws_conv_and_linear_weights_zeroes_biases_and_draws_batch_norm_scales(init_type):
    torch.manual_seed(0)
    net = init_weights(Mixed(), init_type, 0.05)
    for layer in (net.conv, net.up, net.linear):
        assert torch.count_nonzero(layer.bias) == 0
        w = layer.weight.flatten(1)
        if init_type == "normal":
            assert abs(w.std().item() - 0.05) < 0.002
        elif init_type == "xavier":
            assert abs(w.std().item() - xavier_std(tuple(layer.weight.shape), 0.05)) < 0.05 * xavier_std(
                tuple(layer.weight.shape), 0.05)
        elif init_type == "kaiming":  # gain √2 over fan_in, whatever init_gain says
            fan_in = layer.weight.shape[1] * math.prod(layer.weight.shape[2:])
            assert abs(w.std().item() - math.sqrt(2 / fan_in)) < 0.05 * math.sqrt(2 / fan_in)
        else:  # orthogonal rows (or columns), scaled by the gain
            small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            assert torch.allclose(small, 0.05**2 * torch.eye(small.shape[0]), atol=1e-5)
    assert abs(net.bn.weight.mean().item() - 1.0) < 0.02 and 0.03 < net.bn.weight.std().item() < 0.07
    assert torch.count_nonzero(net.bn.bias) == 0
    assert torch.equal(net.inorm.weight, torch.ones(128))  # not a layer the references initialise


def test_init_weights_refuses_an_unknown_type_and_runs_on_a_shape_only_build():
    with pytest.raises(ValueError, match="unknown init_type 'uniform'"):
        init_weights(nn.Linear(2, 2), "uniform")
    with torch.device("meta"):
        assert ResnetGenerator(ngf=4, n_blocks=1, init_type="orthogonal").stem[1].weight.is_meta


def test_xavier_02_starts_cut_near_a_flat_grey_and_normal_02_does_not():
    """The issue's numbers: the reference generator's first output is nearly flat (pre-tanh std
    about 0.02); CycleGAN's N(0, 0.02) gives noise."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stds = {}
    for init_type in ("xavier", "normal"):
        torch.manual_seed(0)
        g = ResnetGenerator(ngf=64, n_blocks=9, init_type=init_type, no_antialias=False, no_antialias_up=False).eval()
        with torch.no_grad():
            stds[init_type] = torch.atanh(g(x).clamp(-0.999999, 0.999999)).std().item()
    assert stds["xavier"] < 0.05 and stds["normal"] > 10 * stds["xavier"]


# --------------------------------------------------------------------------------------------
# Anti-aliased sampling (models/antialias.py) and the architectures' options


def test_blur_down_and_up_sampling_keep_a_flat_image_flat_and_halve_or_double_it():
    flat = torch.full((1, 5, 12, 16), 0.3)
    assert torch.allclose(Downsample(5)(flat), torch.full((1, 5, 6, 8), 0.3))
    assert torch.allclose(Upsample(5)(flat), torch.full((1, 5, 24, 32), 0.3))
    assert torch.allclose(Downsample(1).filt[0, 0], torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    row = torch.tensor([1., 3, 3, 1])
    assert torch.allclose(Upsample(1).filt[0, 0], row[:, None] * row[None] / 16)
    # a bright pixel inside the image spreads to a 4×4 binomial patch holding 4 times its value
    # (one input pixel per 2×2 output pixels), the same along both axes
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[0, 0, 4, 4] = 1
    up = Upsample(1)(impulse)[0, 0]
    assert torch.isclose(up.sum(), torch.tensor(4.0)) and torch.allclose(up, up.T)
    assert torch.count_nonzero(up) == 16


def test_the_anti_aliased_networks_have_the_references_parameters_and_buffers():
    g = ResnetGenerator(ngf=8, n_blocks=6, no_antialias=False, no_antialias_up=False)
    assert sum(p.numel() for p in g.parameters()) == 124_931  # tests/fixtures/reference-cut/README.md
    assert sorted(k for k in g.state_dict() if k.endswith("filt")) == ["down.3.filt", "down.7.filt", "up.0.filt",
                                                                       "up.4.filt"]
    d = PatchDiscriminator(3, ndf=8, n_layers=3, no_antialias=False)
    assert sum(p.numel() for p in d.parameters()) == 44_537
    assert d(torch.randn(1, 3, 64, 64)).shape == (1, 1, 6, 6)  # as the reference's, tests/test_cut_reference.py
    plain = ResnetGenerator(ngf=8, n_blocks=6)  # the defaults: CycleGAN's, as every earlier file
    assert not any(k.endswith("filt") for k in plain.state_dict())
    for down, up in ((False, False), (False, True), (True, False)):
        net = ResnetGenerator(ngf=8, n_blocks=2, no_antialias=down, no_antialias_up=up)
        x = torch.randn(2, 3, 36, 52)
        assert net(x).shape == x.shape


def test_cut_s_blur_up_sampling_and_resize_conv_are_one_choice():
    with pytest.raises(ConfigError, match="model.upsample resize_conv .* model.no_antialias_up false"):
        load_config(None, ["method=cut", "model.upsample=resize_conv", "model.no_antialias_up=false"],
                    check_paths=False)
    # a config that chose resize_conv keeps it under CUT, whose blur up-sampling would replace it
    cfg = load_config(None, ["method=cut", "model.upsample=resize_conv"], check_paths=False)
    filled = METHODS.get("cut").with_defaults(cfg)
    assert (filled.model.no_antialias_up, filled.model.no_antialias) == (True, False)


# --------------------------------------------------------------------------------------------
# The method's defaults, and what a resumed or an older run keeps


@pytest.mark.parametrize("method, epochs", [("cyclegan", (100, 100)), ("cut", (200, 200)), ("fastcut", (150, 50))])
def test_a_new_run_gets_its_methods_reference_defaults(method, epochs):
    cfg = load_config(None, [f"method={method}"], check_paths=False)
    assert set(unset_keys(cfg)) == {"model.init_type", "model.no_antialias", "model.no_antialias_up",
                                    "data.decay_no_crop", "train.n_epochs", "train.n_epochs_decay"}
    filled = METHODS.get(method).with_defaults(cfg)
    cut = method != "cyclegan"
    assert filled.model.init_type == ("xavier" if cut else "normal") and filled.model.init_gain == 0.02
    assert (filled.model.no_antialias, filled.model.no_antialias_up, filled.data.decay_no_crop) == (not cut,) * 2 + (cut,)
    assert (filled.train.n_epochs, filled.train.n_epochs_decay) == epochs
    assert unset_keys(filled) == []
    # a key the config sets is kept
    chosen = load_config(None, [f"method={method}", "model.init_type=kaiming", "train.n_epochs=3"], check_paths=False)
    assert METHODS.get(method).with_defaults(chosen).model.init_type == "kaiming"
    assert METHODS.get(method).with_defaults(chosen).train.n_epochs == 3


def test_keys_left_to_the_method_are_written_once_filled_and_read_back_alike(tmp_path):
    cfg = load_config(None, ["method=cut"], check_paths=False)
    text = dump_config(cfg)
    assert "init_type" not in text and "n_epochs:" not in text and "decay_no_crop" not in text
    (tmp_path / "a.yaml").write_text(text)
    assert load_config(tmp_path / "a.yaml", check_paths=False) == cfg
    filled = METHODS.get("cut").with_defaults(cfg)
    written = yaml.safe_load(dump_config(filled))
    assert written["model"]["init_type"] == "xavier" and written["train"]["n_epochs"] == 200
    (tmp_path / "b.yaml").write_text(dump_config(filled))
    assert load_config(tmp_path / "b.yaml", check_paths=False) == filled


def test_a_resumed_run_keeps_what_its_recorded_config_says_and_an_older_run_what_it_had():
    fresh = load_config(None, ["method=cut"], check_paths=False)
    cut = METHODS.get("cut")
    # a run recorded before these keys existed (tests/fixtures/v0.2-cut-run): the behaviour of that time
    old = yaml.safe_load((FIXTURES / "v0.2-cut-run" / "config.yaml").read_text())
    resumed = cut.with_defaults(fresh, recorded=old)
    assert (resumed.model.init_type, resumed.model.no_antialias, resumed.model.no_antialias_up) == ("normal", True, True)
    assert resumed.data.decay_no_crop is False and (resumed.train.n_epochs, resumed.train.n_epochs_decay) == (100, 100)
    # a run recorded now: its own values, even where the method's defaults would differ
    recorded = yaml.safe_load(dump_config(cut.with_defaults(load_config(None, ["method=cut", "model.init_type=orthogonal",
                                                                                "data.decay_no_crop=false"],
                                                                        check_paths=False))))
    again = cut.with_defaults(fresh, recorded=recorded)
    assert (again.model.init_type, again.data.decay_no_crop, again.model.no_antialias) == ("orthogonal", False, False)
    # what the config sets wins over the recorded value
    explicit = load_config(None, ["method=cut", "model.init_type=xavier"], check_paths=False)
    assert cut.with_defaults(explicit, recorded=old).model.init_type == "xavier"


def test_cut_lambda_nce_zero_is_allowed_and_builds_no_heads():
    cfg = load_config(None, ["method=cut", "cut.lambda_nce=0", "model.ngf=4", "model.ndf=4", *TINY_CUT],
                      check_paths=False)
    networks = METHODS.get("cut").build_networks(METHODS.get("cut").with_defaults(cfg))
    assert list(networks) == ["G_A", "D_A"]
    with pytest.raises(ConfigError, match="cut.lambda_nce must not be negative"):
        load_config(None, ["method=cut", "cut.lambda_nce=-1"], check_paths=False)


def test_the_heads_are_initialised_as_the_method_says():
    cfg = load_config(None, ["method=cut", "model.ngf=4", "model.ndf=4", *TINY_CUT], check_paths=False)
    filled = METHODS.get("cut").with_defaults(cfg)
    torch.manual_seed(0)
    heads = METHODS.get("cut").build_networks(filled)["F"]
    first = heads.heads[1][0].weight  # Linear(8, 32)
    assert abs(first.std().item() - xavier_std(tuple(first.shape), 0.02)) < 0.25 * xavier_std(tuple(first.shape), 0.02)
    assert torch.count_nonzero(heads.heads[1][0].bias) == 0


# --------------------------------------------------------------------------------------------
# PatchNCE in fp32 under autocast


def test_patch_nce_logits_are_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    q, k = (nn.functional.normalize(torch.randn(2, 64, 32, generator=g), dim=-1) for _ in range(2))
    exact = patch_nce_loss(q, k, 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = patch_nce_loss(q, k, 0.07)
        mixed = patch_nce_loss(q.bfloat16(), k.bfloat16(), 0.07)
    assert under.dtype == torch.float32 and torch.allclose(under, exact, rtol=1e-6, atol=1e-6)
    # bf16 inputs: computed from their fp32 values, not in bf16
    assert torch.allclose(mixed, patch_nce_loss(q.bfloat16().float(), k.bfloat16().float(), 0.07), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# The decay-epoch data rule (data.decay_no_crop)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    g = torch.Generator().manual_seed(0)
    for domain in "AB":
        (root / domain).mkdir()
        for i in range(4):
            pixels = (torch.rand(40, 48, 3, generator=g) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(root / domain / f"{i}.png")
    return root


def test_an_item_of_the_decay_steps_is_resized_to_the_crop_and_not_cropped(photos):
    cfg = DataConfig(load_size=36, crop_size=32, flip=True)
    dataset = UnalignedDataset(FolderSource(photos / "A"), FolderSource(photos / "B"), cfg)
    normal, decaying = dataset[(1, 2, 7)], dataset[(1, 2, 7, 1)]
    assert normal["A"].shape == decaying["A"].shape == (3, 32, 32)
    whole = preprocess(Image.open(photos / "A" / "1.png").convert("RGB"), DataConfig(load_size=32, crop_size=32),
                       random.Random(7))
    assert torch.equal(decaying["A"], whole)  # resized straight to 32, the same flip draw
    assert torch.equal(dataset[(1, 2, 7, 0)]["A"], normal["A"]) and not torch.equal(normal["A"], decaying["A"])


@pytest.mark.parametrize("rule, steps, expected", [
    (True, dict(n_epochs=2, n_epochs_decay=1, max_steps=None, decay_steps=None), [0, 0, 0, 0, 1, 1]),
    (True, dict(n_epochs=None, n_epochs_decay=None, max_steps=10, decay_steps=3), [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]),
    (False, dict(n_epochs=2, n_epochs_decay=1, max_steps=None, decay_steps=None), [None] * 6),
])
def test_the_batches_say_which_steps_decay(rule, steps, expected):
    """Epoch e (0-based) decays from e = n_epochs on (the reference's epoch > n_epochs, from 1);
    the step form from max_steps − decay_steps on; off: keys as before (three elements)."""
    n = 2 if steps["max_steps"] is None else 10  # steps per epoch
    cfg = SimpleNamespace(seed=0, data=SimpleNamespace(decay_no_crop=rule),
                          train=SimpleNamespace(batch_size=1, **steps))
    run = SimpleNamespace(cfg=cfg, dataset=_Sized(n), global_batch=1, resumed_order=None,
                          accelerator=SimpleNamespace(process_index=0, num_processes=1),
                          progress=SimpleNamespace(step=0, epoch=0, position=0))
    flags = []
    for epoch in range(len(expected) // n):
        run.progress.epoch, run.progress.step = epoch, epoch * n
        for batch in CurrentEpoch(run):
            (item,) = batch
            flags.append(item[3] if len(item) == 4 else None)
            assert tuple(item[:3]) in {tuple(r) for r in epoch_order(n, n, 0, epoch).tolist()}
    assert flags == expected


class _Sized(SimpleNamespace):
    """A dataset's sizes: n A and n B images, n items an epoch."""

    def __init__(self, n: int):
        super().__init__(n_a=n, n_b=n)

    def __len__(self) -> int:
        return self.n_a
