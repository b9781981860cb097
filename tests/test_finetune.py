"""Fine-tuning (``train --init-from``, ``train.init_from``): a new run whose networks start from a
run folder, a lone generator file, an imported official generator or a pretrained model."""

import json
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.config import ConfigError
from cyclestyle.interop.download import HOST_VARIABLE
from cyclestyle.interop.official import convert
from cyclestyle.models.weights import read_state_dict
from cyclestyle.training.configure import load_config
from cyclestyle.training.launch import make_accelerator
from cyclestyle.training.loop import train
from cyclestyle.training.methods.cyclegan import CycleGAN
from cyclestyle.training.start import start_run

from .conftest import REPO, TINY_CUT
from .test_download import server  # noqa: F401 (the local HTTP server fixture)

pytestmark = pytest.mark.slow  # trainings

OFFICIAL = Path(__file__).parent / "fixtures" / "official" / "resnet_6blocks_ngf8_net_G_A.pth"
CUT_REFERENCE = Path(__file__).parent / "fixtures" / "reference-cut" / "cut_resnet_6blocks_ngf8_net_G.pth"
TINY = REPO / "configs" / "tiny.yaml"
NETWORKS = ("G_A", "G_B", "D_A", "D_B")


def overrides(toy_root: Path, output: Path, *extra: str) -> list[str]:
    return [f"data.root={toy_root}", f"output_dir={output}", "model.n_blocks=2", "train.max_steps=2",
            "train.checkpoint_every=2", "train.log_every=1", "log.with=none", "train.mixed_precision=no", *extra]


@pytest.fixture(scope="module")
def source(toy_root, tmp_path_factory) -> Path:
    """A tiny CycleGAN run of 4 steps: the run the tests fine-tune from."""
    out = tmp_path_factory.mktemp("source") / "run"
    return train(load_config(TINY, overrides(toy_root, out, "train.max_steps=4")))


def started(cfg):
    """The run as ``start_run`` opens it: networks built and loaded, before any step."""
    run = start_run(cfg, None, make_accelerator("no"), Path(cfg.output_dir))
    run.bar.close()
    return run


def weights(run, name: str) -> dict[str, torch.Tensor]:
    return run.method.plain(name).state_dict()


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_from_a_run_folder_every_network_with_fresh_optimisers_and_schedule(source, toy_root, tmp_path, capsys):
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "ft", f"train.init_from={source}")))
    checkpoint = source / "checkpoints" / "step-4"
    for name in NETWORKS:
        assert_same(weights(run, name), load_file(checkpoint / f"{name}.safetensors"))
    assert run.progress.step == 0 and run.lr(0) == run.base_lr  # the schedule starts afresh
    assert all(not u.optimizer.state for u in run.method.updates.values())  # so do Adam's moments
    assert run.wandb_run_id is None  # and the dashboard run
    assert f"init: G_A (A→B), G_B (B→A), D_A, D_B from {checkpoint}; fresh: none" in capsys.readouterr().out


def test_the_first_step_starts_from_the_source_generators(source, toy_root, tmp_path, monkeypatch, capsys):
    """End to end through the command: what the first step sees is the source's last weights."""
    seen = {}
    step = CycleGAN.step

    def spy(self, batch, n):
        if n == 1:
            seen.update({name: {k: v.clone() for k, v in self.plain(name).state_dict().items()} for name in NETWORKS})
        return step(self, batch, n)

    monkeypatch.setattr(CycleGAN, "step", spy)
    out = tmp_path / "ft"
    assert main(["train", "--config", str(TINY), *sum((["--set", o] for o in overrides(toy_root, out)), []),
                 "--init-from", str(source)]) == 0
    for name in NETWORKS:
        assert_same(seen[name], load_file(source / "checkpoints" / "step-4" / f"{name}.safetensors"))
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-2"]
    assert load_config(out / "config.yaml", check_paths=False).train.init_from == str(source)
    # The trained weights moved away from the source's: it was trained, not copied.
    assert not torch.equal(load_file(out / "G_A.safetensors")["stem.1.weight"],
                           load_file(source / "G_A.safetensors")["stem.1.weight"])
    capsys.readouterr()

    # --resume of that run with --init-from is refused in one line; the config key resumes it.
    args = ["train", "--config", str(out / "config.yaml"), "--set", "train.max_steps=3"]
    assert main([*args, "--init-from", str(source), "--resume", "latest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--init-from" in err and "--resume latest" in err
    assert main([*args, "--resume", "latest"]) == 0
    captured = capsys.readouterr()
    assert "init: " not in captured.out and f"train.init_from {source} started this run" in captured.out
    assert "resumed from" in captured.out and (out / "checkpoints" / "step-3").is_dir()


def test_a_lone_generator_file_goes_to_its_direction(source, toy_root, tmp_path, capsys):
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "b", f"train.init_from={source / 'G_B.safetensors'}")))
    assert_same(weights(run, "G_B"), load_file(source / "G_B.safetensors"))
    assert not torch.equal(weights(run, "G_A")["stem.1.weight"], load_file(source / "G_A.safetensors")["stem.1.weight"])
    assert f"init: G_B (B→A) from {source / 'G_B.safetensors'}; fresh: G_A, D_A, D_B" in capsys.readouterr().out


def test_a_hub_folder_starts_both_generators_and_no_discriminator(source, toy_root, tmp_path, capsys):
    from cyclestyle.export.hub import build_hub_folder
    from cyclestyle.inference.run import open_run

    hub = build_hub_folder(open_run(source), tmp_path / "hub", "me/tiny")
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "h", f"train.init_from={hub}")))
    assert_same(weights(run, "G_A"), load_file(hub / "AtoB" / "model.safetensors"))
    assert_same(weights(run, "G_B"), load_file(source / "G_B.safetensors"))
    assert f"init: G_A (A→B), G_B (B→A) from {hub}; fresh: D_A, D_B" in capsys.readouterr().out


def test_a_cyclegan_run_starts_a_cut_run(source, toy_root, tmp_path, capsys):
    """G_A by direction, D_A by name (it judges domain B in both methods); CUT's heads are fresh."""
    cfg = load_config(TINY, overrides(toy_root, tmp_path / "cut", "method=cut", *TINY_CUT, f"train.init_from={source}"))
    run = started(cfg)
    checkpoint = source / "checkpoints" / "step-4"
    assert_same(weights(run, "G_A"), load_file(checkpoint / "G_A.safetensors"))
    assert_same(weights(run, "D_A"), load_file(checkpoint / "D_A.safetensors"))
    line = capsys.readouterr().out
    assert f"init: G_A (A→B), D_A from {checkpoint}; fresh: F; not used: G_B, D_B" in line


def test_cut_s_reference_generator_starts_a_cyclegan_run_with_its_blur_filters(toy_root, tmp_path, capsys):
    """The anti-aliasing follows the source where the config leaves it to the method: CUT's
    layout (blur filters) for a CycleGAN run, which would otherwise build strided convolutions."""
    reference = CUT_REFERENCE
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "cut-pth", "model.ngf=8", "model.n_blocks=6",
                                              f"train.init_from={reference}")))
    assert (run.cfg.model.no_antialias, run.cfg.model.no_antialias_up) == (False, False)
    assert run.cfg.model.init_type == "normal"  # the rest is the method's (CycleGAN's)
    assert_same(weights(run, "G_A"), convert(read_state_dict(reference))[0])
    assert f"init: G_A (A→B) from {reference}; fresh: G_B, D_A, D_B" in capsys.readouterr().out


def test_an_official_generator_file_and_a_pretrained_model(server, toy_root, tmp_path, monkeypatch, capsys):  # noqa: F811
    expected, _ = convert(read_state_dict(OFFICIAL))
    official = ["model.ngf=8", "model.n_blocks=6"]
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "pth", *official, f"train.init_from={OFFICIAL}")))
    assert_same(weights(run, "G_A"), expected)
    assert f"init: G_A (A→B) from {OFFICIAL}; fresh: G_B, D_A, D_B" in capsys.readouterr().out

    url, served = server
    served.files["/style_monet.pth"] = OFFICIAL.read_bytes()
    monkeypatch.setenv(HOST_VARIABLE, url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "pre", *official,
                                              "train.init_from=pretrained:style_monet")))
    assert_same(weights(run, "G_A"), expected)
    converted = tmp_path / "cache" / "cyclestyle" / "pretrained" / "style_monet.safetensors"
    assert f"init: G_A (A→B) from {converted}; fresh: G_B, D_A, D_B" in capsys.readouterr().out


@pytest.mark.parametrize("file, antialiased", [(OFFICIAL, False), (CUT_REFERENCE, True)])
def test_an_official_generator_file_is_read_and_converted_once_at_start_up(toy_root, tmp_path, monkeypatch, capsys,
                                                                           file, antialiased):
    """Start-up asks the file twice (its anti-aliasing for the config, its weights for G_A): one
    read (``torch.load`` of that file, whoever calls it) and one conversion serve both."""
    from cyclestyle.interop import official
    from cyclestyle.training import init_from

    expected, _ = convert(read_state_dict(file))
    loads, conversions = [], []
    real_load, real_convert = torch.load, official.convert

    def load(f, *args, **kwargs):
        if isinstance(f, (str, Path)) and Path(f).resolve() == file.resolve():
            loads.append(f)
        return real_load(f, *args, **kwargs)

    def counted_convert(state):
        conversions.append(len(state))
        return real_convert(state)

    monkeypatch.setattr(torch, "load", load)
    monkeypatch.setattr(official, "convert", counted_convert)
    monkeypatch.setattr(init_from, "convert", counted_convert)
    run = started(load_config(TINY, overrides(toy_root, tmp_path / "once", "model.ngf=8", "model.n_blocks=6",
                                              f"train.init_from={file}")))
    assert len(loads) == 1 and len(conversions) == 1
    assert (run.cfg.model.no_antialias, run.cfg.model.no_antialias_up) == (not antialiased, not antialiased)
    assert_same(weights(run, "G_A"), expected)
    assert f"init: G_A (A→B) from {file}; fresh: G_B, D_A, D_B" in capsys.readouterr().out


def test_a_file_that_is_no_generator_is_one_line_and_read_once(toy_root, tmp_path, monkeypatch, capsys):
    """Unreadable as an official generator, the file leaves the anti-aliasing to the method and is
    the one-line error when its weights are asked for, from the one read."""
    bad = tmp_path / "discriminator.pth"
    torch.save({"model.0.weight": torch.zeros(8, 3, 4, 4)}, bad)
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: (loads.append(f), real_load(f, *a, **k))[1])
    out = tmp_path / "bad"
    args = ["train", "--config", str(TINY), *sum((["--set", o] for o in overrides(toy_root, out)), []),
            "--init-from", str(bad)]
    assert main(args) == 1  # a bad weights file, as a checkpoint's
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "PatchGAN discriminator" in err
    assert [f for f in loads if Path(f) == bad] == [bad] and not (out / "checkpoints").exists()


def test_a_network_of_other_shapes_is_one_line_naming_it_and_both_shapes(source, toy_root, tmp_path, capsys):
    out = tmp_path / "wide"
    assert main(["train", "--config", str(TINY), *sum((["--set", o] for o in overrides(toy_root, out, "model.ngf=16")),
                                                      []), "--init-from", str(source)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "G_A" in err and "stem.1.weight is (8, 3, 7, 7) in the source and (16, 3, 7, 7)" in err
    assert not (out / "checkpoints").exists()


def test_sources_that_cannot_be_had_are_one_line(toy_root, tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="train.init_from .*does not exist"):
        load_config(TINY, overrides(toy_root, tmp_path / "x", f"train.init_from={tmp_path / 'nothing'}"))
    with socket.socket() as s:  # a port nobody listens on: offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(HOST_VARIABLE, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    base = ["train", "--config", str(TINY), *sum((["--set", o] for o in overrides(toy_root, tmp_path / "y")), [])]
    for source, words in [("pretrained:horse2zebra", "import-official"), ("hf://me/missing", "offline")]:
        assert main([*base, "--init-from", source]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and source.split(":")[-1].lstrip("/") in err and words in err
