"""Evaluation during training: held-out metrics every eval.every steps, and the best generators kept."""

import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from cyclestyle.config import ConfigError
from cyclestyle.data import FolderSource
from cyclestyle.evaluation.evaluate import evaluate_translators, flat_metrics, is_better, score
from cyclestyle.inference.run import open_run
from cyclestyle.run_folder import read_best
from cyclestyle.training.loop import train

pytestmark = pytest.mark.slow  # trainings that evaluate themselves: not in `test.sh --quick`


@pytest.fixture(scope="module")
def truth_dir(toy_root, tmp_path_factory) -> Path:
    """"True" translations of testA: the photos inverted, so every generator has a PSNR to earn."""
    folder = tmp_path_factory.mktemp("truth")
    for path in sorted((toy_root / "testA").iterdir()):
        with Image.open(path) as img:
            ImageOps.invert(img.convert("RGB")).save(folder / f"{path.stem}.png")
    return folder


def eval_records(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in lines if "eval" in r]


def test_evaluations_are_logged_and_the_best_generators_kept(tiny_config, truth_dir, toy_root, capsys):
    cfg = tiny_config("eval.every=4", "eval.num_images=3", "eval.metric=AtoB/psnr",
                      f"eval.paired_truth={truth_dir}")
    run = train(cfg)
    records = eval_records(run)
    assert [r["step"] for r in records] == [4, 8, 12]
    for r in records:  # both directions, cycle error always, PSNR/SSIM where there is truth
        assert r["eval"]["AtoB/n"] == 3 and r["eval"]["BtoA/n"] == 3
        assert {"AtoB/cycle_l1", "BtoA/cycle_l1", "AtoB/psnr", "AtoB/ssim"} <= r["eval"].keys()
        assert "BtoA/psnr" not in r["eval"]

    best = read_best(run / "checkpoints")
    psnrs = {r["step"]: r["eval"]["AtoB/psnr"] for r in records}
    assert best["metric"] == "AtoB/psnr" and best["step"] == max(psnrs, key=psnrs.get)
    assert best["value"] == pytest.approx(max(psnrs.values()), abs=1e-9)
    assert best["evaluation"]["step"] == best["step"]

    # The kept generators are the ones that scored it: evaluating them again gives the same value,
    # and the run's final generators give the last evaluation's.
    test_a, test_b = FolderSource(toy_root / "testA"), FolderSource(toy_root / "testB")

    def psnr_of(weights: Path) -> float:
        run = open_run(weights)
        g_a, g_b = run.generator("AtoB", "cpu"), run.generator("BtoA", "cpu")
        result = evaluate_translators(g_a, g_b, test_a, test_b, size=32, truth_dir=truth_dir, limit=3,
                                      progress=False)
        return result.directions["AtoB"].values["psnr"]

    assert psnr_of(run / "checkpoints" / "best") == pytest.approx(best["value"], abs=1e-4)
    assert psnr_of(run) == pytest.approx(psnrs[12], abs=1e-4)
    out = capsys.readouterr().out
    assert f"last (step 12) {psnrs[12]:.4g}" in out and f"best (step {best['step']})" in out


def test_fid_without_inception_weights_says_so_and_keeps_no_best(tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-weights"))
    run = train(tiny_config("train.max_steps=4", "eval.every=2", "eval.metric=fid"))
    err = capsys.readouterr().err
    assert "eval.metric fid cannot be computed" in err and "weights-inception" in err
    assert [r["step"] for r in eval_records(run)] == [2, 4]
    assert "AtoB/cycle_l1" in eval_records(run)[0]["eval"]
    assert not (run / "checkpoints" / "best").exists()


def test_a_resumed_run_keeps_the_best_of_its_first_part(tiny_config, truth_dir):
    overrides = ("eval.every=4", "eval.num_images=2", "eval.metric=cycle_l1")
    first = train(tiny_config("train.max_steps=8", *overrides))
    best_before = read_best(first / "checkpoints")
    assert best_before["step"] in (4, 8)
    # A later part of the same run is only kept if it beats that.
    train(tiny_config("train.max_steps=12", *overrides), resume="latest")
    best_after = read_best(first / "checkpoints")
    values = {r["step"]: r["eval"]["AtoB/cycle_l1"] + r["eval"]["BtoA/cycle_l1"] for r in eval_records(first)}
    assert sorted(values) == [4, 8, 12]
    assert best_after["step"] == min(values, key=values.get)


def test_a_resumed_run_keeps_no_best_of_another_held_out_set_or_an_older_version(tiny_config, capsys):
    """A best of 2 held-out images is no measure for evaluations of 3; nor is one that records no
    setting (an older version's), which could be either. Each is replaced by the next evaluation."""
    evaluated = ("eval.every=2", "eval.metric=cycle_l1")
    run = train(tiny_config("train.max_steps=2", *evaluated, "eval.num_images=2"))
    path = run / "checkpoints" / "best" / "metrics.json"

    def unbeatable(drop_setting: bool = False) -> None:
        best = json.loads(path.read_text())
        best["value"] = 0.0
        if drop_setting:
            best.pop("setting", None)
        path.write_text(json.dumps(best))

    unbeatable()
    capsys.readouterr()
    train(tiny_config("train.max_steps=4", *evaluated, "eval.num_images=3"), resume="latest")
    best = read_best(run / "checkpoints")
    assert best["step"] == 4 and best["value"] > 0 and best["evaluation"]["AtoB"]["n"] == 3
    out = capsys.readouterr().out
    assert f"{path} is not comparable" in out and "eval.num_images=2 (now 3)" in out

    unbeatable(drop_setting=True)
    train(tiny_config("train.max_steps=6", *evaluated, "eval.num_images=3"), resume="latest")
    best = read_best(run / "checkpoints")
    assert best["step"] == 6 and best["value"] > 0 and best["setting"]["eval.num_images"] == 3
    assert "records no evaluation setting: written by an older version" in capsys.readouterr().out


def test_score_and_direction_of_better():
    from cyclestyle.evaluation.evaluate import DirectionMetrics, Evaluation

    result = Evaluation(directions={"AtoB": DirectionMetrics(n=2, values={"psnr": 20.0, "fid": 5.0}),
                                    "BtoA": DirectionMetrics(n=2, values={"psnr": 30.0, "fid": None})})
    assert score(result, "psnr") == 25.0 and score(result, "BtoA/psnr") == 30.0
    assert score(result, "fid") == 5.0 and score(result, "BtoA/fid") is None
    assert flat_metrics(result)["BtoA/psnr"] == 30.0 and "BtoA/fid" not in flat_metrics(result)
    assert is_better(21.0, 20.0, "psnr") and not is_better(21.0, 20.0, "fid")
    assert is_better(1.0, None, "kid") and not is_better(None, 1.0, "kid")


@pytest.mark.parametrize("overrides, message", [
    (["eval.metric=psnr"], "eval.metric psnr needs eval.paired_truth"),
    (["eval.metric=sharpness"], "eval.metric must be one of"),
    (["eval.metric=AtoC/fid"], "eval.metric must be one of"),
    (["eval.every=-1"], "eval.every and eval.num_images must not be negative"),
    (["eval.paired_truth=/nonexistent/truth"], "eval.paired_truth /nonexistent/truth does not exist"),
])
def test_bad_eval_settings_are_named(tiny_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(*overrides)


def test_eval_without_a_test_split_fails_before_training(tiny_config, toy_root, tmp_path):
    root = tmp_path / "train-only"
    for split in ("trainA", "trainB"):
        (root / split).mkdir(parents=True)
        for path in sorted((toy_root / split).iterdir()):
            (root / split / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ConfigError, match="eval.every=2 needs a held-out split 'test'"):
        train(tiny_config(f"data.root={root}", "eval.every=2"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_full_disk_while_keeping_the_best_costs_that_best_only(tiny_config, monkeypatch, capsys):
    import errno
    import os

    from cyclestyle.training import checkpoint as ckpt
    from cyclestyle.training import best as best_module

    real_save = ckpt.save_weights
    attempts = {"n": 0}

    def disk_full_after_the_first_best(path, state_dict, metadata=None):
        if path.parent.name.startswith(".tmp-best"):
            attempts["n"] += 1
            if attempts["n"] > 2:  # the first best's two generators are written, later ones fail
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(path, state_dict, metadata)

    monkeypatch.setattr(ckpt, "save_weights", disk_full_after_the_first_best)
    monkeypatch.setattr(best_module, "is_better", lambda value, best, metric: True)  # every one tries
    run = train(tiny_config("train.max_steps=6", "eval.every=2", "eval.metric=cycle_l1"))
    assert (run / "G_A.safetensors").is_file()  # the run went on to the end
    assert read_best(run / "checkpoints")["step"] == 2
    assert sorted(p.name for p in (run / "checkpoints" / "best").iterdir()) == [
        "G_A.safetensors", "G_B.safetensors", "metrics.json"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    err = capsys.readouterr().err
    assert "No space left on device; the previous best is kept" in err and "at step 4" in err
