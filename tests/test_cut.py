"""CUT and FastCUT (method: cut | fastcut): the PatchNCE loss, the encoder layers, the config,
and tiny runs that train, resume bit for bit, evaluate one way and translate."""

import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.config import ConfigError, dump_config
from cyclestyle.training.configure import load_config
from cyclestyle.inference.run import open_run
from cyclestyle.models.resnet import ResnetGenerator, cut_layer_index
from cyclestyle.models.weights import CheckpointError
from cyclestyle.training.checkpoint import read_checkpoint
from cyclestyle.training.loop import train
from cyclestyle.training.losses import patch_nce_loss
from cyclestyle.training.methods import METHODS
from cyclestyle.training.methods.cut import CUT, PatchProjection, StepDraws, encoder_channels, encoder_layers

from .conftest import REPO, TINY_CUT, cli, kill_after_a_checkpoint

pytestmark = pytest.mark.slow  # CUT and FastCUT trainings, kills and resumes: not in `test.sh --quick`

CUT_NETWORKS = ("G_A", "D_A", "F")


def test_patch_nce_matches_a_hand_computation():
    """Two images of three patches: each query's cross-entropy against its own key, the other
    keys of its image as negatives (its own similarity also there, as −10), over τ."""
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, 3, 4), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(2, 3, 4), dim=-1)
    tau = 0.07
    expected = []
    for b in range(2):
        for i in range(3):
            positive = float(q[b, i] @ k[b, i]) / tau
            others = [float(q[b, i] @ k[b, j]) / tau for j in range(3) if j != i]
            denominator = math.exp(positive) + math.exp(-10 / tau) + sum(math.exp(o) for o in others)
            expected.append(-(positive - math.log(denominator)))
    loss = patch_nce_loss(q, k, tau)
    assert loss.item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    # Matching keys give a low loss, and the temperature sharpens it; keys carry no gradient.
    assert patch_nce_loss(k, k, tau) < loss and patch_nce_loss(k, k, 0.01) < patch_nce_loss(k, k, 0.5)
    q.requires_grad_(True)
    k.requires_grad_(True)
    patch_nce_loss(q, k, tau).backward()
    assert q.grad is not None and k.grad is None


def test_cut_layers_map_onto_our_encoder_and_the_heads_fit_them():
    """CUT's layers 0, 4, 8, 12, 16 are the padded input, the outputs of the two downsampling
    convolutions and of residual blocks 1 and 5; its blur-pools are refused."""
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=9)
    ours = [cut_layer_index(layer, 9) for layer in (0, 4, 8, 12, 16)]
    layers = g.encoder_layers()
    assert layers[ours[0]] is g.stem[0] and layers[ours[1]] is g.down[0] and layers[ours[2]] is g.down[3]
    assert layers[ours[3]] is g.blocks[0] and layers[ours[4]] is g.blocks[4]
    features = g.encode(torch.rand(1, 3, 32, 32), ours)
    assert [tuple(f.shape[1:]) for f in features] == [(3, 38, 38), (16, 16, 16), (32, 8, 8), (32, 8, 8), (32, 8, 8)]
    for bad in (7, 11, 21):
        with pytest.raises(ValueError):
            cut_layer_index(bad, 9)
    # anti-aliased (CUT's default) the numbers are the reference's own modules, blur-pools included
    aa = ResnetGenerator(3, 3, ngf=8, n_blocks=9, no_antialias=False)
    assert [cut_layer_index(layer, 9, antialias=True) for layer in (0, 4, 7, 8, 12, 16)] == [0, 4, 7, 8, 12, 16]
    assert aa.encoder_layers()[7] is aa.down[3] and aa.encoder_layers()[12] is aa.blocks[0]
    with pytest.raises(ValueError):
        cut_layer_index(21, 9, antialias=True)
    cfg = load_config(None, ["method=cut", "model.ngf=8"], check_paths=False)
    assert encoder_layers(cfg) == ours
    assert encoder_channels(cfg) == [f.shape[1] for f in features]
    heads = PatchProjection(encoder_channels(cfg), dim=32)
    out = heads([torch.rand(2, 5, c) for c in encoder_channels(cfg)])
    assert all(o.shape == (2, 5, 32) and torch.allclose(o.norm(dim=-1), torch.ones(2, 5), atol=1e-4) for o in out)


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_the_method_builds_g_d_and_the_heads_in_a_fixed_order(method):
    cfg = load_config(None, [f"method={method}", "model.ngf=4", "model.ndf=4", *TINY_CUT], check_paths=False)
    cls = METHODS.get(method)
    assert cls.translators == {"AtoB": "G_A"}
    torch.manual_seed(0)
    first = cls.build_networks(cfg)
    torch.manual_seed(0)
    again = cls.build_networks(cfg)
    assert list(first) == ["G_A", "D_A", "F"] and list(cls.network_specs(cfg)) == ["G_A", "D_A"]
    for name in first:  # a seed gives the same weights, the heads included
        for (k, v), w in zip(first[name].state_dict().items(), again[name].state_dict().values()):
            assert torch.equal(v, w), (name, k)
    assert [head[0].in_features for head in first["F"].heads] == [3, 8, 16, 16, 16]
    assert all(head[2].out_features == 32 for head in first["F"].heads)


def test_method_defaults_resolve_and_are_written(tmp_path):
    cut = CUT.options(load_config(None, ["method=cut"], check_paths=False))
    fast = CUT.options(load_config(None, ["method=fastcut"], check_paths=False))
    assert (cut.lambda_nce, cut.nce_idt, cut.flip_equivariance) == (1.0, True, False)
    assert (fast.lambda_nce, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    assert (cut.lambda_gan, cut.nce_layers, cut.num_patches, cut.nce_t, cut.mlp_dim) == (1.0, [0, 4, 8, 12, 16],
                                                                                        256, 0.07, 256)
    chosen = load_config(None, ["method=fastcut", "cut.nce_idt=true"], check_paths=False)
    assert CUT.options(chosen).nce_idt and CUT.options(chosen).lambda_nce == 10.0
    (tmp_path / "c.yaml").write_text(dump_config(chosen))  # written resolved, read back the same
    assert load_config(tmp_path / "c.yaml", check_paths=False) == chosen
    assert "cut:" not in dump_config(load_config(None, [], check_paths=False))  # CycleGAN's config.yaml as before
    for path in ("horse2zebra_cut", "horse2zebra_fastcut"):
        cfg = load_config(REPO / "configs" / f"{path}.yaml", ["data.format=hf"])
        assert cfg.method == path.split("_")[1] and cfg.model.generator == "resnet_9blocks"


@pytest.mark.parametrize("overrides, message", [
    (["method=cut", "model.no_antialias=true", "cut.nce_layers=[0,7]"], "blur-pool"),
    (["method=cut", "model.n_blocks=2", "cut.nce_layers=[16]"], "not in the encoder"),
    (["method=cut", "cut.nce_layers=[4,0]"], "ascending"),
    (["method=fastcut", "cut.num_patches=0"], "cut.num_patches must be positive"),
    (["method=cut", "eval.metric=BtoA/psnr", "eval.paired_truth=x"], "needs a B→A generator"),
    (["method=cut", "eval.metric=cycle_l1"], "needs a B→A generator"),
    (["method=cut", "model.out_channels=1"], "cut.nce_idt needs"),
    (["cut.lambda_nce=2"], "read by method cut and fastcut only"),
])
def test_bad_cut_settings_are_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(None, overrides, check_paths=False)
    assert "\n" not in str(e.value)


def test_draws_are_the_same_in_any_process_layout():
    """Image 1 of a step gets the same patch locations as the second image of one process or the
    first of the second process; a step's flip is the same everywhere, and steps differ."""
    one = StepDraws(seed=3, step=7, first_image=0).patch_generators("A", 2)[1]
    two = StepDraws(seed=3, step=7, first_image=1).patch_generators("A", 1)[0]
    assert torch.equal(torch.randperm(50, generator=one), torch.randperm(50, generator=two))
    other = StepDraws(seed=3, step=7, first_image=0).patch_generators("A", 1)[0]
    assert not torch.equal(torch.randperm(50, generator=other), torch.randperm(50, generator=two))
    flips = [StepDraws(3, step, 0).flip() for step in range(1, 41)]
    assert flips == [StepDraws(3, step, 5).flip() for step in range(1, 41)] and 5 < sum(flips) < 35


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_a_batch_of_two_gives_g_the_mean_gradient_of_its_two_images(method, tmp_path):
    """G's NCE gradient (λ_GAN 0: D's own update then plays no part) from a batch of two is the
    mean of what each image gives alone, as process 0 and process 1 of a two-process run. This
    caught a channels-last gradient that torch's instance norm gets wrong at batch 1
    (``cut.patches_at``)."""
    from cyclestyle.training.launch import make_accelerator

    cfg = load_config(None, [f"method={method}", "model.ngf=8", *TINY_CUT, "cut.lambda_gan=0"], check_paths=False)
    accelerator = make_accelerator("no")
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1

    def gradient(rows: slice, rank: int) -> torch.Tensor:
        torch.manual_seed(1)
        cut = METHODS.get(method)(cfg, accelerator, METHODS.get(method).build_networks(cfg), rank)
        cut.step({"A": a[rows], "B": b[rows]}, 1)
        return torch.cat([p.grad.flatten() for p in [*cut.plain("G_A").parameters(), *cut.plain("F").parameters()]])

    both = gradient(slice(0, 2), 0)
    apart = (gradient(slice(0, 1), 0) + gradient(slice(1, 2), 1)) / 2
    assert float((both - apart).norm() / both.norm()) < 1e-4  # measured: 1e-6 (float noise)
    wrong_image = (gradient(slice(0, 1), 0) + gradient(slice(0, 1), 1)) / 2
    assert float((both - wrong_image).norm() / both.norm()) > 1e-2


def final_weights(run_dir: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    folder = run_dir / "checkpoints" / f"step-{step}"
    return {name: load_file(folder / f"{name}.safetensors") for name in CUT_NETWORKS}


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_cut_trains_resumes_bitwise_after_sigkill_and_translates(method, tiny_overrides, tmp_path):
    sets = [*tiny_overrides, f"method={method}", *TINY_CUT, "train.max_steps=12"]
    straight = train(load_config(REPO / "configs" / "tiny.yaml", [*sets, f"output_dir={tmp_path / 'straight'}"]))

    killed = tmp_path / "killed"
    args = ["train", "--config", str(REPO / "configs" / "tiny.yaml"), *sum([["--set", o] for o in sets], []),
            "--set", f"output_dir={killed}"]
    stopped_at = kill_after_a_checkpoint(args, killed)
    assert stopped_at.name != "step-12"
    result = subprocess.run(cli(*args, "--resume", "latest"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    a, b = final_weights(straight, 12), final_weights(killed, 12)
    for name in CUT_NETWORKS:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}.{key} differs"

    # The heads are in every checkpoint, and their Adam moments in the optimizer's state.
    cfg = load_config(straight / "config.yaml", check_paths=False)
    heads = METHODS.get(method).build_networks(cfg)["F"]
    assert a["F"].keys() == heads.state_dict().keys()
    _, state, _ = read_checkpoint(straight / "checkpoints" / "step-12")
    generator_params = sum(1 for _ in METHODS.get(method).build_networks(cfg)["G_A"].parameters())
    assert len(state["optimizers"]["G"]["state"]) == generator_params + len(a["F"])
    # The NCE terms are their own curves; CUT has the identity term, FastCUT not.
    record = json.loads((straight / "log.jsonl").read_text().splitlines()[-1])
    assert {"G_GAN", "NCE", "G", "D"} <= record.keys() and ("NCE_Y" in record) == (method == "cut")
    # One translator: G_A translates, and BtoA is a one-line error.
    assert sorted(p.name for p in straight.glob("*.safetensors")) == ["G_A.safetensors"]
    run = open_run(straight)
    x = torch.rand(1, 3, 40, 44) * 2 - 1
    assert run.translate(x, "AtoB", device="cpu").shape == x.shape
    with pytest.raises(CheckpointError, match="no generator for BtoA, only for AtoB"):
        run.generator("BtoA", "cpu")


def test_cut_run_evaluates_itself_and_with_evaluate_one_way(tiny_overrides, toy_root, tmp_path):
    """Held-out evaluation during training and `cyclestyle evaluate`: A→B only, BtoA null."""
    cfg = load_config(REPO / "configs" / "tiny.yaml", [*tiny_overrides, "method=cut", *TINY_CUT, "train.max_steps=4",
                                                       "eval.every=2", "eval.num_images=2"])
    run_dir = train(cfg)
    evals = [json.loads(line)["eval"] for line in (run_dir / "log.jsonl").read_text().splitlines()
             if "eval" in json.loads(line)]
    assert len(evals) == 2 and all(set(e) == {"AtoB/n"} and e["AtoB/n"] == 2 for e in evals)
    out = tmp_path / "eval"
    result = subprocess.run(cli("evaluate", "--weights", str(run_dir), "--data-root", str(toy_root), "--output",
                                str(out), "--device", "cpu"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "metrics.json").read_text())
    assert data["BtoA"] is None and data["AtoB"]["n"] == 4 and data["AtoB"]["cycle_l1"] is None
    assert any("BtoA: not trained" in n for n in data["notes"])
    assert "not trained" in (out / "index.html").read_text()
    assert not (out / "images" / "AtoB" / "reconstructed").exists()
    assert len(list((out / "images" / "AtoB" / "translated").iterdir())) == 4


def test_a_new_cut_run_writes_the_reference_defaults_and_trains_without_nce_when_asked(tiny_overrides, tmp_path):
    """A run fills in the keys its config leaves to the method and writes them into its
    config.yaml (so a resume keeps them); cut.lambda_nce 0 trains G on the GAN term alone, with no
    heads in its checkpoints."""
    cfg = load_config(REPO / "configs" / "tiny.yaml", [*tiny_overrides, "method=cut", *TINY_CUT, "cut.lambda_nce=0",
                                                       "train.max_steps=2", "train.checkpoint_every=2",
                                                       f"output_dir={tmp_path / 'run'}"])
    run_dir = train(cfg)
    written = load_config(run_dir / "config.yaml", check_paths=False)
    m = written.model
    assert (m.init_type, m.no_antialias, m.no_antialias_up, written.data.decay_no_crop) == ("xavier", False, False, True)
    record = json.loads((run_dir / "log.jsonl").read_text().splitlines()[-1])
    assert "NCE" not in record and "NCE_Y" not in record and record["G"] == pytest.approx(record["G_GAN"])
    saved = sorted(p.name for p in (run_dir / "checkpoints" / "step-2").glob("*.safetensors"))
    assert saved == ["D_A.safetensors", "G_A.safetensors"]
    assert any(k.endswith(".filt") for k in load_file(run_dir / "G_A.safetensors"))  # anti-aliased, as the reference
