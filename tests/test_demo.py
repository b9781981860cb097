"""``cyclestyle demo`` end to end, at toy sizes: every output, with values that hang together."""

import json
import subprocess

import pytest
from PIL import Image

from cyclestyle.cli import main
from cyclestyle.data import image_to_tensor, load_image
from cyclestyle.demo.data import render_painting
from cyclestyle.evaluation import metrics

from .conftest import REPO, cli

pytestmark = pytest.mark.slow  # the whole demo in a subprocess: not in `test.sh --quick`

QUICK = ["--image-size", "32", "--n-train", "8", "--n-test", "3", "--gatys-steps", "3", "--vgg-weights", "random",
         "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1", "--set", "data.load_size=32",
         "--set", "data.crop_size=32", "--set", "train.max_steps=6", "--set", "train.checkpoint_every=6",
         "--set", "train.log_every=2", "--set", "eval.every=3"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One quick demo, run as a user runs it."""
    base = tmp_path_factory.mktemp("demo")
    out, data = base / "out", base / "data"
    done = subprocess.run(cli("demo", "--output-dir", str(out), "--data-dir", str(data), *QUICK), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, data, done.stdout


def unit(path):
    return (image_to_tensor(load_image(path)).unsqueeze(0) + 1) / 2


def test_demo_writes_report_png_html_and_metrics(demo):
    out, data, stdout = demo
    result = json.loads((out / "metrics.json").read_text())
    assert result["n_images"] == 3 and result["training"]["steps"] == 6
    for key in ("psnr", "ssim"):
        assert set(result[key]) == {"identity", "gatys", "cyclegan"}
        assert all(isinstance(v, float) for v in result[key].values())
    assert result["cyclegan_beats_both"] == (result["psnr"]["cyclegan"] > max(result["psnr"]["identity"],
                                                                                result["psnr"]["gatys"]))
    # Identity's PSNR is that of the held-out photos against their true paintings.
    photos = sorted((data / "testA").glob("*.png"))
    expected = sum(metrics.psnr(unit(p), unit(data / "truth" / "AtoB" / p.name)) for p in photos) / len(photos)
    assert result["psnr"]["identity"] == pytest.approx(expected, abs=1e-3)
    # Random VGG weights are a reduced setting, and said so.
    assert result["vgg_weights"] == "random" and any("random VGG19" in r for r in result["reduced"])
    # The evaluation of every held-out image, both directions.
    assert result["held_out"]["AtoB"]["n"] == 3 and result["held_out"]["BtoA"]["n"] == 3
    assert result["held_out"]["AtoB"]["psnr"] == pytest.approx(result["psnr"]["cyclegan"], abs=1e-9)  # one score
    # CUT trained on the same config and steps, evaluated A→B only, beside CycleGAN on every photo.
    cut = result["cut"]
    assert cut["steps"] == 6 and cut["nce_layers"] == [0, 4, 8, 12]  # the demo's 1-block generator here
    assert cut["held_out"]["AtoB"]["n"] == 3 and cut["held_out"]["BtoA"] is None
    assert result["cyclegan_vs_cut"]["psnr"] == {"cyclegan": result["held_out"]["AtoB"]["psnr"],
                                                 "cut": cut["held_out"]["AtoB"]["psnr"]}
    assert sorted(p.name for p in (out / "run_cut").glob("*.safetensors")) == ["G_A.safetensors"]
    # pix2pix trained on the same photos paired with their true paintings, same config and steps.
    pix2pix = result["pix2pix"]
    assert pix2pix["steps"] == 6 and pix2pix["gan_mode"] == "vanilla"
    assert pix2pix["held_out"]["AtoB"]["n"] == 3 and pix2pix["held_out"]["BtoA"] is None
    assert result["unpaired_vs_paired"]["psnr"] == {"cyclegan": result["held_out"]["AtoB"]["psnr"],
                                                    "cut": cut["held_out"]["AtoB"]["psnr"],
                                                    "pix2pix": pix2pix["held_out"]["AtoB"]["psnr"]}
    assert sorted(p.name for p in (out / "run_pix2pix").glob("*.safetensors")) == ["G.safetensors"]
    photos = sorted((data / "trainA").glob("*.png"))
    assert sorted(p.name for p in (out / "pairs" / "trainB").glob("*.png")) == [p.name for p in photos]
    with Image.open(photos[0]) as photo, Image.open(out / "pairs" / "trainB" / photos[0].name) as painting:
        assert render_painting(photo.convert("RGB")).tobytes() == painting.tobytes()  # each photo's own painting
    assert sorted(p.name for p in (out / "pairs" / "testB").glob("*.png")) == sorted(
        p.name for p in (data / "truth" / "AtoB").glob("*.png"))
    # report.png: a title row, then one row per photo of 4 enlarged cells.
    with Image.open(out / "report.png") as img:
        assert img.size == (4 * 64, 18 + 3 * 64)
    page = (out / "report.html").read_text()
    assert 'src="report.png"' in page and "random VGG19" in page
    for link in ("eval/index.html", "eval_cut/index.html", "eval_pix2pix/index.html", "compare/index.html"):
        assert f'href="{link}"' in page and (out / link).is_file()
    assert "held-out PSNR and SSIM against the true paintings (3 photos)" in stdout
    assert "A→B on all 3 held-out photos, 6 training steps each:" in stdout and "CycleGAN and CUT" in page
    assert "\n  pix2pix " in stdout and "pix2pix on pairs" in page
    assert (out / "run" / "checkpoints" / "best" / "G_A.safetensors").is_file()


def test_demo_does_not_write_over_an_earlier_one(demo, capsys):
    out, data, _ = demo
    before = (out / "metrics.json").read_text()
    assert main(["demo", "--output-dir", str(out), "--data-dir", str(data), *QUICK]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--output-dir {out} already holds a demo" in err
    assert (out / "metrics.json").read_text() == before


def test_ctrl_c_during_training_stops_the_demo_in_one_line(tmp_path):
    import signal
    import time

    quick = [a if a != "train.max_steps=6" else "train.max_steps=100000" for a in QUICK]
    command = cli("demo", "--output-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), *quick)
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    log = tmp_path / "out" / "run" / "log.jsonl"
    while not (log.is_file() and log.read_text().strip()) and time.time() < deadline:
        time.sleep(0.2)  # wait until the real run has logged its first steps
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("cyclestyle:")]
    assert len(lines) == 1 and "demo stopped" in lines[0] and "--overwrite" in lines[0]
    assert (tmp_path / "out" / "run" / "checkpoints" / "latest").is_file()  # the step was saved


def test_overwrite_removes_only_what_a_demo_wrote(tmp_path, capsys):
    """Issue 12: ``--output-dir . --overwrite`` in a project with a metrics.json deleted the project."""
    from cyclestyle.demo.run import MARKER, WRITTEN, _claim

    project = tmp_path / "project"
    (project / "run").mkdir(parents=True)
    (project / "metrics.json").write_text("{}")
    (project / "train.py").write_text("precious")
    assert main(["demo", "--output-dir", str(project), "--overwrite", *QUICK]) == 1
    assert "a demo did not make" in capsys.readouterr().err
    assert sorted(p.name for p in project.iterdir()) == ["metrics.json", "run", "train.py"]

    earlier = tmp_path / "demo"
    earlier.mkdir()
    (earlier / MARKER).write_text("")
    for name in WRITTEN:
        (earlier / name).mkdir() if "." not in name else (earlier / name).write_text("old")
    (earlier / "notes.txt").write_text("mine")
    _claim(earlier, overwrite=True)
    assert sorted(p.name for p in earlier.iterdir()) == sorted([MARKER, "notes.txt"])
