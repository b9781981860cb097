"""Sharing on the model hub: the folder ``push`` uploads, built from a real tiny run, loads back with
identical outputs, its model card holds the run's numbers, and ``hf://`` ids resolve offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants

from cyclestyle.cli import main
from cyclestyle.config import dump_config
from cyclestyle.training.configure import load_config
from cyclestyle.export.hub import build_hub_folder
from cyclestyle.inference.hub import HubError, hub_files
from cyclestyle.inference.run import open_run
from cyclestyle.training.loop import train

from .conftest import REPO, cli

pytestmark = pytest.mark.slow  # trains a run to push and load back: not in `test.sh --quick`

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def trained(toy_root, tmp_path_factory) -> Path:
    """A tiny run that evaluated itself twice (cycle L1; no Inception weights here, so no FID)."""
    out = tmp_path_factory.mktemp("hubrun") / "run"
    cfg = load_config(REPO / "configs" / "tiny.yaml",
                      [f"data.root={toy_root}", f"output_dir={out}", "model.n_blocks=1", "train.max_steps=8",
                       "train.checkpoint_every=4", "eval.every=4", "eval.num_images=2", "log.with=none"])
    return train(cfg)


def eval_at(run: Path, step: int) -> dict:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in records if "eval" in r and r["step"] == step][-1]


def assert_card_shows(card: str, record: dict) -> None:
    assert {"AtoB/cycle_l1", "BtoA/cycle_l1"} <= record["eval"].keys()
    for key, value in record["eval"].items():
        direction, metric = key.split("/")
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        assert f"| {direction} | {metric} | {shown} |" in card


def test_the_hub_folder_loads_back_identically_and_its_card_holds_the_runs_numbers(trained, tmp_path, capsys):
    folder = tmp_path / "repo"
    assert main(["push", "--weights", str(trained), "--repo-id", "me/tiny-toy", "--folder", str(folder),
                 "--folder-only"]) == 0
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "README.md", "config.json", "config.yaml", "AtoB/model.safetensors", "AtoB/config.json",
        "BtoA/model.safetensors", "BtoA/config.json", "app.py", "requirements.txt"}  # the last two: a Space

    original, shared = open_run(trained), open_run(folder)
    assert shared.step == original.step == 8 and shared.config == original.config
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for direction in ("AtoB", "BtoA"):
        assert torch.equal(shared.translate(x, direction, device="cpu"), original.translate(x, direction, device="cpu"))

    card = (folder / "README.md").read_text()
    assert "These weights' evaluation, at step 8" in card
    assert_card_shows(card, eval_at(trained, 8))
    assert "FID protocol: `clean`" in card and "first 2 held-out images" in card
    assert "license: mit" in card and "library_name: cyclestyle" in card and "## Intended use and limitations" in card
    assert "- steps: 8" in card and dump_config(original.config) in card
    config = json.loads((folder / "config.json").read_text())
    assert config["directions"] == {"AtoB": "AtoB/model.safetensors", "BtoA": "BtoA/model.safetensors"}
    assert config["model"]["n_blocks"] == 1 and config["step"] == 8


def test_a_checkpoints_card_shows_its_own_evaluation(trained, tmp_path):
    """Weights of step 4 are described by the evaluation of step 4, not the run's last (step 8)."""
    folder = build_hub_folder(open_run(trained / "checkpoints" / "step-4"), tmp_path / "repo", "me/x")
    card = (folder / "README.md").read_text()
    assert "These weights' evaluation, at step 4" in card and "- steps: 4" in card
    assert_card_shows(card, eval_at(trained, 4))
    assert eval_at(trained, 4)["eval"] != eval_at(trained, 8)["eval"]


def test_a_lone_generator_file_is_shared_as_one_direction(tmp_path):
    from cyclestyle.interop.official import import_official

    weights = tmp_path / "style.safetensors"
    import_official(Path(__file__).parent / "fixtures" / "official" / "resnet_6blocks_ngf8_net_G_A.pth", weights)
    folder = build_hub_folder(open_run(weights), tmp_path / "repo", "me/style")
    assert hub_files(folder) == {"AtoB": folder / "AtoB" / "model.safetensors"}
    card = (folder / "README.md").read_text()
    assert "BtoA" not in card.split("## Training")[0].split("## Files")[1] and "Steps: not recorded" in card
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert torch.equal(open_run(folder).translate(x, device="cpu"), open_run(weights).translate(x, device="cpu"))


def test_a_run_without_evaluations_says_so(tiny_config, tmp_path):
    run = train(tiny_config("train.max_steps=2", "model.n_blocks=1", "log.with=none"))
    card = (build_hub_folder(open_run(run), tmp_path / "repo", "me/x") / "README.md").read_text()
    assert "None was recorded during training" in card and "| AtoB |" not in card
    with pytest.raises(HubError, match="not empty"):
        build_hub_folder(open_run(run), tmp_path / "repo", "me/x")


def cached_repo(cache: Path, repo_id: str, folder: Path) -> None:
    """``folder`` laid out as the hub cache holds a downloaded repository."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / REVISION)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)


def test_hf_ids_resolve_from_the_hub_cache_offline(trained, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "hub"
    build_hub_folder(open_run(trained), tmp_path / "repo", "me/tiny-toy")
    cached_repo(cache, "me/tiny-toy", tmp_path / "repo")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    run = open_run("hf://me/tiny-toy")
    assert run.path == cache / "models--me--tiny-toy" / "snapshots" / REVISION
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert torch.equal(run.translate(x, "BtoA", device="cpu"), open_run(trained).translate(x, "BtoA", device="cpu"))

    assert main(["export", "--weights", "hf://me/missing", "--format", "onnx", "--output", str(tmp_path / "m.onnx")
                 ]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hf://me/missing" in err and "offline" in err


def test_translate_takes_an_hf_id_from_the_environments_cache(trained, toy_root, tmp_path):
    """The command line, in its own process: HF_HUB_CACHE and HF_HUB_OFFLINE=1 as a user sets them."""
    import os
    import subprocess

    build_hub_folder(open_run(trained), tmp_path / "repo", "me/tiny-toy")
    cached_repo(tmp_path / "hub", "me/tiny-toy", tmp_path / "repo")
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cli("translate", "--weights", "hf://me/tiny-toy", "--direction", "AtoB", "--output",
                              str(tmp_path / "out"), str(toy_root / "testA")), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(p.name for p in (toy_root / "testA").iterdir())


def test_push_creates_the_repository_and_uploads_the_folder(trained, tmp_path, monkeypatch):
    """No hub here: HfApi's two calls are recorded, with what the folder held when it was uploaded."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs.get("private"), kwargs.get("repo_type")))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert main(["push", "--weights", str(trained), "--repo-id", "me/tiny-toy", "--private"]) == 0
    assert calls == [("create_repo", "me/tiny-toy", True, "model"),
                     ("upload_folder", "me/tiny-toy", ["AtoB", "BtoA", "README.md", "app.py", "config.json",
                                                      "config.yaml", "requirements.txt"])]
