"""Tests for cyclestyle.style.gatys: tiny images, a random-weight VGG19, CPU only, no network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cyclestyle.cli import main
from cyclestyle.style import gatys
from cyclestyle.style import vgg as gatys_vgg
from cyclestyle.style.gatys import (
    GatysConfig,
    VGGWeightsError,
    gram_matrix,
    load_vgg19,
    rgb_to_yiq,
    scale_sizes,
    style_loss,
    style_targets,
    stylize,
    tv_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread (conftest)

REPO = Path(__file__).resolve().parents[1]


def picture(height: int, width: int, seed: int) -> torch.Tensor:
    """A smooth random colour picture 1×3×H×W in [0, 1], on the 8-bit grid as a loaded file is."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 5, generator=g)
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (fine + 0.05 * torch.rand(1, 3, height, width, generator=g)).clamp(0, 1).mul(255).round().div(255)


def save_png(t: torch.Tensor, path: Path) -> Path:
    Image.fromarray((t[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    return path


@pytest.fixture(scope="module")
def vgg():
    return load_vgg19("random")


def tiny(**changes) -> GatysConfig:
    return GatysConfig(**{"size": 32, "steps": 8, "multiscale": False, **changes})


# --------------------------------------------------------------------------------------------
# Losses


def test_gram_matrix_hand_computed():
    # Two channels over 1×2 pixels: a = (1, 2), b = (3, 4); F Fᵀ = [[5, 11], [11, 25]], C·H·W = 4.
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[1.25, 2.75], [2.75, 6.25]]])
    assert torch.equal(gram_matrix(features), expected)
    # Batch items are independent; the normalisation makes a tiled image's Gram matrix the same.
    batch = torch.cat([features, 2 * features])
    assert torch.equal(gram_matrix(batch)[1], 4 * expected[0])
    assert torch.allclose(gram_matrix(features.repeat(1, 1, 3, 5)), expected)


def test_tv_loss_hand_computed():
    assert tv_loss(torch.full((1, 3, 4, 4), 0.3)) == 0
    # Horizontal steps of 1 between two columns, none vertically: mean dx² = 1, mean dy² = 0.
    assert tv_loss(torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])) == 1.0


def test_style_loss_is_zero_for_the_style_image(vgg):
    style, other = picture(40, 32, seed=1), picture(40, 32, seed=2)
    targets = style_targets(vgg, [style])
    weights = dict.fromkeys(gatys.STYLE_LAYERS, 1.0)
    assert style_loss(vgg(style, gatys.STYLE_LAYERS), targets, weights) == 0
    assert style_loss(vgg(other, gatys.STYLE_LAYERS), targets, weights) > 0


def test_style_targets_blend_and_collection_average(vgg):
    a, b = picture(32, 32, seed=3), picture(32, 40, seed=4)
    grams = {key: style_targets(vgg, [image]) for key, image in (("a", a), ("b", b))}
    blended = style_targets(vgg, [a, b], [7, 3])  # weights are normalised: 0.7 and 0.3
    collection = style_targets(vgg, [[a, b]])  # one entry holding two images: their mean
    for layer in gatys.STYLE_LAYERS:
        assert torch.allclose(blended[layer], 0.7 * grams["a"][layer] + 0.3 * grams["b"][layer], rtol=1e-5)
        assert torch.allclose(collection[layer], 0.5 * (grams["a"][layer] + grams["b"][layer]), rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Optimisation


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisers_lower_the_loss(vgg, optimizer):
    content, style = picture(32, 32, seed=5), picture(32, 32, seed=6)
    result = stylize(content, [style], tiny(optimizer=optimizer, steps=10), vgg, progress=False)
    totals = [record["total"] for record in result.history]
    assert len(totals) >= 8
    assert totals[-1] < 0.5 * totals[0]
    assert result.losses["total"] < 0.5 * totals[0]  # the returned (clamped) image's own loss
    assert result.image.shape == (1, 3, 32, 32)
    assert 0 <= result.image.min() and result.image.max() <= 1


def test_seed_fixes_the_image(vgg):
    content, style = picture(24, 32, seed=7), picture(32, 32, seed=8)
    run = lambda seed: stylize(content, [style], tiny(init="noise", seed=seed, steps=4), vgg, progress=False).image
    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


def test_multiscale_output_has_the_size_and_aspect_asked_for(vgg):
    content, style = picture(40, 60, seed=9), picture(50, 30, seed=10)  # content 60 wide, 40 high
    cfg = GatysConfig(size=48, steps=3, min_size=16, multiscale=True)
    result = stylize(content, [style], cfg, vgg, progress=False)
    assert result.sizes == [(16, 24), (23, 34), (32, 48)]  # (17, 11) is too small for VGG19
    assert result.image.shape == (1, 3, 32, 48)
    assert result.iterations and len(result.iterations) == 3
    # coarser scales get 0.35 of the evaluations of the next finer one (at least one): 1, 1, 3
    assert [record["scale"] for record in result.history] == [0] * 1 + [1] * 1 + [2] * 3
    single = stylize(content, [style], GatysConfig(size=48, steps=3, multiscale=False), vgg, progress=False)
    assert single.sizes == [(32, 48)] and single.image.shape == (1, 3, 32, 48)


def test_scale_schedule():
    long_sides = [max(s) for s in scale_sizes(768, 1024, GatysConfig(size=512))]
    assert long_sides == [128, 181, 256, 362, 512]  # from about 128, ×√2 per scale
    assert scale_sizes(768, 1024, GatysConfig(size=512, multiscale=False)) == [(384, 512)]
    assert scale_sizes(768, 1024, GatysConfig(size=100)) == [(75, 100)]  # already small: one scale
    assert gatys.scale_steps(3, GatysConfig(steps=100, coarse_steps=0.5)) == [25, 50, 100]


def test_preserve_color_keeps_the_content_chroma_exactly(vgg, tmp_path):
    content, style = picture(32, 48, seed=11), picture(32, 32, seed=12)
    result = stylize(content, [style], tiny(size=48, preserve_color=True, steps=10), vgg, progress=False)
    path = tmp_path / "out.png"
    gatys.save_result(result.image, path, vgg.source, tiny())
    out = torch.from_numpy(np.array(Image.open(path))).permute(2, 0, 1).double().unsqueeze(0)
    ref = (content * 255).round().double()
    # The same integer was added to R, G and B of each pixel: every chroma of the saved 8-bit file
    # equals the content's (YIQ here; YCbCr's Cb and Cr are such differences too) ...
    shift = out - ref
    assert torch.equal(shift[:, 0], shift[:, 1]) and torch.equal(shift[:, 1], shift[:, 2])
    assert torch.allclose(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(ref)[:, 1:], atol=1e-9)
    # ... while the luminance was changed by the transfer.
    assert shift.abs().mean() > 1


# --------------------------------------------------------------------------------------------
# VGG weights


def test_offline_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(VGGWeightsError) as info:
        load_vgg19(None)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth") in message
    assert "--vgg-weights" in message


def test_vgg_weights_from_a_state_dict_file(vgg, tmp_path):
    from safetensors.torch import save_file

    image = picture(32, 32, seed=13)
    expected = vgg(image, ["relu5_1"])["relu5_1"]
    # A whole-model state dict ("features.N.…", with a classifier entry to ignore) ...
    whole = {f"features.{k}": v for k, v in vgg.stack.state_dict().items()}
    torch.save({**whole, "classifier.0.bias": torch.zeros(4096)}, tmp_path / "vgg19.pth")
    loaded = load_vgg19(tmp_path / "vgg19.pth")
    assert loaded.source == str(tmp_path / "vgg19.pth") and not loaded.is_random
    assert torch.equal(loaded(image, ["relu5_1"])["relu5_1"], expected)
    # ... or one of the features part alone, as safetensors.
    save_file(vgg.stack.state_dict(), str(tmp_path / "features.safetensors"))
    assert torch.equal(load_vgg19(tmp_path / "features.safetensors")(image, ["relu5_1"])["relu5_1"], expected)
    # Something else is a one-line error naming the file.
    torch.save({"0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(VGGWeightsError, match="bad.pth") as info:
        load_vgg19(tmp_path / "bad.pth")
    assert "\n" not in str(info.value)


class RunsCode:
    """Unpickling this creates ``marker``: the payload of a crafted weights file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.mark.parametrize("where", ["default", "given"])
def test_crafted_vgg_weights_run_nothing(images, tmp_path, monkeypatch, capsys, where):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    marker = tmp_path / "marker"
    path = gatys.imagenet_weights_path() if where == "default" else tmp_path / "shared" / "vgg.pth"
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "payload": RunsCode(marker)}, path)
    given = ["--vgg-weights", str(path)] if where == "given" else []
    command = ["gatys", "--content", str(images["content"]), "--style", str(images["style_a"]),
               "--output", str(tmp_path / "o.png"), *given]
    if where == "default":  # torchvision's file name carries its hash, which this file has not ...
        assert main(command) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and "SHA-256 begins" in err
        # ... and were its hash the expected one, reading it with weights_only runs nothing
        monkeypatch.setattr(gatys_vgg, "hub_hash_mismatch", lambda path: None)
    code = main(command)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "unpickling would call" in err
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: unpickled, the file does run its payload
    assert marker.exists()


def test_only_the_needed_layers_are_built():
    assert len(load_vgg19("random").stack) == gatys.LAYER_INDEX["relu5_1"] + 1
    assert len(load_vgg19("random", layers=["relu2_1"]).stack) == gatys.LAYER_INDEX["relu2_1"] + 1


# --------------------------------------------------------------------------------------------
# Command line


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    styles = tmp_path / "styles"
    styles.mkdir()
    return {
        "content": save_png(picture(40, 60, seed=20), tmp_path / "photo.png"),
        "content2": save_png(picture(36, 36, seed=21), tmp_path / "other.png"),
        "style_a": save_png(picture(30, 40, seed=22), styles / "a.png"),
        "style_b": save_png(picture(40, 30, seed=23), styles / "b.png"),
        "styles": styles,
    }


@pytest.mark.slow
def test_cli_end_to_end(images, tmp_path):
    out = tmp_path / "out.png"
    command = [sys.executable, "-m", "cyclestyle", "gatys", "--content", str(images["content"]),
               "--style", str(images["style_a"]), "--output", str(out), "--vgg-weights", "random",
               "--size", "32", "--steps", "5", "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert "random" in done.stdout and "random" in done.stderr
    with Image.open(out) as img:
        assert img.size == (32, 21)  # 60×40 content, long side 32
        assert img.text["cyclestyle.vgg"] == "random"


def test_cli_several_contents_write_a_folder(images, tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["gatys", "--content", str(images["content"]), str(images["content2"]), "--style",
                 str(images["style_a"]), "--output", str(out), "--vgg-weights", "random", "--size", "32",
                 "--steps", "3", "--device", "cpu"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["other.png", "photo.png"]
    with Image.open(out / "other.png") as img:
        assert img.size == (32, 32) and img.text["cyclestyle.vgg"] == "random"


def test_cli_style_folder_is_the_equal_blend_of_its_images(images, tmp_path):
    def run(out: Path, *styles: Path) -> np.ndarray:
        assert main(["gatys", "--content", str(images["content"]), "--style", *map(str, styles), "--output",
                     str(out), "--vgg-weights", "random", "--size", "32", "--steps", "3", "--device", "cpu"]) == 0
        return np.asarray(Image.open(out))

    folder = run(tmp_path / "folder.png", images["styles"])
    assert np.array_equal(folder, run(tmp_path / "blend.png", images["style_a"], images["style_b"]))
    assert not np.array_equal(folder, run(tmp_path / "one.png", images["style_a"]))


def test_cli_style_weights_mismatch_is_a_one_line_error(images, tmp_path, capsys):
    code = main(["gatys", "--content", str(images["content"]), "--style", str(images["styles"]),
                 str(images["style_a"]), "--style-weights", "0.5,0.3,0.2", "--output", str(tmp_path / "o.png"),
                 "--vgg-weights", "random"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("cyclestyle: error: --style-weights")


def test_cli_unreadable_image_is_a_one_line_error_naming_it(images, tmp_path, capsys):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    code = main(["gatys", "--content", str(images["content"]), "--style", str(bad), "--output",
                 str(tmp_path / "o.png"), "--vgg-weights", "random"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and str(bad) in err


@pytest.mark.slow
def test_cli_offline_without_weights(images, tmp_path):
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "cyclestyle", "gatys", "--content", str(images["content"]), "--style",
               str(images["style_a"]), "--output", str(tmp_path / "o.png"), "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in done.stderr


def test_cli_never_writes_over_an_input_and_keeps_outputs_unless_overwrite(images, tmp_path, capsys):
    """Issue 12: ``--content photos/ --output photos/`` replaced the photos; outputs were replaced
    silently and not atomically."""
    photos = images["content"].parent
    common = ["--style", str(images["style_a"]), "--vgg-weights", "random", "--size", "32", "--steps", "2",
              "--device", "cpu"]
    code = main(["gatys", "--content", str(photos), "--output", str(photos), *common])
    assert code == 1 and "is the input" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["gatys", "--content", str(images["content"]), "--output", str(out), *common]) == 0
    written = out / f"{images['content'].stem}.png"
    written.write_bytes(b"keep me")
    capsys.readouterr()
    assert main(["gatys", "--content", str(images["content"]), "--output", str(out), *common]) == 0
    assert "skipped" in capsys.readouterr().err and written.read_bytes() == b"keep me"
    assert main(["gatys", "--content", str(images["content"]), "--output", str(out), *common, "--overwrite"]) == 0
    assert Image.open(written).size == (32, 21)
    assert sorted(p.name for p in out.iterdir()) == [written.name]  # no temporary file left behind
