"""Training samples on disk: samples/step-N.png and samples/index.html, newest first, pruned,
and consistent with the log after a resume."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from cyclestyle.training.loop import train
from cyclestyle.training.samples import INDEX_HTML, INDEX_JSON, SampleLog, read_entries, render_index, trim_samples
from cyclestyle.training.tracking import Panel


def listed_steps(folder: Path) -> list[int]:
    """The steps index.html shows, in its order."""
    return [int(s) for s in re.findall(r'<section id="step-(\d+)">', (folder / INDEX_HTML).read_text())]


def images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("step-*.png"))


def panels(step: int, caption: str = "real A | A→B") -> dict[str, Panel]:
    return {"images/A": Panel(Image.new("RGB", (8, 4), (step, 0, 0)), caption),
            "images/B": Panel(Image.new("RGB", (6, 4), (0, step, 0)), "real B | B→A")}


def test_each_sample_is_listed_newest_first_and_the_newest_are_kept(tmp_path):
    folder = tmp_path / "samples"
    log = SampleLog(folder, keep=3, title="run")
    for step in (10, 20, 30, 40, 50):
        log.add(step, panels(step), {"step": step, "G_A": 0.5 + step, "lr": 1e-4}, None)
    assert images(folder) == ["step-30.png", "step-40.png", "step-50.png"]
    assert [e["step"] for e in read_entries(folder)] == listed_steps(folder) == [50, 40, 30]
    stacked = Image.open(folder / "step-50.png")
    assert stacked.size == (8, 8)  # the A panel above the B panel
    assert stacked.getpixel((0, 0)) == (50, 0, 0) and stacked.getpixel((0, 5)) == (0, 50, 0)
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    page = (folder / INDEX_HTML).read_text()
    assert "<td>G_A</td><td>50.5</td>" in page and '<img src="step-50.png"' in page


def test_the_page_escapes_every_text():
    page = render_index([{"step": 3, "image": "step-3.png", "captions": ["<script>alert(1)</script>"],
                          "losses": {"step": 3, "a<b": 1.0}, "metrics": {"step": 2, "AtoB/psnr": 21.25}}], "r&d <1>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&lt;b" in page and "r&amp;d &lt;1&gt;" in page
    assert "held-out metrics (step 2)" in page and "21.25" in page


def test_trimming_drops_what_is_past_the_step_and_images_no_entry_lists(tmp_path):
    folder = tmp_path / "samples"
    log = SampleLog(folder, keep=10, title="run")
    for step in (2, 4, 6):
        log.add(step, panels(step), None, None)
    Image.new("RGB", (2, 2)).save(folder / "step-8.png")  # written, then killed before the index
    assert trim_samples(folder, 4, "run") == 2
    assert images(folder) == ["step-2.png", "step-4.png"] and listed_steps(folder) == [4, 2]
    assert [e["step"] for e in json.loads((folder / INDEX_JSON).read_text())] == [4, 2]


@pytest.mark.slow
def test_a_run_with_no_dashboard_leaves_its_samples_page(tiny_config):
    run = train(tiny_config("log.with=none", "train.max_steps=5", "train.log_every=1", "log.images_every=2",
                            "log.num_images=2", "eval.every=2", "eval.metric=cycle_l1", "eval.num_images=2"))
    folder = run / "samples"
    assert listed_steps(folder) == [5, 4, 2] and images(folder) == ["step-2.png", "step-4.png", "step-5.png"]
    # Per domain, num_images rows of real | translated | back | identity, 32 px each, A above B.
    assert Image.open(folder / "step-5.png").size == (4 * 32, 2 * 2 * 32)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    entry = read_entries(folder)[0]
    record = next(r for r in log if r["step"] == 5 and "eval" not in r)
    evaluation = next(r for r in log if r["step"] == 5 and "eval" in r)
    assert entry["losses"]["cycle_A"] == record["cycle_A"]
    assert entry["metrics"] == {"step": 5, **evaluation["eval"]}
    assert "AtoB/cycle_l1" in (folder / INDEX_HTML).read_text()


@pytest.mark.slow
def test_keep_samples_bounds_the_images_and_zero_writes_none(tiny_config, tmp_path):
    run = train(tiny_config("log.with=none", "train.max_steps=6", "log.images_every=1", "log.keep_samples=2"))
    assert images(run / "samples") == ["step-5.png", "step-6.png"] and listed_steps(run / "samples") == [6, 5]
    off = train(tiny_config("log.with=none", "train.max_steps=2", "log.images_every=1", "log.keep_samples=0",
                            f"output_dir={tmp_path / 'off'}"))
    assert not (off / "samples").exists()


@pytest.mark.slow
def test_a_resume_drops_the_samples_past_its_checkpoint(tiny_config, capsys):
    """Trained to 12 (checkpoints at 4, 8, 12), resumed from step 4: the samples of steps 5 to 12
    were of a history the resumed run leaves behind, as its log records were."""
    run = train(tiny_config("log.with=none", "log.images_every=2"))
    assert listed_steps(run / "samples") == [12, 10, 8, 6, 4, 2]
    capsys.readouterr()
    train(tiny_config("log.with=none", "log.images_every=2", "train.max_steps=6"),
          resume=str(run / "checkpoints" / "step-4"))
    assert "removed 4 sample images" in capsys.readouterr().out
    assert listed_steps(run / "samples") == [6, 4, 2] and images(run / "samples") == [
        "step-2.png", "step-4.png", "step-6.png"]
    logged = {json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()}
    assert max(logged) == 6  # the log tells the same history
