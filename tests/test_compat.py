"""Run folders written by earlier versions still open, translate as they did and resume to the
weights those versions resumed them to (tests/fixtures/README.md says how each was made)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.inference.run import open_run
from cyclestyle.training.configure import load_config
from cyclestyle.training.loop import train

from .conftest import REPO

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "v0.2-expected"
# What each fixture was trained with, beyond configs/tiny.yaml (its config.yaml says the same).
RUNS = {"v0.2-run": ["model.n_blocks=1"],
        "v0.2-cut-run": ["method=cut", "model.n_blocks=2", "cut.nce_layers=[0,4,8,12,13]", "cut.num_patches=16",
                         "cut.mlp_dim=16"]}
COMMON = ["model.ngf=4", "model.ndf=4", "train.max_steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=1",
          "train.log_every=2", "log.with=none"]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_of_the_previous_version_translates_as_it_did(name):
    run = open_run(FIXTURES / name)
    expected = load_file(EXPECTED / f"{name}-translations.safetensors")
    assert set(run.files) == set(expected) and run.step == 2 and run.missing == {}  # CUT's run has G_A alone
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        for direction, output in expected.items():
            assert torch.allclose(run.generator(direction, "cpu")(x), output, atol=1e-5), direction


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_of_the_previous_version_resumes_to_the_weights_it_resumed_to(name, toy_root, tmp_path):
    copy = tmp_path / name
    shutil.copytree(FIXTURES / name, copy)
    cfg = load_config(REPO / "configs" / "tiny.yaml", [*COMMON, *RUNS[name], f"data.root={toy_root}",
                                                       f"output_dir={copy}"])
    train(cfg, resume="latest")
    expected = load_file(EXPECTED / f"{name}-resumed-step-4.safetensors")
    got, start = weights(copy / "checkpoints" / "step-4"), weights(FIXTURES / name / "checkpoints" / "step-2")
    assert got.keys() == expected.keys()
    # The same computation: bit for bit on the machine and thread count that wrote the expected
    # weights, and to float noise elsewhere. Adam turns noise in a near-zero gradient into up to a
    # full step of lr, so each network is compared by how far it is from the expected weights
    # against how far the two resumed steps moved it (a few percent across thread counts; a
    # wrong update, order or rate would be of the size of the move itself).
    for network in sorted({key.split(".")[0] for key in expected}):
        keys = [key for key in expected if key.split(".")[0] == network]
        off = torch.stack([(got[k] - expected[k]).norm() for k in keys]).norm()
        moved = torch.stack([(expected[k] - start[k]).norm() for k in keys]).norm()
        assert moved > 0 and off <= 0.2 * moved, f"{network}: {off:.3g} from the expected weights, moved {moved:.3g}"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_of_the_previous_version_resumes_with_the_settings_it_trained_with(name, toy_root):
    """Its config.yaml predates the keys left to the method (initialisation, anti-aliasing, the
    decay-epoch data rule): resumed with a config that leaves them unset, as the resume test
    above does, the run keeps that version's behaviour, and the networks it builds take the
    checkpoint as saved, although CUT's defaults are now xavier and anti-aliased."""
    import yaml

    from cyclestyle.training.checkpoint import load_checkpoint
    from cyclestyle.training.methods import METHODS
    from cyclestyle.training.start import recorded_config

    cfg = load_config(REPO / "configs" / "tiny.yaml", [*COMMON, *RUNS[name], f"data.root={toy_root}"])
    assert "model.init_type" not in yaml.safe_load((FIXTURES / name / "config.yaml").read_text())["model"]
    method = METHODS.get(cfg.method)
    resumed = method.with_defaults(cfg, recorded_config(FIXTURES / name))
    m = resumed.model
    assert (m.init_type, m.no_antialias, m.no_antialias_up, resumed.data.decay_no_crop) == ("normal", True, True, False)
    load_checkpoint(FIXTURES / name / "checkpoints" / "step-2").load_networks(method.build_networks(resumed))
    if name == "v0.2-cut-run":  # a new run of the same config would be CUT's reference: another network
        assert method.with_defaults(cfg).model.no_antialias is False


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return {f"{p.stem}.{k}": v for p in sorted(checkpoint.glob("*.safetensors")) for k, v in load_file(p).items()}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_config_of_the_previous_version_reads_back_to_the_same_file(name):
    """The same text, so the same fingerprint (``config_hash``) that its checkpoints and
    evaluations recorded; its method's section included."""
    from cyclestyle.config import dump_config, read_config
    from cyclestyle.training.configure import check_config

    path = FIXTURES / name / "config.yaml"
    assert dump_config(check_config(read_config(path), check_paths=False)) == path.read_text()
