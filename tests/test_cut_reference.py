"""CUT's own networks, run by its own code (tests/fixtures/reference-cut/README.md), reproduced by
ours: its generator through import-official, its anti-aliased PatchGAN, its projection heads, the
encoder features it contrasts, and its PatchNCE value per layer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.inference.run import open_run
from cyclestyle.interop.official import OfficialFormatError, convert
from cyclestyle.models import DISCRIMINATORS
from cyclestyle.models.weights import generator_spec_of, load_generator
from cyclestyle.training.losses import patch_nce_loss
from cyclestyle.training.methods.cut import PatchProjection, patches_at

REFERENCE = Path(__file__).parent / "fixtures" / "reference-cut"
LAYERS = (0, 4, 8, 12, 16)


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(str(REFERENCE / "cut_io.safetensors"))


def reference(name: str) -> dict[str, torch.Tensor]:
    return torch.load(REFERENCE / name, weights_only=True)


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cut") / "G.safetensors"
    assert main(["import-official", str(REFERENCE / "cut_resnet_6blocks_ngf8_net_G.pth"), "--output", str(out)]) == 0
    return out


def close(got: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-5) -> bool:
    """Within ``tolerance`` of the reference, relative to its scale where that exceeds 1 (deep
    features reach ±10, and float32 rounding grows with them)."""
    scale = max(1.0, expected.abs().max().item())
    return got.shape == expected.shape and (got - expected).abs().max().item() <= tolerance * scale


def test_the_imported_generator_is_the_reference_one_tensor_for_tensor(generator):
    spec = generator_spec_of(generator)
    a = spec.arguments
    assert (spec.name, a["ngf"], a["n_blocks"], a["no_antialias"], a["no_antialias_up"]) == ("resnet", 8, 6, False, False)
    state, ref = load_file(str(generator)), reference("cut_resnet_6blocks_ngf8_net_G.pth")
    assert len(state) == len(ref) == 40  # every tensor, the blur filters included, and nothing else
    assert sum(v.numel() for k, v in state.items() if not k.endswith(".filt")) == 124_931
    ours = sorted(state.values(), key=lambda t: (tuple(t.shape), t.sum().item()))
    theirs = sorted(ref.values(), key=lambda t: (tuple(t.shape), t.sum().item()))
    assert all(torch.equal(x, y) for x, y in zip(ours, theirs))


def test_the_imported_generator_translates_as_the_reference(generator, io):
    run = open_run(generator)  # as translate, export and evaluate open it
    assert close(run.translate(io["input"], "AtoB", device="cpu"), io["output"])


def test_the_encoder_features_are_the_references_at_its_layer_numbers(generator, io):
    g = load_generator(generator)
    with torch.no_grad():
        for image, kind in ((io["input"], "k"), (io["output"], "q")):
            for layer, feature in zip(LAYERS, g.encode(image, LAYERS)):
                assert close(feature, io[f"feat_{kind}_{layer}"]), (kind, layer)


def test_the_anti_aliased_patchgan_judges_as_the_reference(io):
    arch = DISCRIMINATORS.get("basic")
    d = arch.build(3, None, arch.arguments({"ndf": 8, "no_antialias": False}))
    ref = reference("cut_basic_ndf8_net_D.pth")
    assert sum(v.numel() for k, v in ref.items() if not k.endswith(".filt")) == 44_537
    d.load_state_dict({k.replace("model.", "body.", 1): v for k, v in ref.items()})  # body.N is its model.N
    with torch.no_grad():
        assert close(d.eval()(io["d_input"]), io["d_output"])


def test_the_heads_and_the_patchnce_value_are_the_references(io):
    """The reference's heads loaded into ours project the features at its sampled positions to
    its vectors, and our PatchNCE of those vectors is its value, layer by layer."""
    ref = reference("cut_mlp_sample_nc32_net_F.pth")
    heads = PatchProjection([io[f"feat_k_{layer}"].shape[1] for layer in LAYERS], dim=32)
    heads.load_state_dict({k.replace("mlp_", "heads.", 1): v for k, v in ref.items()})  # heads.i is its mlp_i
    ids = [io[f"patch_ids_{layer}"][None].long() for layer in LAYERS]  # row-major over H×W, as ours
    for at, layer in zip(ids, LAYERS):
        assert at.unique().numel() == 16 and at.max() < io[f"feat_k_{layer}"][0, 0].numel()
    with torch.no_grad():
        keys = heads([patches_at(io[f"feat_k_{layer}"], at) for layer, at in zip(LAYERS, ids)])
        queries = heads([patches_at(io[f"feat_q_{layer}"], at) for layer, at in zip(LAYERS, ids)])
    for i, layer in enumerate(LAYERS):
        assert close(keys[i][0], io[f"proj_k_{layer}"]) and close(queries[i][0], io[f"proj_q_{layer}"]), layer
        for q, k in ((io[f"proj_q_{layer}"], io[f"proj_k_{layer}"]), (queries[i][0], keys[i][0])):
            nce = patch_nce_loss(q[None], k[None], 0.07).item()
            assert abs(nce - io["nce_per_layer"][i].item()) <= 1e-5 * max(1.0, nce), layer


@pytest.mark.parametrize("down, up", [(True, True), (True, False), (False, True), (False, False)])
def test_every_anti_aliasing_layout_round_trips_through_the_official_names(down, up):
    """Ours in the official layout converts back to exactly itself; the layout is read from the keys."""
    from cyclestyle.interop.official import official_names
    from cyclestyle.models import ResnetGenerator

    ours = ResnetGenerator(3, 3, ngf=4, n_blocks=2, no_antialias=not down, no_antialias_up=not up).state_dict()
    to_official = {new: old for old, new in official_names(2, False, down, up).items()}
    assert to_official.keys() == ours.keys()
    converted, spec = convert({to_official[k]: v for k, v in ours.items()})
    assert (spec.arguments["no_antialias"], spec.arguments["no_antialias_up"]) == (not down, not up)
    assert converted.keys() == ours.keys() and all(torch.equal(converted[k], ours[k]) for k in ours)


def test_a_cut_file_with_other_blur_filters_or_a_missing_one_is_refused_in_one_line():
    state = reference("cut_resnet_6blocks_ngf8_net_G.pth")
    for changed, message in (({"model.7.filt": state["model.7.filt"] * 2}, "model.7.filt is not the reference's fixed blur"),
                             ({"model.11.filt": None}, "missing model.11.filt")):
        broken = {k: v for k, v in (state | changed).items() if v is not None}
        with pytest.raises(OfficialFormatError, match=message) as caught:
            convert(broken)
        assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_an_imported_cut_generator_translates_exports_and_evaluates_like_any_run(generator, toy_root, tmp_path, capsys):
    out = tmp_path / "zebras"
    assert main(["translate", "--weights", str(generator), "--direction", "AtoB", "--output", str(out),
                 str(toy_root / "testA")]) == 0
    assert len(list(out.glob("*.png"))) == 4
    exported = tmp_path / "g.pt"
    assert main(["export", "--weights", str(generator), "--format", "torchscript", "--output", str(exported)]) == 0
    x = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert close(torch.jit.load(str(exported))(x), open_run(generator).translate(x, "AtoB", device="cpu"), 1e-4)
    assert main(["evaluate", "--weights", str(generator), "--data-root", str(toy_root), "--output",
                 str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["AtoB"]["n"] == 4
