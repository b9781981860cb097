"""Fast feed-forward style transfer (Johnson et al. 2016): the network, its VGG-16 losses, training
through `cyclestyle style-train` (loss falling, bitwise resume after SIGKILL), translating with
its weights (size, alpha, EXIF, tiles, --style-strength, --preserve-color), the compare row, and
one-line errors. Tiny networks (ngf 8), 32 px crops, random VGG-16 weights."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.config import ConfigError
from cyclestyle.training.configure import load_config
from cyclestyle.data import content_format, open_domains
from cyclestyle.inference.run import open_run
from cyclestyle.inference.tiling import tiled_translate
from cyclestyle.inference.translate import translate_tensor
from cyclestyle.models import GENERATORS
from cyclestyle.style.color import rgb_to_yiq
from cyclestyle.style.vgg import VGGWeightsError, load_vgg
from cyclestyle.training.loop import train

from .conftest import REPO, TINY_STYLE, cli, few_cpus, kill_after_a_checkpoint, worker_warnings

pytestmark = pytest.mark.slow  # trains the fast style network end to end: not in `test.sh --quick`

CONFIG = REPO / "configs" / "fast_style.yaml"


def smooth_picture(height: int, width: int, seed: int) -> np.ndarray:
    """An H×W×3 uint8 picture of smooth random colours."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 4, 4, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (fine[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def style_args(style: Path, content: Path, output: Path) -> list[str]:
    """A tiny style-train command (``TINY_STYLE``), batch 2, a checkpoint every 4 steps."""
    sets = [*TINY_STYLE, "train.batch_size=2", "train.log_every=4", "train.checkpoint_every=4",
            "train.keep_checkpoints=10"]
    return ["style-train", "--style", str(style), "--content", str(content), "--output", str(output),
            *sum([["--set", s] for s in sets], [])]


@pytest.fixture(scope="module")
def style_run(style_image, toy_root, tmp_path_factory) -> Path:
    """A trained tiny style network (20 steps on the toy photos, their CycleGAN layout)."""
    out = tmp_path_factory.mktemp("fast") / "run"
    assert main([*style_args(style_image, toy_root, out), "--set", "train.max_steps=20"]) == 0
    return out


# --------------------------------------------------------------------------------------------
# The network and the loss network


def test_transform_net_is_johnsons_and_tiles_exactly():
    net = GENERATORS.get("johnson").build(3, 3, {"ngf": 32, "n_blocks": 5})
    assert net.size_multiple == 4
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in (convs[0], convs[1], convs[2], convs[-1])] == [
        (32, (9, 9), (1, 1)), (64, (3, 3), (2, 2)), (128, (3, 3), (2, 2)), (3, (9, 9), (1, 1))]
    assert len(convs) == 3 + 5 * 2 + 2 + 1
    norms = [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == len(convs) - 1 and all(n.affine for n in norms)
    assert sum(isinstance(m, torch.nn.Upsample) and m.mode == "nearest" for m in net.modules()) == 2

    small = GENERATORS.get("johnson").build(3, 3, {"ngf": 4, "n_blocks": 1}).eval()
    torch.manual_seed(0)
    for n in small.modules():  # affine parameters away from their (1, 0) start
        if isinstance(n, torch.nn.InstanceNorm2d):
            n.weight.data.uniform_(0.5, 1.5)
            n.bias.data.uniform_(-0.5, 0.5)
    x = torch.rand(1, 3, 200, 180) * 2 - 1
    with torch.inference_mode():
        full, tiled = translate_tensor(small, x), tiled_translate(small, x, tile=128)  # 2×2 tiles and more
    assert full.shape == x.shape
    assert (full - tiled).abs().max() < 1e-4


def test_vgg16_matches_torchvision_layers_and_says_where_its_weights_go(tmp_path, monkeypatch):
    import torchvision

    reference = torchvision.models.vgg16(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "vgg16.pth")
    vgg = load_vgg("vgg16", tmp_path / "vgg16.pth", ["relu2_2", "relu4_3"])
    x = torch.rand(1, 3, 32, 32)
    normalised = (x - vgg.mean) / vgg.std
    with torch.no_grad():
        features = vgg(x, ["relu2_2", "relu4_3"])
        assert torch.allclose(features["relu2_2"], reference.features[:9](normalised), atol=1e-5)
        assert torch.allclose(features["relu4_3"], reference.features[:23](normalised), atol=1e-4)
    assert len(vgg.stack) == 23 and load_vgg("vgg16", "random", ["relu4_3"]).is_random

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(VGGWeightsError) as info:
        load_vgg("vgg16", "imagenet", ["relu2_2"], option="style.vgg_weights")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth") in message
    assert "--set style.vgg_weights=random" in message


def test_several_style_images_give_their_mean_gram_matrices(style_image, tmp_path):
    from cyclestyle.style.losses import gram_matrix
    from cyclestyle.training.methods.fast_style import FastStyle, load_style_images, style_grams

    other = tmp_path / "other.png"
    Image.fromarray(smooth_picture(48, 30, 9)).save(other)
    cfg = load_config(CONFIG, [f"style.images=[{style_image}, {other}]", "style.vgg_weights=random",
                               "style.image_size=40"], check_paths=False)
    style = FastStyle.options(cfg)
    vgg = load_vgg("vgg16", "random", style.style_layers)
    images = load_style_images(style)
    assert [max(i.shape[-2:]) for i in images] == [40, 40]  # long side style.image_size
    grams = style_grams(vgg, style)
    with torch.no_grad():
        for layer in style.style_layers:
            each = [gram_matrix(vgg(image, [layer])[layer]) for image in images]
            features = vgg(images[0], [layer])[layer]
            c, h, w = features.shape[1:]
            by_hand = features.reshape(c, h * w) @ features.reshape(c, h * w).T / (c * h * w)  # pytorch/examples'
            assert torch.allclose(each[0][0], by_hand, rtol=1e-4, atol=1e-6)
            assert torch.allclose(grams[layer], (each[0] + each[1]) / 2, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Training


def test_training_writes_the_network_and_the_loss_falls(style_run):
    records = [json.loads(line) for line in (style_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16, 20]
    assert {"content", "style", "tv", "lr", "it_per_s"} <= records[0].keys()
    total = [r["content"] + r["style"] + r["tv"] for r in records]
    assert total[-1] < 0.8 * total[0], total
    assert sorted(p.name for p in style_run.glob("*.safetensors")) == ["G_A.safetensors"]
    cfg = load_config(style_run / "config.yaml", check_paths=False)
    assert (cfg.method, cfg.data.format, cfg.model.generator) == ("fast_style", "folder", "johnson")
    # The checkpoint holds the style network alone: the VGG-16 is rebuilt, never saved.
    step = style_run / "checkpoints" / "step-20"
    assert sorted(p.name for p in step.glob("*.safetensors")) == ["G_A.safetensors"]
    g = open_run(style_run).generator("AtoB", "cpu")
    assert type(g).__name__ == "TransformNet" and g(torch.zeros(1, 3, 20, 24)).shape == (1, 3, 20, 24)


def test_kill_and_resume_equals_uninterrupted(style_image, toy_root, tmp_path):
    """SIGKILL after a checkpoint, style-train --resume latest: bitwise the same weights."""
    straight_args = style_args(style_image, toy_root, tmp_path / "straight") + ["--set", "train.max_steps=12"]
    assert main(straight_args) == 0

    killed = tmp_path / "killed"
    args = style_args(style_image, toy_root, killed) + ["--set", "train.max_steps=12"]
    stopped_at = kill_after_a_checkpoint(args, killed)
    assert stopped_at.name != "step-12"

    result = subprocess.run(cli(*args, "--resume", "latest"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"resumed from {stopped_at}" in result.stdout + result.stderr
    for name in ("checkpoints/step-12/G_A.safetensors", "G_A.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(killed / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_plain_folder_of_photos_is_one_domain(tmp_path, toy_root):
    photos = tmp_path / "photos"
    (photos / "deep" / "er").mkdir(parents=True)
    for i, p in enumerate(sorted((toy_root / "trainA").glob("*.png"))[:5]):
        Image.open(p).save(photos / ("deep/er" if i % 2 else ".") / f"{i}.jpg")
    assert content_format(str(photos)) == "images" and content_format(str(toy_root)) == "folder"
    assert content_format("someone/coco-photos") == "hf"
    cfg = load_config(CONFIG, ["data.format=images", f"data.root={photos}", "style.images=[x.png]",
                               "style.vgg_weights=random"], check_paths=False)
    (source,) = open_domains(cfg.data, cfg.data.train_split, domains=("A",))
    assert len(source) == 5
    with pytest.raises(ConfigError, match="method cyclegan needs two"):
        load_config(CONFIG, ["method=cyclegan", "data.format=images", f"data.root={photos}"], check_paths=False)
    with pytest.raises(ConfigError, match="eval.every=5"):
        load_config(CONFIG, ["eval.every=5", "style.images=[x.png]"], check_paths=False)


def test_more_data_workers_than_cpus_are_capped_with_a_note_not_a_warning(style_image, toy_root, tmp_path,
                                                                          monkeypatch, recwarn, capsys):
    """data.num_workers above the CPUs made torch warn of too many worker processes; the run now
    uses as many workers as there are CPUs, and says so once, not at each epoch's DataLoader (8
    steps of 6 per epoch: two epochs)."""
    cpus = few_cpus(monkeypatch)
    args = [*style_args(style_image, toy_root, tmp_path / "run"), "--set", "train.max_steps=8",
            "--set", f"data.num_workers={cpus + 3}"]
    assert main(args) == 0
    assert worker_warnings(recwarn) == []
    cpus_are = "1 CPU is" if cpus == 1 else f"{cpus} CPUs are"
    note = f"note: data.num_workers={cpus + 3} but {cpus_are} available: using {cpus}"
    assert capsys.readouterr().err.count(note) == 1


def test_the_dashboard_panels_show_held_out_photos_stylised(style_run, toy_root, capsys):
    from cyclestyle.training.tracking import HeldOutPanels

    cfg = load_config(style_run / "config.yaml", check_paths=False)
    train_sources = open_domains(cfg.data, cfg.data.train_split, domains=("A",))
    panels = HeldOutPanels.load(cfg, train_sources)
    assert panels.source == "test" and len(panels.images_a) == 4 and panels.images_b == []
    g = open_run(style_run).generator("AtoB", "cpu")
    drawn = panels.render(g, None, torch.device("cpu"))
    assert list(drawn) == ["images/A"]
    assert drawn["images/A"].image.size == (2 * 32, 4 * 32)  # real | stylised, one row per photo


def test_an_hf_dataset_is_one_domain_by_its_image_column(tmp_path, monkeypatch):
    import dataclasses

    import datasets

    from cyclestyle.config import DataConfig

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    files = []
    for k in range(4):
        files.append(tmp_path / f"{k}.png")
        Image.fromarray(smooth_picture(20, 24, k)).save(files[-1])
    table = datasets.Dataset.from_dict({"image": [str(f) for f in files[:3] + files[:1]]})  # one repeated
    table.cast_column("image", datasets.Image()).save_to_disk(str(tmp_path / "saved"))
    cfg = DataConfig(format="hf", root=str(tmp_path / "saved"))
    assert content_format(cfg.root) == "hf"
    (source,) = open_domains(cfg, "train", domains=("A",))
    assert len(source) == 3  # deduplicated

    tree = tmp_path / "tree"
    for domain, n in (("photo", 3), ("other", 2)):
        (tree / "train" / domain).mkdir(parents=True)
        for k in range(n):
            Image.fromarray(smooth_picture(20, 20, 10 * n + k)).save(tree / "train" / domain / f"{k}.png")
    labelled = dataclasses.replace(cfg, root=str(tree), label_column="label", label_a="photo")
    (source,) = open_domains(labelled, "train", domains=("A",))
    assert len(source) == 3


# --------------------------------------------------------------------------------------------
# Using the trained network


def test_translate_keeps_size_alpha_and_orientation_and_tiles_match(style_run, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    rgba = np.concatenate([smooth_picture(29, 37, 1), np.tile(np.arange(37, dtype=np.uint8)[None, :, None] * 6,
                                                                (29, 1, 1))], axis=-1)
    Image.fromarray(rgba, "RGBA").save(inputs / "alpha.png")
    rotated = Image.fromarray(smooth_picture(30, 50, 2))
    exif = rotated.getexif()
    exif[0x0112] = 6  # displayed rotated: 30 wide, 50 high
    rotated.save(inputs / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(smooth_picture(240, 200, 3)).save(inputs / "big.png")

    for out, extra in (("full", ["--tile", "0"]), ("tiled", ["--tile", "128"])):
        assert main(["translate", "--weights", str(style_run), "--output", str(tmp_path / out),
                     "--device", "cpu", *extra, str(inputs)]) == 0
    with Image.open(tmp_path / "full" / "alpha.png") as img:
        assert img.size == (37, 29) and img.mode == "RGBA"
        assert np.array_equal(np.array(img)[..., 3], rgba[..., 3])
    with Image.open(tmp_path / "full" / "rotated.jpg") as img:
        assert img.size == (30, 50)
    full = np.array(Image.open(tmp_path / "full" / "big.png")).astype(float)
    tiled = np.array(Image.open(tmp_path / "tiled" / "big.png")).astype(float)
    assert full.shape == (240, 200, 3) and np.abs(full - tiled).mean() < 1.0  # 1/255 on the [0, 1] scale
    assert full.std() > 0  # not a blank image


def test_style_strength_blends_and_preserve_color_keeps_chroma(style_run, tmp_path):
    photo = tmp_path / "photo.png"
    source = smooth_picture(40, 44, 4)
    Image.fromarray(source).save(photo)

    def run(name: str, *extra: str) -> np.ndarray:
        assert main(["translate", "--weights", str(style_run), "--output", str(tmp_path / name), "--device", "cpu",
                     *extra, str(photo)]) == 0
        return np.array(Image.open(tmp_path / name / "photo.png")).astype(float)

    styled, half, none = run("styled"), run("half", "--style-strength", "0.5"), run("none", "--style-strength", "0")
    assert np.abs(none - source).max() <= 1
    assert np.abs(half - (styled + source) / 2).max() <= 1.0
    assert np.abs(styled - source).mean() > 5  # the network does change the photo

    kept = run("kept", "--preserve-color")

    def yiq(a: np.ndarray) -> torch.Tensor:
        return rgb_to_yiq(torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).double() / 255)[0]

    assert torch.allclose(yiq(kept)[1:], yiq(source.astype(float))[1:], atol=1e-6)  # chroma: the photo's
    # Luminance: the stylised one's, as far as the photo's chroma lets it go (every channel in range).
    to_styled = (yiq(kept)[0] - yiq(styled)[0]).abs().mean()
    assert to_styled < 0.5 * (yiq(source.astype(float))[0] - yiq(styled)[0]).abs().mean()

    assert main(["translate", "--weights", str(style_run), "--output", str(tmp_path / "x"),
                 "--style-strength", "1.5", str(photo)]) == 2


def test_compare_writes_a_fast_style_row(style_run, tiny_config, toy_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no Inception weights, on any machine
    cyclegan = train(tiny_config("train.max_steps=2"))
    out = tmp_path / "compare"
    assert main(["compare", "--weights", str(cyclegan), "--data-root", str(toy_root), "--output", str(out),
                 "--fast-style", str(style_run), "--collection", "1", "--vgg-weights", "random",
                 "--gatys-steps", "2", "--device", "cpu"]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert list(data["methods"]) == ["cyclegan", "fast-style", "gatys-collection"]
    assert data["grid_columns"] == ["input", "cyclegan", "fast-style", "gatys-collection"]
    row = data["methods"]["fast-style"]
    assert row["n"] == data["n"] == len(data["images"]) == 4
    assert row["weights"] == str(style_run / "G_A.safetensors")
    assert row["seconds_per_image"] > 0 and isinstance(row["peak_memory_mib"], float)
    assert set(data["methods"]["cyclegan"]) == set(row)  # the same figures as the other rows
    assert sorted(p.stem for p in (out / "images" / "fast-style").glob("*.png")) == data["images"]


# --------------------------------------------------------------------------------------------
# Bad input: one line each


@pytest.mark.parametrize("case", ["missing style", "unreadable style", "empty content"])
def test_bad_input_is_one_line(case, style_image, toy_root, tmp_path, capsys):
    style, content = style_image, toy_root
    if case == "missing style":
        style = tmp_path / "nowhere.jpg"
    elif case == "unreadable style":
        style = tmp_path / "broken.png"
        style.write_bytes(b"not a png at all")
    else:
        content = tmp_path / "empty"
        (content / "sub").mkdir(parents=True)
    code = main(style_args(style, content, tmp_path / "run"))
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    assert str(style if "style" in case else content) in err
    assert not (tmp_path / "run" / "checkpoints").exists()
