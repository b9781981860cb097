"""Held-out evaluation: metrics on known inputs, and the evaluate command end to end."""

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from cyclestyle.config import ModelConfig
from cyclestyle.data import FolderSource, ImageSizeError, image_to_tensor, load_image
from cyclestyle.evaluation import metrics
from cyclestyle.evaluation.evaluate import evaluate_translators, output_names, prepare, write_report
from cyclestyle.models import build_generator
from cyclestyle.models.weights import load_generator
from cyclestyle.training.loop import train

from .conftest import cli


class TinyFeatures(nn.Module):
    """A fixed random conv net standing in for Inception: uint8 images → 32-d features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 32, 5, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x.float() / 127.5 - 1)


def random_images(n, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 32, 32, generator=g) * 0.6 + 0.2 + shift).clamp(0, 1)


def test_fid_and_kid_are_zero_for_identical_sets_and_grow_with_a_shift():
    extractor = TinyFeatures()
    real = metrics.extract_features(extractor, [random_images(40)])
    assert metrics.frechet_distance(real, real) < 1e-6
    same = metrics.extract_features(extractor, [random_images(40, seed=3)])  # another draw, same distribution
    shifted = metrics.extract_features(extractor, [random_images(40, shift=0.3, seed=1)])
    kid_same, _ = metrics.kernel_inception_distance(real, same, subset_size=20)
    kid_shifted, _ = metrics.kernel_inception_distance(real, shifted, subset_size=20)
    assert metrics.frechet_distance(real, shifted) > 100 * metrics.frechet_distance(real, same) > 0
    # KID is unbiased: near zero (either sign) for equal distributions, clearly positive otherwise.
    assert kid_shifted > 1e-4 and abs(kid_same) < kid_shifted / 50


def test_fid_agrees_with_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    extractor = TinyFeatures()
    a, b = random_images(30), random_images(30, shift=0.1, seed=2)
    reference = FrechetInceptionDistance(feature=extractor, input_img_size=(3, 32, 32))
    reference.update(metrics.to_uint8(a), real=True)
    reference.update(metrics.to_uint8(b), real=False)
    ours = metrics.frechet_distance(metrics.extract_features(extractor, [a]), metrics.extract_features(extractor, [b]))
    assert ours == pytest.approx(float(reference.compute()), rel=1e-5)


def test_kid_subset_adapts_to_small_sets_and_needs_two_images():
    f = torch.randn(5, 8, dtype=torch.float64)
    mean, std = metrics.kernel_inception_distance(f, f + 1, subset_size=1000, subsets=10)
    # the subset shrinks to the 5 images: every subset is the whole set, so all agree
    assert mean > 0 and std < 1e-9 * mean
    assert mean == pytest.approx(metrics.kernel_inception_distance(f, f + 1, subset_size=5, subsets=1)[0], rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.kernel_inception_distance(f[:1], f[:1])


def test_paired_metrics_on_known_images():
    x = random_images(2)
    assert metrics.psnr(x, (x + 0.1).clamp(0, 1)) < metrics.psnr(x, (x + 0.01).clamp(0, 1))
    noise = torch.full_like(x, 0.5)
    assert metrics.psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-3)  # MSE 0.01 → 20 dB
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-6) and metrics.ssim(x, noise) < 0.5
    assert metrics.mean_absolute_error(x, x + 0.25) == pytest.approx(0.25)


def test_missing_inception_weights_is_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(metrics.MissingWeightsError) as info:
        metrics.load_inception()
    message = str(info.value)
    assert "\n" not in message and metrics.INCEPTION_FILE in message and "--inception-weights" in message
    assert str(tmp_path) in message


class RunsCode:
    """Unpickling this creates ``marker``: the payload of a crafted weights file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted_weights(path, marker):
    """A .pth that looks like a state dict and creates ``marker`` when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3), "payload": RunsCode(marker)}, path)
    return path


def test_crafted_inception_weights_run_nothing_at_the_default_path_or_given(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    marker = tmp_path / "marker"
    default = crafted_weights(metrics.default_inception_path(), marker)
    given = crafted_weights(tmp_path / "shared" / "inception.pth", marker)
    for weights, path in ((None, default), (given, given)):
        with pytest.raises(metrics.InceptionWeightsError) as info:
            metrics.load_inception(weights)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and not marker.exists()
    # The default file is refused by its hash ...
    with pytest.raises(metrics.InceptionWeightsError, match="SHA-256 begins"):
        metrics.load_inception()
    # ... and, were its hash the expected one, by weights_only.
    monkeypatch.setattr(metrics, "INCEPTION_SHA256_PREFIX", hashlib.sha256(default.read_bytes()).hexdigest()[:8])
    with pytest.raises(metrics.InceptionWeightsError, match="builtins.open|io.open") as info:
        metrics.load_inception()
    assert "\n" not in str(info.value) and not marker.exists()
    torch.load(given, weights_only=False)  # the control: unpickled, the file does run its payload
    assert marker.exists()


def test_inception_weights_load_into_the_network_key_for_key(tmp_path):
    from cyclestyle.evaluation.inception import inception_network

    torch.manual_seed(0)
    state = inception_network().state_dict()
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / "inception.pth"
    torch.save({**state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}, path)
    net = metrics.load_inception(path)
    assert all(torch.equal(net.network.state_dict()[k], v) for k, v in state.items())
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    del state["Mixed_7c.branch_pool.conv.weight"]
    torch.save(state, path)
    with pytest.raises(metrics.InceptionWeightsError, match="lack Mixed_7c.branch_pool.conv.weight"):
        metrics.load_inception(path)


@pytest.fixture
def tiny_run(tiny_config):
    return train(tiny_config("train.max_steps=2"))


def test_evaluate_uses_every_image_and_writes_a_consistent_report(tiny_run, toy_root, tmp_path):
    g_a, g_b = load_generator(tiny_run / "G_A.safetensors"), load_generator(tiny_run / "G_B.safetensors")
    test_a, test_b = FolderSource(toy_root / "testA"), FolderSource(toy_root / "testB")
    # Ground truth for A→B, matched by file name: here the B images stand in for it.
    truth = tmp_path / "truth" / "AtoB"
    truth.mkdir(parents=True)
    for p in sorted((toy_root / "testB").glob("*.png"))[:3]:
        Image.open(p).save(truth / p.name)
    out = tmp_path / "eval"
    result = evaluate_translators(g_a, g_b, test_a, test_b, output=out, size=32, extractor=TinyFeatures(),
                                  truth_dir=tmp_path / "truth", progress=False)
    result.step = 2
    write_report(result, out, "test")
    data = json.loads((out / "metrics.json").read_text())
    assert set(data) == {"AtoB", "BtoA", "step", "config_hash", "fid_protocol", "notes"}
    for direction in ("AtoB", "BtoA"):
        assert set(data[direction]) >= {"n", "fid", "kid", "cycle_l1", "psnr", "ssim"}
        assert data[direction]["n"] == 4  # every held-out image
        assert data[direction]["fid"] > 0 and data[direction]["cycle_l1"] > 0
    assert data["AtoB"]["psnr"] is not None and data["BtoA"]["psnr"] is None
    assert any("1 images had no ground truth" in n for n in data["notes"])
    page = (out / "index.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 2 * 4 * 3 + 3  # real, translated, reconstructed; 3 A→B truths
    assert all((out / s).is_file() for s in sources)
    assert page.index("<table") < page.index("<img")  # the metrics table comes first


def test_evaluate_command_without_inception_weights(tiny_run, toy_root, tmp_path):
    out = tmp_path / "eval"
    env_home = tmp_path / "torch-home"  # an empty hub cache: no Inception weights
    result = subprocess.run(cli("evaluate", "--weights", str(tiny_run), "--data-root", str(toy_root),
                                "--output", str(out)), capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "TORCH_HOME": str(env_home)})
    assert result.returncode == 0, result.stderr
    assert "no Inception weights" in result.stdout
    data = json.loads((out / "metrics.json").read_text())
    assert data["AtoB"]["fid"] is None and data["AtoB"]["cycle_l1"] is not None
    assert data["step"] == 2 and isinstance(data["config_hash"], str)
    assert data["fid_protocol"] == "clean"  # the default, named even where FID could not be computed
    assert any("Inception" in n for n in data["notes"])


@pytest.mark.parametrize("where", ["default", "given"])
def test_evaluate_command_with_crafted_inception_weights_runs_nothing(tiny_run, toy_root, tmp_path, where):
    torch_home, marker = tmp_path / "torch-home", tmp_path / "marker"
    path = torch_home / "hub" / "checkpoints" / metrics.INCEPTION_FILE if where == "default" else tmp_path / "i.pth"
    crafted_weights(path, marker)
    given = ["--inception-weights", str(path)] if where == "given" else []
    result = subprocess.run(cli("evaluate", "--weights", str(tiny_run), "--data-root", str(toy_root),
                                "--output", str(tmp_path / "eval"), *given), capture_output=True, text=True,
                            timeout=300, env={**__import__("os").environ, "TORCH_HOME": str(torch_home)})
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    said = [line for line in (result.stdout + result.stderr).splitlines() if str(path) in line]
    assert len(said) == 1 and said[0].startswith("cyclestyle: note:")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["AtoB"]["fid"] is None


def test_evaluate_command_names_a_missing_test_split(tiny_run, tmp_path):
    (tmp_path / "data" / "trainA").mkdir(parents=True)
    result = subprocess.run(cli("evaluate", "--weights", str(tiny_run), "--data-root", str(tmp_path / "data"),
                                "--output", str(tmp_path / "out")), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "testA" in result.stderr and "Traceback" not in result.stderr


def tiny_generators(channels=3):
    """Untrained generators, fixed by the seed: enough to judge what evaluation does with them."""
    torch.manual_seed(0)
    model = ModelConfig(in_channels=channels, out_channels=channels, ngf=8, n_blocks=1)
    return tuple(build_generator(model, reverse=r).eval() for r in (False, True))


def test_output_names_are_distinct_and_keep_the_stem():
    """Issue 12: outputs were named by stem alone, so a.jpg and a.png overwrote each other."""
    paths = [Path("t") / p for p in ("A.png", "a.jpg", "a.png", "x/a.png", "y/b c.png", "z/a-1.png")]
    names = output_names(FolderSource("t", paths), len(paths))
    assert names == ["A", "a-1", "a-2", "a-3", "b_c", "a-1-5"]  # distinct on a case-insensitive disk too
    assert output_names(FolderSource("t", paths), 2) == names[:2]


def test_images_of_the_same_stem_each_get_their_own_output_and_their_truth(toy_root, tmp_path):
    test_a = tmp_path / "testA"
    photos = sorted((toy_root / "testA").glob("*.png"))
    for folder, photo, name in (("", photos[0], "a.jpg"), ("", photos[1], "a.png"), ("x", photos[2], "a.png"),
                                ("y", photos[3], "a.png")):
        (test_a / folder).mkdir(parents=True, exist_ok=True)
        Image.open(photo).convert("RGB").save(test_a / folder / name, quality=95)
    truth = tmp_path / "truth"
    truth.mkdir()
    Image.open(sorted((toy_root / "testB").glob("*.png"))[0]).save(truth / "a.png")  # matches all four by stem
    out = tmp_path / "eval"
    g_a, g_b = tiny_generators()
    result = evaluate_translators(g_a, g_b, FolderSource(test_a), FolderSource(toy_root / "testB"), output=out,
                                  size=32, truth_dir=truth, progress=False)
    write_report(result, out, "test")
    rows = result.rows["AtoB"]
    assert [r["name"] for r in rows] == ["a", "a-1", "a-2", "a-3"]
    translated = {(out / r["translated"]).read_bytes() for r in rows}
    assert len(translated) == 4  # four different photos, four files
    assert all("truth" in r for r in rows) and result.directions["AtoB"].values["psnr"] is not None
    assert not any("had no ground truth" in n for n in result.notes)
    page = (out / "index.html").read_text()
    assert all(f'src="{r["translated"]}"' in page for r in rows)


def read_unit(path):
    """A written PNG as the metrics take it: 1×C×H×W in [0, 1]."""
    return (image_to_tensor(load_image(path)).unsqueeze(0) + 1) / 2


def test_evaluate_scores_the_8_bit_images_it_writes(toy_root, tmp_path):
    """Issue 12: evaluate scored the float translations while compare scored its 8-bit PNGs."""
    truth = tmp_path / "truth" / "AtoB"
    truth.mkdir(parents=True)
    for p in sorted((toy_root / "testB").glob("*.png"))[:3]:
        Image.open(p).resize((40, 40)).save(truth / p.name)  # resized to the translation's 32 px when read
    out = tmp_path / "eval"
    g_a, g_b = tiny_generators()
    result = evaluate_translators(g_a, g_b, FolderSource(toy_root / "testA"), FolderSource(toy_root / "testB"),
                                  output=out, size=32, truth_dir=tmp_path / "truth", progress=False)
    write_report(result, out, "test")
    for direction, rows in result.rows.items():
        files = [{kind: read_unit(out / path) for kind, path in row.items() if kind != "name"} for row in rows]
        cycle = [metrics.mean_absolute_error(f["reconstructed"], f["real"]) for f in files]
        assert result.directions[direction].values["cycle_l1"] == pytest.approx(sum(cycle) / len(cycle), abs=1e-7)
    files = [(read_unit(out / row["translated"]), read_unit(out / row["truth"]))
             for row in result.rows["AtoB"] if "truth" in row]
    assert len(files) == 3
    for name, metric in (("psnr", metrics.psnr), ("ssim", metrics.ssim)):
        expected = sum(metric(translated, true) for translated, true in files) / len(files)
        assert result.directions["AtoB"].values[name] == pytest.approx(expected, abs=1e-7), name
    assert any("scored on the 8-bit images" in n for n in json.loads((out / "metrics.json").read_text())["notes"])
    assert "scored on the 8-bit images" in (out / "index.html").read_text()


def test_a_one_channel_run_gets_fid_from_an_rgb_feature_network(toy_root):
    """Issue 12: a 1-channel run (model.in_channels 1) crashed at its first FID: Inception takes RGB."""
    g_a, g_b = tiny_generators(channels=1)
    result = evaluate_translators(g_a, g_b, FolderSource(toy_root / "testA", channels=1),
                                  FolderSource(toy_root / "testB", channels=1), size=32, extractor=TinyFeatures(),
                                  progress=False)
    for direction, m in result.directions.items():
        assert m.n == 4 and m.values["fid"] > 0 and isinstance(m.values["kid"], float), direction


def test_resizing_by_the_short_side_is_capped():
    with pytest.raises(ImageSizeError, match="strip.png is 4x300: more elongated than 64:1"):
        prepare(Image.new("RGB", (4, 300)), 32, "strip.png")
    with pytest.raises(ImageSizeError, match="tall.png is 60x3000: at short side 2000"):  # 2000×100000 px
        prepare(Image.new("RGB", (60, 3000)), 2000, "tall.png")
    assert prepare(Image.new("L", (40, 60)), 32).shape == (1, 1, 48, 32)  # width 40 → 32, height 60 → 48


def test_an_image_past_the_resize_caps_is_skipped_with_one_note(toy_root, tmp_path):
    """Issue 12: evaluate and compare resized by the short side without the caps the other commands have."""
    for domain, size in (("A", (4, 300)), ("B", (300, 4))):  # 75:1
        shutil.copytree(toy_root / f"test{domain}", tmp_path / f"test{domain}")
        Image.new("RGB", size, "white").save(tmp_path / f"test{domain}" / f"strip{domain}.png")
    g_a, g_b = tiny_generators()
    result = evaluate_translators(g_a, g_b, FolderSource(tmp_path / "testA"), FolderSource(tmp_path / "testB"),
                                  size=32, extractor=TinyFeatures(), progress=False)  # each domain read twice
    for direction, domain in (("AtoB", "A"), ("BtoA", "B")):
        assert result.directions[direction].n == 4 and result.directions[direction].values["fid"] is not None
        notes = [n for n in result.notes if f"strip{domain}.png" in n]
        assert len(notes) == 1 and notes[0].startswith("skipped") and "more elongated than 64:1" in notes[0]


def test_evaluate_compiled_scores_what_eager_scores(tiny_run, toy_root, tmp_path, capsys):
    """--compile on runs both generators through torch.compile: the same images up to rounding
    noise, so every metric agrees with the eager run's to a small tolerance."""
    from cyclestyle.cli import main

    scores = {}
    for setting in ("off", "on"):
        out = tmp_path / setting
        assert main(["evaluate", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out),
                     "--compile", setting]) == 0
        scores[setting] = json.loads((out / "metrics.json").read_text())
    assert "compiling the generators" in capsys.readouterr().err
    for direction in ("AtoB", "BtoA"):
        eager, compiled = scores["off"][direction], scores["on"][direction]
        assert eager["n"] == compiled["n"] > 0
        assert compiled["cycle_l1"] == pytest.approx(eager["cycle_l1"], rel=1e-3)


def evaluate_cli(*args: str) -> int:
    """``cyclestyle evaluate ARGS`` in this process: its exit status (a usage error's included)."""
    from cyclestyle import cli as program

    try:
        return program.main(["evaluate", *args])
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("option", [["--limit", "0"], ["--limit", "-3"], ["--size", "0"], ["--size", "-32"],
                                    ["--size", "100000"]])
def test_evaluate_that_would_evaluate_no_image_is_an_error_in_one_line(tiny_run, toy_root, tmp_path, capsys,
                                                                       monkeypatch, option):
    """Issue 25, item 10: --limit 0 gave n = 0, --size 100000 skipped every image, --size 0 became 32; each exited 0."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no Inception: the other metrics only
    out = tmp_path / "eval"
    code = evaluate_cli("--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out), *option)
    err = capsys.readouterr().err.strip()
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("cyclestyle")]  # not usage, not progress bars
    assert len(lines) == 1 and (option[0] in lines[0] or "no held-out image" in lines[0]), err
    assert "Traceback" not in err
    assert not (out / "metrics.json").exists()


def test_evaluate_names_the_missing_generator_of_a_two_way_run(tiny_run, toy_root, tmp_path, capsys, monkeypatch):
    """Issue 25, item 10: a CycleGAN run without G_B was evaluated A→B alone, as "a one-way method such as CUT"."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    (tiny_run / "G_B.safetensors").unlink()
    out = tmp_path / "eval"
    code = evaluate_cli("--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out))
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("cyclestyle")]
    assert code == 1 and len(lines) == 1 and "G_B.safetensors" in lines[0] and "one-way" not in err, err
    assert not (out / "metrics.json").exists()
