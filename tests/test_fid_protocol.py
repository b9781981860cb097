"""FID and KID to a named standard: clean-fid's distances (and, below, its resize), checked
against clean-fid itself. No Inception weights are needed: features are random, and the
network, where one runs, has random weights."""

from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pytest
import torch
from cleanfid.fid import fid_from_feats, kernel_distance
from PIL import Image

from cyclestyle.cli import build_parser, main
from cyclestyle.config import ConfigError, EvalConfig
from cyclestyle.data import FolderSource
from cyclestyle.evaluation import metrics
from cyclestyle.evaluation.evaluate import HeldOutEvaluator, prepare, unit
from cyclestyle.evaluation.inception import inception_network, resize_for_inception
from cyclestyle.run_folder import read_best
from cyclestyle.training.loop import train

pytestmark = pytest.mark.slow  # trainings and the FID protocols on real feature networks: not in `test.sh --quick`


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * (1 + shift) + shift


@pytest.mark.parametrize("n_real, n_fake, d", [(50, 40, 16), (30, 30, 64), (12, 9, 128)])
def test_frechet_distance_is_clean_fids(n_real, n_fake, d):
    real, fake = features(n_real, d, seed=0), features(n_fake, d, seed=1, shift=0.3)
    expected = fid_from_feats(real.numpy(), fake.numpy())
    assert metrics.frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)
    assert metrics.frechet_distance(real.float(), fake.float()) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n, d", [(40, 16), (25, 2048)])
def test_kid_is_clean_fids(n, d):
    # With every image in each subset, clean-fid's random draw only reorders the sets: one value.
    real, fake = features(n, d, seed=2), features(n, d, seed=3, shift=0.2)
    expected = kernel_distance(real.numpy(), fake.numpy(), num_subsets=3, max_subset_size=1000)
    mean, std = metrics.kernel_inception_distance(real, fake, subsets=3)
    assert mean == pytest.approx(expected, rel=1e-6) and std == pytest.approx(0.0, abs=1e-9 * abs(expected))


def test_kid_subsets_are_seeded_and_leave_numpys_generator_alone():
    real, fake = features(60, 32, seed=4), features(50, 32, seed=5, shift=0.2)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    first = metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10)
    assert np.array_equal(np.random.get_state()[1], before)
    assert metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10) == first
    assert first != metrics.kernel_inception_distance(real, fake, subset_size=20, subsets=10, seed=1)
    assert first[1] > 0  # subsets of 20 out of 50-60 images differ


# --------------------------------------------------------------------------------------------
# The resize of each protocol


def make_images(folder):
    """PNGs of several kinds and sizes, up- and downscaled to 299: gradients, noise, both, gray."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    h, w = 256, 256
    ramp = np.broadcast_to(np.linspace(0, 255, w)[None, :, None], (h, w, 3))
    Image.fromarray(ramp.round().astype(np.uint8)).save(folder / "a-gradient-256.png")
    Image.fromarray(rng.integers(0, 256, (384, 512, 3), dtype=np.uint8)).save(folder / "b-noise-512x384.png")
    y, x = np.mgrid[0:37, 0:53]
    mixed = np.stack([x * 4.8, y * 6.9, (x + y) * 2.8], -1) + rng.normal(0, 12, (37, 53, 3))
    Image.fromarray(mixed.clip(0, 255).round().astype(np.uint8)).save(folder / "c-mixed-53x37.png")
    Image.fromarray(rng.integers(0, 256, (300, 301), dtype=np.uint8), mode="L").save(folder / "d-gray-301x300.png")
    return folder


def as_evaluation_reads(source, i):
    """A held-out image the way evaluate and compare feed it to the FID network: uint8 1×3×H×W."""
    return metrics.to_uint8(unit(prepare(source.load(i), None)))


def test_clean_resize_is_clean_fids_bit_for_bit(tmp_path):
    from cleanfid.utils import ResizeDataset

    source = FolderSource(make_images(tmp_path / "images"))
    reference = ResizeDataset([source.describe(i) for i in range(len(source))], mode="clean")
    for i in range(len(source)):
        ours = resize_for_inception(as_evaluation_reads(source, i), "clean")
        assert ours.dtype == torch.float32 and ours.shape == (1, 3, 299, 299)
        assert torch.equal(ours[0], reference[i]), source.describe(i)


def test_the_protocols_differ_where_resizing_matters(tmp_path):
    source = FolderSource(make_images(tmp_path / "images"))
    noise = as_evaluation_reads(source, 1)  # 512×384 noise: a downscale, which TF1 bilinear aliases
    assert (resize_for_inception(noise, "clean") - resize_for_inception(noise, "legacy")).abs().mean() > 10
    with pytest.raises(ValueError, match="one of clean, legacy"):
        resize_for_inception(noise, "tensorflow")


# --------------------------------------------------------------------------------------------
# The network: random weights, since no Inception weights may be needed


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    """A weights file for the FID InceptionV3 with random weights and batch-norm statistics of
    random images (so that features neither vanish nor explode), in torch-fidelity's layout."""
    torch.manual_seed(0)
    network = inception_network()
    for layer in network.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # the running statistics of one batch: that batch's
    with torch.no_grad():
        network.train()((torch.rand(4, 3, 299, 299) * 255 - 128) / 128)
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save({**network.state_dict(), "fc.weight": torch.randn(1008, 2048) / 45, "fc.bias": torch.zeros(1008)},
               path)
    return path


def test_legacy_features_are_torch_fidelitys_bit_for_bit(random_inception, tmp_path):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity unpickles the file (weights_only=False): here it is this test's own.
    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=str(random_inception))
    source = FolderSource(make_images(tmp_path / "images"))
    net = metrics.load_inception(random_inception, "legacy")
    with torch.inference_mode():
        for i in (0, 2):
            images = as_evaluation_reads(source, i)
            (expected,) = reference(images)
            assert torch.equal(net(images), expected), source.describe(i)
        gray = as_evaluation_reads(source, 3)[:, :1]
        assert torch.equal(net(gray), net(gray.expand(-1, 3, -1, -1)))


def test_clean_features_are_the_network_on_clean_fids_resize(random_inception, tmp_path):
    source = FolderSource(make_images(tmp_path / "images"))
    net = metrics.load_inception(random_inception, "clean")
    images = as_evaluation_reads(source, 2)
    with torch.inference_mode():
        # clean-fid's InceptionV3W: (x − 128) / 128, then the network, on its 299×299 resize.
        expected = net.network((resize_for_inception(images, "clean") - 128) / 128)
        assert torch.equal(net(images), expected)
        assert not torch.equal(net(images), metrics.load_inception(random_inception, "legacy")(images))


# --------------------------------------------------------------------------------------------
# Named wherever the numbers are: metrics.json, comparison.json, reports, config and command line


@pytest.fixture
def tiny_run(tiny_config):
    return train(tiny_config("train.max_steps=2"))


class FirstFeatures(torch.nn.Module):
    """The first 32 of a network's features: FID on 2048-d features costs a minute of scipy's
    sqrtm on a 2-core machine, and the protocol is in the network's input, not its width."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net(images)[:, :32]


def test_evaluate_and_compare_name_the_protocol(tiny_run, toy_root, random_inception, tmp_path, monkeypatch):
    asked = []
    load_inception = metrics.load_inception

    def narrow(weights, protocol=metrics.DEFAULT_FID_PROTOCOL):
        asked.append(protocol)
        return FirstFeatures(load_inception(weights, protocol))

    monkeypatch.setattr(metrics, "load_inception", narrow)
    out = tmp_path / "eval"
    assert main(["evaluate", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out),
                 "--inception-weights", str(random_inception), "--fid-protocol", "legacy", "--limit", "2",
                 "--device", "cpu"]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert asked == ["legacy"] and data["fid_protocol"] == "legacy"
    assert data["AtoB"]["fid"] > 0 and data["BtoA"]["kid"] is not None
    assert "FID/KID protocol legacy: torch-fidelity" in (out / "index.html").read_text()

    out = tmp_path / "compare"
    assert main(["compare", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out),
                 "--collection", "1", "--limit", "2", "--vgg-weights", "random", "--gatys-steps", "2",
                 "--inception-weights", str(random_inception), "--device", "cpu"]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert asked == ["legacy", "clean"] and data["fid_protocol"] == "clean"
    assert data["methods"]["cyclegan"]["fid"] > 0
    assert "FID/KID protocol clean: clean-fid" in (out / "index.html").read_text()


def test_evaluation_during_training_follows_eval_fid_protocol(tiny_config, random_inception):
    cfg = tiny_config("eval.every=2", "eval.num_images=2", f"eval.inception_weights={random_inception}",
                      "eval.fid_protocol=legacy")
    evaluator = HeldOutEvaluator(cfg, torch.device("cpu"))
    assert evaluator.extractor.protocol == "legacy"
    run = train(tiny_config("train.max_steps=2", "eval.every=2", "eval.num_images=2", "eval.metric=cycle_l1",
                            "eval.fid_protocol=legacy"))
    best = json.loads((run / "checkpoints" / "best" / "metrics.json").read_text())
    assert best["evaluation"]["fid_protocol"] == "legacy"


def unbeatable_best(run) -> dict:
    """Make the best that ``run`` holds an FID of 0, which no later evaluation can beat: a best
    that is kept shows in its step and value staying."""
    path = run / "checkpoints" / "best" / "metrics.json"
    best = json.loads(path.read_text())
    path.write_text(json.dumps({**best, "value": 0.0}))
    return {**best, "value": 0.0}


def test_a_resumed_run_keeps_a_best_of_another_fid_protocol_no_longer(tiny_config, random_inception, monkeypatch,
                                                                       capsys):
    """A legacy FID is not a clean one: a best measured the other way cannot stand against this
    run's evaluations, however good its number (and is kept when only the length of the run changes)."""
    load_inception = metrics.load_inception
    monkeypatch.setattr(metrics, "load_inception", lambda weights, protocol: FirstFeatures(
        load_inception(weights, protocol)))
    evaluated = ("eval.every=2", "eval.num_images=2", "eval.metric=fid", f"eval.inception_weights={random_inception}")
    run = train(tiny_config("train.max_steps=2", *evaluated, "eval.fid_protocol=legacy"))
    first = unbeatable_best(run)
    train(tiny_config("train.max_steps=4", *evaluated, "eval.fid_protocol=legacy"), resume="latest")
    assert read_best(run / "checkpoints") == first  # the same setting: the old best stands
    capsys.readouterr()

    train(tiny_config("train.max_steps=6", *evaluated, "eval.fid_protocol=clean"), resume="latest")
    best = read_best(run / "checkpoints")
    assert best["step"] == 6 and best["value"] > 0
    assert best["setting"]["eval.fid_protocol"] == best["evaluation"]["fid_protocol"] == "clean"
    out = capsys.readouterr().out
    assert f"{run / 'checkpoints' / 'best' / 'metrics.json'} is not comparable" in out
    assert "eval.fid_protocol=legacy (now clean)" in out and "num_images" not in out


def test_config_and_command_line_take_the_protocols_and_nothing_else(tiny_config):
    field = {f.name: f for f in dataclasses.fields(EvalConfig)}["fid_protocol"]
    assert typing.get_args(typing.get_type_hints(EvalConfig)["fid_protocol"]) == tuple(metrics.FID_PROTOCOLS)
    assert field.default == metrics.DEFAULT_FID_PROTOCOL == "clean"
    assert tiny_config("eval.fid_protocol=legacy").eval.fid_protocol == "legacy"
    with pytest.raises(ConfigError, match="eval.fid_protocol must be one of clean, legacy"):
        tiny_config("eval.fid_protocol=tensorflow")
    parser = build_parser()
    for command in (["evaluate", "--data-root", "d"], ["compare", "--data-root", "d"]):
        base = [*command, "--weights", "w", "--output", "o"]
        assert parser.parse_args(base).fid_protocol == "clean"
        assert parser.parse_args([*base, "--fid-protocol", "legacy"]).fid_protocol == "legacy"
        with pytest.raises(SystemExit):
            parser.parse_args([*base, "--fid-protocol", "tensorflow"])
