"""Generators of the official CycleGAN code, converted: the same outputs, and one line for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.inference.run import open_run
from cyclestyle.interop.official import OfficialFormatError, convert, official_names
from cyclestyle.models import ResnetGenerator
from cyclestyle.models.weights import generator_spec_of

OFFICIAL = Path(__file__).parent / "fixtures" / "official"  # made by the official code, see its README.md


def official_file(blocks: int) -> Path:
    return OFFICIAL / f"resnet_{blocks}blocks_ngf8_net_G_A.pth"


def official_io(blocks: int) -> dict[str, torch.Tensor]:
    return load_file(str(OFFICIAL / f"resnet_{blocks}blocks_ngf8_io.safetensors"))


@pytest.mark.parametrize("blocks", [9, 6])
def test_a_converted_generator_reproduces_the_official_output(blocks, tmp_path):
    out = tmp_path / "G.safetensors"
    assert main(["import-official", str(official_file(blocks)), "--output", str(out)]) == 0
    spec = generator_spec_of(out)
    assert (spec.name, spec.in_channels, spec.out_channels) == ("resnet", 3, 3)
    assert (spec.arguments["ngf"], spec.arguments["n_blocks"], spec.arguments["dropout"]) == (8, blocks, False)
    io = official_io(blocks)
    run = open_run(out)  # as translate, export and push open it
    got = run.translate(io["input"], "AtoB", device="cpu")
    assert got.shape == io["output"].shape
    assert (got - io["output"]).abs().max().item() <= 1e-5


def test_a_file_in_the_pre_1_6_format_of_the_published_models_converts_alike(tmp_path):
    """The published .pth files date from 2017, before torch's zip format: the same state dict
    saved in the old format converts to the same generator."""
    legacy = tmp_path / "latest_net_G.pth"
    torch.save(torch.load(official_file(6), weights_only=True), legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:2] != b"PK"  # not a zip archive
    outs = [tmp_path / "legacy.safetensors", tmp_path / "zip.safetensors"]
    for source, out in zip((legacy, official_file(6)), outs):
        assert main(["import-official", str(source), "--output", str(out)]) == 0
    converted = [load_file(str(out)) for out in outs]
    assert converted[0].keys() == converted[1].keys()
    assert all(torch.equal(converted[0][k], converted[1][k]) for k in converted[1])


def test_instance_norm_statistics_of_old_pytorch_files_are_dropped():
    state = torch.load(official_file(6), weights_only=True)
    plain, _ = convert(state)
    old = dict(state)
    for layer in ("model.2", "model.5", "model.10.conv_block.2", "model.10.conv_block.6", "model.20"):
        old |= {f"{layer}.running_mean": torch.zeros(8), f"{layer}.running_var": torch.ones(8),
                f"{layer}.num_batches_tracked": torch.tensor(0)}
    converted, spec = convert(old)
    assert converted.keys() == plain.keys() and all(torch.equal(converted[k], plain[k]) for k in plain)
    assert spec.arguments["n_blocks"] == 6


def test_the_mapping_with_dropout_round_trips():
    """A generator with dropout (the official Dropout sits at conv_block.4, as ours): its state in the
    official layout converts back to exactly itself, and dropout is read from the keys."""
    ours = ResnetGenerator(3, 1, ngf=4, n_blocks=3, dropout=True).state_dict()
    to_official = {new: old for old, new in official_names(3, True).items()}
    converted, spec = convert({to_official[k]: v for k, v in ours.items()})
    assert spec.arguments["dropout"] is True and (spec.in_channels, spec.out_channels) == (3, 1)
    assert converted.keys() == ours.keys() and all(torch.equal(converted[k], ours[k]) for k in ours)


def refused(state: dict[str, torch.Tensor]) -> str:
    with pytest.raises(OfficialFormatError) as caught:
        convert(state)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_other_files_are_refused_in_one_line_saying_what_they_are():
    state = torch.load(official_file(6), weights_only=True)
    assert "unexpected model.99.weight" in refused(state | {"model.99.weight": torch.zeros(1)})
    assert "missing model.23.bias" in refused({k: v for k, v in state.items() if k != "model.23.bias"})
    assert "batch norm" in refused(state | {"model.2.weight": torch.ones(8), "model.2.bias": torch.zeros(8)})
    assert "discriminator" in refused({"model.0.weight": torch.zeros(8, 3, 4, 4), "model.0.bias": torch.zeros(8)})
    assert "U-Net" in refused({"model.model.0.weight": torch.zeros(8, 3, 4, 4)})
    assert "module.model.1.weight" in refused({"module." + k: v for k, v in state.items()})
    assert "model.4.weight has shape (32, 8, 3, 3)" in refused(state | {"model.4.weight": torch.zeros(32, 8, 3, 3)})


def test_a_file_that_would_run_code_is_refused_and_named(tmp_path, capsys):
    crafted = tmp_path / "latest_net_G_A.pth"
    torch.save({"model.1.weight": torch.zeros(1), "extra": Path("x")}, crafted)  # Path is not a plain type
    out = tmp_path / "G.safetensors"
    assert main(["import-official", str(crafted), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(crafted) in err and "refused" in err
    assert not out.exists()
    assert main(["import-official", str(official_file(6)), "--output", str(out)]) == 0
    assert main(["import-official", str(official_file(9)), "--output", str(out)]) == 1  # no silent overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_a_file_that_is_no_pickle_is_one_line_that_never_suggests_loading_it_unsafely(tmp_path, capsys):
    garbage = tmp_path / "horse2zebra.pth"
    garbage.write_bytes(b"<html>404 Not Found</html>\n")  # what a failed download can leave
    assert main(["import-official", str(garbage), "--output", str(tmp_path / "G.safetensors")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(garbage) in err and "read safely" in err
    assert "weights_only" not in err and "False" not in err


def spoiled(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """``tensor`` made what no generator's weights may be: integer, complex, NaN or infinite."""
    if how == "int64":
        return (tensor * 100).to(torch.int64)
    if how == "complex64":
        return tensor.to(torch.complex64)
    bad = tensor.clone()
    bad.view(-1)[3] = float(how)
    return bad


@pytest.mark.parametrize("how", ["int64", "complex64", "nan", "inf"])
def test_weights_that_are_not_finite_floating_point_are_refused_naming_the_file_and_tensor(tmp_path, capsys, how):
    state = torch.load(official_file(6), weights_only=True)
    bad = tmp_path / "latest_net_G_A.pth"
    torch.save(state | {"model.4.weight": spoiled(state["model.4.weight"], how)}, bad)
    out = tmp_path / "G.safetensors"
    assert main(["import-official", str(bad), "--output", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "model.4.weight" in err, err
    assert not out.exists()
