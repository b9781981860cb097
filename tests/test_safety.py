"""Nothing lost, and nothing stuck for good (issue 25, items 1 to 5): no command writes over its
own input; the demo rebuilds only its own dataset and checks everything before it deletes; a bad
download never enters the cache; the leftovers of killed processes are cleaned up, and a resumed
run's log reads as one run."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclestyle.cli import main
from cyclestyle.config import ModelConfig
from cyclestyle.models import generator_spec
from cyclestyle.models.weights import save_weights, weights_metadata

from .conftest import REPO  # noqa: F401
from .test_download import server  # noqa: F401 (the local HTTP server fixture)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread (conftest)

OFFICIAL = Path(__file__).parent / "fixtures" / "official"
OFFICIAL_PTH = OFFICIAL / "resnet_6blocks_ngf8_net_G_A.pth"


def one_error_line(capsys, *words: str) -> str:
    """The command's stderr: a single line (no traceback) holding every one of ``words``."""
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def tiny_run(folder: Path) -> Path:
    """A run folder with G_A and G_B of a tiny ResNet generator (ngf 8, one block)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = ModelConfig(ngf=8, n_blocks=1)
    spec = generator_spec(cfg)
    for seed, name in enumerate(("G_A", "G_B")):
        torch.manual_seed(seed)
        save_weights(folder / f"{name}.safetensors", spec.build().state_dict(),
                     weights_metadata(dataclasses.asdict(cfg), 5, spec))
    return folder


def photo(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


# --------------------------------------------------------------------------------------------
# 1. An output that is an input is refused, --overwrite or not


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_translate_refuses_to_write_over_its_own_input(tmp_path, capsys, overwrite):
    run = tiny_run(tmp_path / "run")
    same = tmp_path / "same"
    before = photo(same / "0.png").read_bytes()
    code = main(["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(same),
                 str(same / "0.png"), *overwrite])
    assert code == 1
    one_error_line(capsys, str(same / "0.png"), "input")
    assert (same / "0.png").read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_translate_refuses_an_output_that_is_its_input_by_a_link(tmp_path, capsys, link):
    run = tiny_run(tmp_path / "run")
    out = tmp_path / "out"
    before = photo(out / "0.png").read_bytes()
    (tmp_path / "in").mkdir()
    (os.symlink if link == "symlink" else os.link)(out / "0.png", tmp_path / "in" / "0.png")
    assert main(["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(out),
                 str(tmp_path / "in" / "0.png"), "--overwrite"]) == 1
    one_error_line(capsys, "0.png")
    assert (out / "0.png").read_bytes() == before and (tmp_path / "in" / "0.png").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["0.png"]  # nothing written either


def test_export_refuses_to_write_over_the_run_it_exports(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    for target in ("G_A.safetensors", "G_B.safetensors"):
        assert main(["export", "--weights", str(run), "--direction", "AtoB", "--format", "torchscript",
                     "--output", str(run / target), "--overwrite"]) == 1
        one_error_line(capsys, str(run / target))
    link = tmp_path / "link.pt"
    link.symlink_to(run / "G_A.safetensors")
    assert main(["export", "--weights", str(run / "G_A.safetensors"), "--direction", "AtoB", "--format",
                 "torchscript", "--output", str(link), "--overwrite"]) == 1
    one_error_line(capsys, str(link))
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_import_official_refuses_to_write_over_its_source(tmp_path, capsys):
    source = tmp_path / "G.pth"
    source.write_bytes(OFFICIAL_PTH.read_bytes())
    assert main(["import-official", str(source), "--output", str(source), "--overwrite"]) == 1
    one_error_line(capsys, str(source))
    (tmp_path / "hard.safetensors").hardlink_to(source)
    assert main(["import-official", str(source), "--output", str(tmp_path / "hard.safetensors"), "--overwrite"]) == 1
    one_error_line(capsys, "hard.safetensors")
    assert source.read_bytes() == OFFICIAL_PTH.read_bytes()


def test_refuse_output_over_input_is_one_line_naming_both(tmp_path):
    from cyclestyle.files import refuse_output_over_input

    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    refuse_output_over_input(tmp_path / "b.png", [a])  # another file, not there yet: fine
    (tmp_path / "b.png").write_bytes(b"x")
    refuse_output_over_input(tmp_path / "b.png", [a])  # another file with the same bytes: fine
    with pytest.raises(ValueError, match="a.png") as caught:
        refuse_output_over_input(tmp_path / "sub" / ".." / "a.png", [a], what="--output")
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# 2 and 3. The demo rebuilds only its own dataset, and checks everything before deleting anything

DEMO_QUICK = ["--image-size", "16", "--n-train", "3", "--n-test", "2", "--gatys-steps", "1", "--vgg-weights",
              "random", "--set", "model.ngf=8", "--set", "model.ndf=8", "--set", "model.n_blocks=1",
              "--set", "data.load_size=16", "--set", "data.crop_size=16", "--set", "train.max_steps=2",
              "--set", "train.checkpoint_every=2", "--set", "train.log_every=1", "--set", "eval.every=0"]


def users_dataset(root: Path) -> dict[str, bytes]:
    """A user's dataset in the demo's layout, with a manifest.json of its own."""
    for split in ("trainA", "trainB", "testA", "testB"):
        photo(root / split / f"{split}_holiday.png")
    (root / "manifest.json").write_text(json.dumps({"images": ["trainA/trainA_holiday.png"]}))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_demo_never_rebuilds_a_folder_that_only_looks_like_its_dataset(tmp_path, capsys):
    data = tmp_path / "mine"
    before = users_dataset(data)
    assert main(["demo", "--output-dir", str(tmp_path / "out"), "--data-dir", str(data), *DEMO_QUICK]) == 1
    one_error_line(capsys, str(data))
    assert files_of(data) == before
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_demo_dataset_rebuilds_its_own_folders_only(tmp_path):
    from cyclestyle.data import DataError
    from cyclestyle.demo.data import MANIFEST, build_demo_dataset, ensure_demo_dataset

    root = build_demo_dataset(tmp_path / "d", size=16, n_train=3, n_test=2)
    # A dataset that today's code built carries its manifest; it is still the demo's own.
    for marker in root.glob(".cyclestyle-*"):
        marker.unlink()
    ensure_demo_dataset(root, size=16, n_train=2, n_test=2)
    assert len(list((root / "trainA").glob("*.png"))) == 2
    # A file of the user's among the demo's: nothing is deleted, and the line says what to do.
    photo(root / "trainB" / "my_painting.png")
    before = files_of(root)
    with pytest.raises(DataError, match="my_painting.png"):
        ensure_demo_dataset(root, size=16, n_train=3, n_test=2)
    assert files_of(root) == before
    # A manifest.json that is not the demo's makes no folder the demo's.
    other = tmp_path / "other"
    kept = users_dataset(other)
    with pytest.raises(DataError, match="manifest"):
        build_demo_dataset(other, size=16, n_train=3, n_test=2)
    assert files_of(other) == kept
    # A build killed half-way is the demo's own still: the next one goes on over it.
    half = tmp_path / "half"
    build_demo_dataset(half, size=16, n_train=3, n_test=2)
    (half / MANIFEST).unlink()
    build_demo_dataset(half, size=16, n_train=2, n_test=1)
    assert len(list((half / "testA").glob("*.png"))) == 1


def previous_demo(out: Path) -> dict[str, bytes]:
    from cyclestyle.demo.run import MARKER

    (out / "run").mkdir(parents=True)
    (out / MARKER).write_text("")
    (out / "run" / "G_A.safetensors").write_bytes(b"weights of an hour's training")
    (out / "metrics.json").write_text('{"psnr": 1}')
    return files_of(out)


@pytest.mark.parametrize("problem", ["users_data", "data_is_a_file", "bad_override", "bad_size"])
def test_demo_overwrite_checks_every_input_before_it_deletes(tmp_path, capsys, problem):
    out = tmp_path / "out"
    before = previous_demo(out)
    data, extra = tmp_path / "data", []
    if problem == "users_data":
        users_dataset(data)
    elif problem == "data_is_a_file":
        data.write_text("a file")
    elif problem == "bad_override":
        extra = ["--set", "train.no_such_key=1"]
    else:
        extra = ["--image-size", "4"]
    code = main(["demo", "--output-dir", str(out), "--data-dir", str(data), "--overwrite", *DEMO_QUICK, *extra])
    assert code in (1, 2)
    one_error_line(capsys)
    assert files_of(out) == before


def test_demo_refuses_a_data_dir_inside_what_overwrite_removes(tmp_path, capsys):
    out = tmp_path / "out"
    before = previous_demo(out)
    assert main(["demo", "--output-dir", str(out), "--data-dir", str(out / "run" / "data"), "--overwrite",
                 *DEMO_QUICK]) == 1
    one_error_line(capsys, "--data-dir")
    assert files_of(out) == before


# --------------------------------------------------------------------------------------------
# 4. A bad download never enters the cache


HTML = b"<!DOCTYPE html><html><body>Please log in to the captive portal</body></html>\n" * 20


def test_pretrained_never_caches_a_bad_download(server, tmp_path, monkeypatch, capsys):  # noqa: F811
    url, served = server
    served.files["/horse2zebra.pth"] = HTML
    monkeypatch.setenv("CYCLESTYLE_PRETRAINED_URL", url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    downloads = tmp_path / "cache" / "cyclestyle" / "downloads"
    args = ["pretrained", "horse2zebra", "--output", str(tmp_path / "models"), "--quiet"]
    assert main(args) == 1
    err = one_error_line(capsys, f"{url}/horse2zebra.pth", "HTML")
    assert "removed" in err
    assert not downloads.exists() or list(downloads.iterdir()) == []
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []
    served.files["/horse2zebra.pth"] = OFFICIAL_PTH.read_bytes()  # the server is right again
    assert main(args) == 0
    assert (tmp_path / "models" / "horse2zebra.safetensors").is_file()


def test_pretrained_replaces_a_bad_file_an_older_version_cached(server, tmp_path, monkeypatch, capsys):  # noqa: F811
    url, served = server
    served.files["/horse2zebra.pth"] = OFFICIAL_PTH.read_bytes()
    monkeypatch.setenv("CYCLESTYLE_PRETRAINED_URL", url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "cyclestyle" / "downloads" / "horse2zebra.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(HTML)  # what an older version kept
    assert main(["pretrained", "horse2zebra", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    assert str(cached) in capsys.readouterr().err
    assert cached.read_bytes() == OFFICIAL_PTH.read_bytes()
    assert (tmp_path / "models" / "horse2zebra.safetensors").is_file()


def test_a_download_of_a_known_size_or_hash_is_checked(server, tmp_path):  # noqa: F811
    import hashlib

    from cyclestyle.interop.download import DownloadError, fetch

    url, served = server
    served.files["/g.pth"] = OFFICIAL_PTH.read_bytes()
    dest = tmp_path / "g.pth"
    with pytest.raises(DownloadError, match="sha256"):
        fetch(f"{url}/g.pth", dest, progress=False, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "g.pth.part").exists()
    digest = hashlib.sha256(OFFICIAL_PTH.read_bytes()).hexdigest()
    assert fetch(f"{url}/g.pth", dest, progress=False, sha256=digest).read_bytes() == OFFICIAL_PTH.read_bytes()


# --------------------------------------------------------------------------------------------
# 5. Leftovers of killed processes, and a resumed run's log


def test_a_run_removes_the_checkpoint_temporaries_of_dead_processes(tiny_config):
    from cyclestyle.training.loop import train

    cfg = tiny_config("train.max_steps=4")
    run = train(cfg)
    checkpoints = run / "checkpoints"
    host, dead = socket.gethostname(), dead_pid()
    leftovers = [checkpoints / f".tmp-step-3-{host}-{dead}", checkpoints / f".tmp-best-{host}-{dead}",
                 checkpoints / f".old-best-{host}-{dead}"]
    kept = [checkpoints / f".tmp-step-3-{host}-{os.getpid()}",  # alive: this process
            checkpoints / f".tmp-step-3-another-host-{dead}",  # another machine's: its pid says nothing here
            checkpoints / "notes"]  # not a temporary at all
    for folder in leftovers + kept:
        folder.mkdir()
        (folder / "G_A.safetensors").write_bytes(b"half")
    (checkpoints / f".tmp-latest-{host}-{dead}").write_text("step-3")
    train(tiny_config("train.max_steps=8"), resume="latest")
    assert all(not p.exists() for p in [*leftovers, checkpoints / f".tmp-latest-{host}-{dead}"])
    assert all(p.is_dir() for p in kept)


def test_translate_removes_the_parts_that_dead_translations_left(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    photo(tmp_path / "in" / "0.png")
    out = tmp_path / "out"
    out.mkdir()
    dead = out / f".0.png.{dead_pid()}.part"
    alive = out / f".0.png.{os.getppid()}.part"  # a running process (not this one, whose own part is its own)
    other = out / ".notes.txt.12.part"  # not an output of this command
    for part in (dead, alive, other):
        part.write_bytes(b"half an image")
    assert main(["translate", "--weights", str(run), "--direction", "AtoB", "--output", str(out),
                 str(tmp_path / "in")]) == 0
    assert not dead.exists() and alive.exists() and other.exists()
    assert (out / "0.png").is_file()


def steps_of(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if "eval" not in json.loads(line)]


def test_a_resumed_run_logs_each_step_once(tiny_config):
    from cyclestyle.training.loop import train

    run = train(tiny_config())  # log records at steps 2, 4, ..., 12; checkpoints at 4, 8, 12
    log = run / "log.jsonl"
    first = log.read_text().splitlines()
    assert steps_of(log) == [2, 4, 6, 8, 10, 12]
    with log.open("a") as f:
        f.write('{"step": 14, "lo')  # a record torn by a kill
    train(tiny_config(), resume=str(run / "checkpoints" / "step-8"))
    assert steps_of(log) == [2, 4, 6, 8, 10, 12]
    assert log.read_text().splitlines()[:4] == first[:4]  # the records of steps the checkpoint holds, as they were
    dropped = (run / "log.dropped.jsonl").read_text().splitlines()
    assert dropped == [*first[4:], '{"step": 14, "lo']  # and what was dropped is kept aside


def test_a_new_run_in_a_folder_with_a_log_but_no_checkpoint_starts_its_log_afresh(tiny_config):
    from cyclestyle.training.loop import train

    cfg = tiny_config("train.max_steps=2", "train.checkpoint_every=100")
    Path(cfg.output_dir).mkdir(parents=True)
    (Path(cfg.output_dir) / "log.jsonl").write_text('{"step": 2, "loss": 1.0}\n{"step": 4, "loss": 1.0}\n')
    run = train(cfg)
    assert steps_of(run / "log.jsonl") == [2]
    assert len((run / "log.dropped.jsonl").read_text().splitlines()) == 2


def test_a_best_killed_between_its_two_renames_is_put_back(tmp_path):
    from cyclestyle.run_folder import BEST, read_best
    from cyclestyle.training.checkpoint import remove_dead_temporaries, write_best

    checkpoints = tmp_path / "checkpoints"
    write_best(checkpoints, {"G_A": {"w": torch.ones(1)}}, {"value": 1.0})
    host, dead = socket.gethostname(), dead_pid()
    (checkpoints / BEST).rename(checkpoints / f".old-best-{host}-{dead}")  # the previous best, moved aside
    (checkpoints / f".tmp-best-{host}-{dead}").mkdir()  # the new one, not yet renamed into place
    removed = remove_dead_temporaries(checkpoints)
    assert [p.name for p in removed] == [f".tmp-best-{host}-{dead}"]
    assert read_best(checkpoints) == {"value": 1.0} and sorted(p.name for p in checkpoints.iterdir()) == [BEST]
