"""cyclestyle compare: CycleGAN, Gatys and the identity side by side on the same held-out images."""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cyclestyle.cli import main
from cyclestyle.data import FolderSource
from cyclestyle.demo.toy import make_paired_toy_dataset
from cyclestyle.evaluation.compare import DirectionUnavailable, run_comparison
from cyclestyle.evaluation.evaluate import evaluate_translators, prepare, unit
from cyclestyle.evaluation.reports import HEADER_HEIGHT
from cyclestyle.inference.run import open_run
from cyclestyle.training.loop import train

from .conftest import TINY_CUT, cli

pytestmark = pytest.mark.slow  # trains and compares runs: not in `test.sh --quick`

SIZE = 32  # configs/tiny.yaml's data.crop_size: the held-out images are compared at 32×32


@pytest.fixture
def tiny_run(tiny_config):
    return train(tiny_config("train.max_steps=4"))


@pytest.fixture
def truth(toy_root, tmp_path):
    """Ground truth for A→B for 3 of the 4 held-out images: the input as compared, inverted."""
    folder = tmp_path / "truth" / "AtoB"
    folder.mkdir(parents=True)
    for p in sorted((toy_root / "testA").glob("*.png"))[:3]:
        x = unit(prepare(Image.open(p).convert("RGB"), SIZE))
        Image.fromarray(((1 - x[0]).permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / p.name)
    return tmp_path / "truth"


# Offline and fast: an untrained VGG19 (the report must say so) and 3 Gatys iterations per image.
GATYS = ["--vgg-weights", "random", "--gatys-steps", "3", "--device", "cpu"]


def test_compare_reports_every_method_on_the_same_images(tiny_run, toy_root, truth, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # no Inception weights, on any machine
    out = tmp_path / "compare"
    style = sorted((toy_root / "trainB").glob("*.png"))[0]
    assert main(["compare", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out),
                 "--collection", "2", "--style", str(style), "--paired-truth", str(truth),
                 *GATYS]) == 0
    data = json.loads((out / "comparison.json").read_text())
    names = [p.stem for p in sorted((toy_root / "testA").glob("*.png"))]
    assert data["direction"] == "AtoB" and data["n"] == 4 and data["images"] == names
    methods = data["methods"]
    assert list(methods) == ["identity", "cyclegan", "gatys-style", "gatys-collection"]
    for name, m in methods.items():
        assert m["n"] == 4, name
        assert isinstance(m["psnr"], float) and isinstance(m["ssim"], float), name
        assert m["fid"] is None and m["kid"] is None, name  # TORCH_HOME is empty: no Inception weights
        assert (m["seconds_per_image"] == 0.0) == (name == "identity"), name  # every method but identity computes
        assert isinstance(m["peak_memory_mib"], float), name
        if name != "identity":
            assert all((out / "images" / name / f"{n}.png").is_file() for n in names), name
    assert methods["gatys-style"]["style"] == [str(style)]
    assert methods["gatys-collection"]["collection"] == 2 and len(methods["gatys-collection"]["style"]) == 2
    assert methods["gatys-style"]["settings"]["size"] == SIZE and methods["gatys-style"]["settings"]["steps"] == 3

    # The identity's PSNR is that of the input against its truth, over the 3 images that have one.
    psnrs = []
    for name in names[:3]:
        x = unit(prepare(Image.open(toy_root / "testA" / f"{name}.png").convert("RGB"), SIZE))
        true = torch.from_numpy(np.array(Image.open(truth / "AtoB" / f"{name}.png")))
        true = true.permute(2, 0, 1).unsqueeze(0).double() / 255
        psnrs.append(10 * torch.log10(1 / (x.double() - true).square().mean()).item())
    assert methods["identity"]["psnr"] == pytest.approx(sum(psnrs) / 3, abs=1e-4)

    assert any("Inception" in n for n in data["notes"]) and any("random VGG19" in n for n in data["notes"])
    assert any("3 of 4 images" in n for n in data["notes"])
    assert data["vgg_weights"] == "random"
    with Image.open(out / "images" / "gatys-style" / f"{names[0]}.png") as img:
        assert img.text["cyclestyle.vgg"] == "random"

    columns = data["grid_columns"]
    assert columns == ["input", "cyclegan", "gatys-style", "gatys-collection", "truth"]
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (len(columns) * SIZE, HEADER_HEIGHT + 4 * SIZE)  # the column titles on top
    page = (out / "index.html").read_text()
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 4 * 4 + 3  # input, cyclegan and two Gatys variants per image; three truths
    assert all((out / s).is_file() for s in sources)
    assert page.index("<table") < page.index("<img") and "random VGG19 weights" in page


def test_compare_command_with_the_default_collection_and_a_limit(tiny_run, toy_root, tmp_path):
    out = tmp_path / "compare"
    result = subprocess.run(
        cli("compare", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out),
            "--limit", "2", *GATYS),
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "comparison.json").read_text())
    assert list(data["methods"]) == ["cyclegan", "gatys-collection"]  # no truth: no identity, no PSNR
    assert data["methods"]["gatys-collection"]["collection"] == 8
    assert all(m["n"] == 2 and m["psnr"] is None for m in data["methods"].values())
    assert data["images"] == ["0000", "0001"] and any("first 2 of 4" in n for n in data["notes"])
    assert "gatys-collection" in result.stdout and "not real style transfers" in result.stdout
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (3 * SIZE, HEADER_HEIGHT + 2 * SIZE)


class TinyFeatures(nn.Module):
    """A fixed random conv net standing in for Inception: uint8 images → 16-d features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x.float() / 127.5 - 1)


def test_fid_and_kid_with_an_injected_feature_extractor(tiny_run, toy_root, truth, tmp_path):
    data = run_comparison(tiny_run, toy_root, tmp_path / "compare", collection=1, paired_truth=truth,
                          vgg_weights="random", gatys_steps=2, device="cpu", progress=False,
                          extractor=TinyFeatures())
    assert list(data["methods"]) == ["identity", "cyclegan", "gatys-collection"]
    for name, m in data["methods"].items():
        assert m["fid"] > 0 and isinstance(m["kid"], float), name
    assert not any("fid/kid" in n for n in data["notes"])
    assert json.loads((tmp_path / "compare" / "comparison.json").read_text()) == data


@pytest.mark.parametrize("option, value, message", [
    ("--style", "no-such.png", "no-such.png: no such file"),
])
def test_bad_values_are_named_in_one_line(option, value, message, toy_root, tmp_path, capsys):
    out = tmp_path / "compare"
    code = main(["compare", "--weights", str(tmp_path / "no-run"), "--data-root", str(toy_root), "--output",
                 str(out), option, value, *GATYS])
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1
    assert not out.exists()  # nothing was started


@pytest.mark.parametrize("option, value, message", [
    ("--collection", "0", "argument --collection: must be at least 1; got 0"),
    ("--limit", "-1", "argument --limit: must be at least 1; got -1"),
    ("--gatys-steps", "0", "argument --gatys-steps: must be at least 1; got 0"),
    ("--size", "x", "argument --size: must be a whole number; got 'x'"),
])
def test_a_count_below_one_is_a_usage_error_as_in_evaluate(option, value, message, toy_root, tmp_path, capsys):
    out = tmp_path / "compare"
    with pytest.raises(SystemExit) as stop:
        main(["compare", "--weights", str(tmp_path / "no-run"), "--data-root", str(toy_root), "--output",
              str(out), option, value, *GATYS])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.strip().splitlines()[-1].endswith(message)
    assert not out.exists()


def test_missing_vgg_weights_stop_before_any_work(tiny_run, toy_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # an empty cache
    out = tmp_path / "compare"
    code = main(["compare", "--weights", str(tiny_run), "--data-root", str(toy_root), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "vgg19-dcbb9e9d.pth" in err and str(tmp_path / "hub") in err and "--vgg-weights random" in err
    assert not out.exists()


def test_evaluate_and_compare_give_a_model_one_score(tiny_run, toy_root, truth, tmp_path):
    """Issue 12: evaluate scored the float translations, compare the 8-bit PNGs: two PSNRs for one model."""
    run = open_run(tiny_run)
    held_out = evaluate_translators(run.generator("AtoB", "cpu"), run.generator("BtoA", "cpu"),
                                    FolderSource(toy_root / "testA"), FolderSource(toy_root / "testB"), size=SIZE,
                                    truth_dir=truth, progress=False)
    compared = run_comparison(tiny_run, toy_root, tmp_path / "compare", collection=1, paired_truth=truth,
                              vgg_weights="random", gatys_steps=1, device="cpu", progress=False)
    for name in ("psnr", "ssim"):
        assert compared["methods"]["cyclegan"][name] == pytest.approx(held_out.directions["AtoB"].values[name],
                                                                      abs=1e-9), name


def test_compare_skips_an_image_past_the_resize_caps_with_one_note(tiny_run, toy_root, tmp_path):
    """Issue 12: compare resized by the short side without the caps of the other commands."""
    root = tmp_path / "data"
    shutil.copytree(toy_root, root)
    Image.new("RGB", (4, 300), "white").save(root / "testA" / "strip.png")  # 75:1
    data = run_comparison(tiny_run, root, tmp_path / "compare", collection=1, vgg_weights="random", gatys_steps=1,
                          device="cpu", progress=False)
    assert data["n"] == 4 and "strip" not in data["images"]
    notes = [n for n in data["notes"] if "strip.png" in n]
    assert len(notes) == 1 and notes[0].startswith("skipped") and "more elongated than 64:1" in notes[0]


# --------------------------------------------------------------------------------------------
# Runs of every method: the row named by the method, and the directions a run has


def _grid_titles(out, columns):
    """The title row of grid.png: dark text over each column, white below the text."""
    with Image.open(out / "grid.png") as grid:
        header = np.asarray(grid.convert("L"))[:HEADER_HEIGHT]
    return [header[:, c * SIZE:(c + 1) * SIZE].min() < 128 for c in range(len(columns))]


def test_a_cut_run_is_compared_as_cut_and_its_other_direction_is_one_line(tiny_config, toy_root, tmp_path, capsys):
    run = train(tiny_config("method=cut", *TINY_CUT, "train.max_steps=2", "log.with=none"))
    capsys.readouterr()
    out = tmp_path / "compare"
    assert main(["compare", "--weights", str(run), "--data-root", str(toy_root), "--output", str(out),
                 "--collection", "1", "--limit", "2", *GATYS]) == 0
    data = json.loads((out / "comparison.json").read_text())
    assert data["translator"] == "cut" and list(data["methods"]) == ["cut", "gatys-collection"]
    assert data["methods"]["cut"]["method"] == "cut" and data["grid_columns"] == ["input", "cut", "gatys-collection"]
    assert all((out / "images" / "cut" / f"{n}.png").is_file() for n in data["images"])
    assert not (out / "images" / "cyclegan").exists()
    assert "<td>cut</td>" in (out / "index.html").read_text()
    assert _grid_titles(out, data["grid_columns"]) == [True, True, True]
    assert capsys.readouterr().out.splitlines()[1].startswith("cut ")

    other = tmp_path / "other"
    code = main(["compare", "--weights", str(run), "--data-root", str(toy_root), "--output", str(other),
                 "--direction", "BtoA", *GATYS])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err == (f"cyclestyle: error: --direction BtoA: {run} is a cut run, which translates AtoB only; "
                   "use --direction AtoB\n")
    assert not other.exists()  # refused before any work
    with pytest.raises(DirectionUnavailable):  # the Python API: a DataError naming the same
        run_comparison(run, toy_root, other, direction="BtoA", vgg_weights="random", device="cpu")


def test_a_pix2pix_run_trained_btoa_compares_btoa_against_the_pairs(tmp_path, capsys):
    from cyclestyle.training.configure import load_config
    from .conftest import REPO

    root = make_paired_toy_dataset(tmp_path / "pairs", "folders", n_train=3, n_test=3, size=SIZE)
    run = train(load_config(REPO / "configs" / "tiny.yaml", [
        f"data.root={root}", "data.format=folder", "data.load_size=32", "method=pix2pix", "pix2pix.direction=BtoA",
        "model.n_blocks=1", f"output_dir={tmp_path / 'run'}", "train.max_steps=2", "log.with=none"]))
    capsys.readouterr()
    out = tmp_path / "compare"
    assert main(["compare", "--weights", str(run), "--data-root", str(root), "--output", str(out),
                 "--collection", "1", "--direction", "AtoB", *GATYS]) == 2  # not this run's way
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a pix2pix run, which translates BtoA only; use --direction BtoA" in err
    assert not out.exists()

    assert main(["compare", "--weights", str(run), "--data-root", str(root), "--output", str(out),
                 "--collection", "1", *GATYS]) == 0  # no --direction: the run's only way, BtoA
    data = json.loads((out / "comparison.json").read_text())
    assert data["direction"] == "BtoA" and data["translator"] == "pix2pix" and data["n"] == 3
    assert list(data["methods"]) == ["identity", "pix2pix", "gatys-collection"]  # paired data: a truth for each
    assert data["grid_columns"] == ["input", "pix2pix", "gatys-collection", "truth"]
    assert data["weights"] == str(run / "G.safetensors")
    for name in data["images"]:  # the inputs are B, the truths their partners in A, as written
        for column, domain in (("input", "testB"), ("truth", "testA")):
            written = np.asarray(Image.open(out / "images" / column / f"{name}.png"), dtype=np.int16)
            assert np.abs(written - np.asarray(Image.open(root / domain / f"{name}.png"), dtype=np.int16)).max() <= 1
    # The identity's PSNR: each print (B) against its true scene (A), by hand.
    psnrs = [10 * np.log10(1 / np.mean(np.square(
        np.asarray(Image.open(root / "testB" / f"{n}.png"), dtype=np.float64) / 255
        - np.asarray(Image.open(root / "testA" / f"{n}.png"), dtype=np.float64) / 255))) for n in data["images"]]
    assert data["methods"]["identity"]["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-3)
    assert isinstance(data["methods"]["pix2pix"]["psnr"], float) and isinstance(data["methods"]["pix2pix"]["ssim"], float)
    assert any("against each held-out image's partner" in n for n in data["notes"])
    assert _grid_titles(out, data["grid_columns"]) == [True] * 4


def test_a_cyclegan_run_compares_btoa_under_its_old_key(tiny_run, toy_root, tmp_path):
    data = run_comparison(tiny_run, toy_root, tmp_path / "compare", direction="BtoA", collection=1, limit=2,
                          vgg_weights="random", gatys_steps=1, device="cpu", progress=False)
    assert data["translator"] == "cyclegan" and list(data["methods"]) == ["cyclegan", "gatys-collection"]
    assert data["weights"] == str(tiny_run / "G_B.safetensors") and data["methods"]["cyclegan"]["method"] == "cyclegan"
    written = np.asarray(Image.open(tmp_path / "compare" / "images" / "input" / "0000.png"), dtype=np.int16)
    expected = unit(prepare(Image.open(toy_root / "testB" / "0000.png").convert("RGB"), SIZE))[0]
    assert np.abs(written - (expected.permute(1, 2, 0).numpy() * 255).round()).max() <= 1  # testB's, not testA's
