"""pix2pix: the official U-Nets and PixelGAN reproduced, paired data (aligned, matched folders, HF
columns) with one crop and flip per pair, the method's config, and tiny runs that train, resume
bit for bit after SIGKILL, translate and are scored against their true targets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.config import ConfigError, DataConfig, read_config
from cyclestyle.data import DataError, DataWarning, PairedDataset, image_to_tensor, open_domains
from cyclestyle.demo.toy import make_paired_toy_dataset
from cyclestyle.inference.run import open_run
from cyclestyle.inference.translate import test_mode as as_tested  # not collected as a test
from cyclestyle.inference.translate import translate_tensor
from cyclestyle.interop.official import OfficialFormatError, convert
from cyclestyle.models import DISCRIMINATORS, GENERATORS
from cyclestyle.models.weights import load_generator, read_metadata
from cyclestyle.training.configure import check_config
from cyclestyle.training.methods import METHODS

from .conftest import REPO, cli, kill_after_a_checkpoint
from .test_download import handler_for, server  # noqa: F401  (the loopback HTTP server fixture)

FIXTURES = Path(__file__).parent / "fixtures"  # copied from the shared reference nets; see fixtures/README.md


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / "pix2pix_io.safetensors"))


# --------------------------------------------------------------------------------------------
# The official networks, reproduced


@pytest.mark.parametrize("name", ["unet_128", "unet_256"])
def test_an_imported_official_unet_reproduces_eval_and_the_official_test_default(name, reference, tmp_path, capsys):
    """import-official keeps the batch-norm running statistics (the official --eval output) and
    translate's default runs each image by its own statistics (the official test.py default)."""
    out = tmp_path / f"{name}.safetensors"
    assert main(["import-official", str(FIXTURES / f"pix2pix_{name}_ngf8_net_G.pth"), "--output", str(out)]) == 0
    assert f"U-Net generator ({name}), ngf 8, batch norm" in capsys.readouterr().out
    g = open_run(out).generator("AtoB", "cpu")
    x = reference[f"{name}_input"]
    with torch.inference_mode():
        with as_tested(g, batch_norm="running"):
            running = translate_tensor(g, x)
        with as_tested(g):  # auto: each image's own statistics
            own = translate_tensor(g, x)
        with as_tested(g, batch_norm="image"):
            one_by_one = torch.cat([translate_tensor(g, x[i:i + 1]) for i in range(len(x))])
    assert (running - reference[f"{name}_output_eval"]).abs().max() <= 1e-5
    assert (own - reference[f"{name}_output_batchstats_nodropout"]).abs().max() <= 1e-5
    assert torch.equal(own, one_by_one)  # a batch is each image alone
    assert not g.training and all(not m.training for m in g.modules())  # given back as it was


def test_the_official_default_differs_from_eval_and_dropout_is_seeded(reference):
    state = torch.load(FIXTURES / "pix2pix_unet_128_ngf8_net_G.pth", weights_only=True)
    g, spec = convert(state)[1].build(), convert(state)[1]
    g.load_state_dict(state)
    assert spec.arguments["dropout"] and spec.arguments["norm"] == "batch"
    x = reference["unet_128_input"][:1]
    with torch.inference_mode():
        with as_tested(g, dropout=True, seed=3):
            a = translate_tensor(g, x)
        with as_tested(g, dropout=True, seed=3):
            b = translate_tensor(g, x)
        with as_tested(g, dropout=True, seed=4):
            c = translate_tensor(g, x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - reference["unet_128_output_batchstats_nodropout"][:1]).abs().max() > 1e-2
    assert (reference["unet_128_output_eval"] - reference["unet_128_output_batchstats_nodropout"]).abs().max() > 1e-2


def test_translate_runs_the_official_default_and_eval_on_image_files(reference, tmp_path):
    """The translate command on a PNG gives what the generator gives in each test mode, to one 8-bit level."""
    weights = tmp_path / "g.safetensors"
    assert main(["import-official", str(FIXTURES / "pix2pix_unet_128_ngf8_net_G.pth"), "--output", str(weights)]) == 0
    x = reference["unet_128_input"][:1]
    picture = ((x[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    (tmp_path / "in").mkdir()
    Image.fromarray(picture).save(tmp_path / "in" / "x.png")
    g = load_generator(weights, "cpu")
    x8 = image_to_tensor(Image.open(tmp_path / "in" / "x.png")).unsqueeze(0)
    for mode in ("image", "running"):
        assert main(["translate", "--weights", str(weights), "--output", str(tmp_path / mode), "--device", "cpu",
                     "--batch-norm", mode, str(tmp_path / "in" / "x.png")]) == 0
        with torch.inference_mode(), as_tested(g, batch_norm=mode):
            expected = (translate_tensor(g, x8)[0] + 1) * 127.5
        got = torch.from_numpy(np.asarray(Image.open(tmp_path / mode / "x.png"), dtype=np.float32)).permute(2, 0, 1)
        assert (got - expected).abs().max() <= 1.0
    image, running = (np.asarray(Image.open(tmp_path / m / "x.png"), dtype=np.int16) for m in ("image", "running"))
    assert np.abs(image - running).max() > 2
    assert main(["translate", "--weights", str(weights), "--output", str(tmp_path / "t"), "--tile", "64",
                 str(tmp_path / "in" / "x.png")]) == 1  # a U-Net sees the whole image: no tiles


@pytest.mark.slow  # ONNX exports checked against PyTorch, as tests/test_export.py
def test_an_exported_unet_computes_the_official_test_default_or_eval(reference, tmp_path):
    import onnxruntime

    from cyclestyle.export.translator import export_translator

    weights = tmp_path / "g.safetensors"
    assert main(["import-official", str(FIXTURES / "pix2pix_unet_128_ngf8_net_G.pth"), "--output", str(weights)]) == 0
    x = reference["unet_128_input"].numpy()
    for mode, expected in (("auto", "unet_128_output_batchstats_nodropout"), ("running", "unet_128_output_eval")):
        export_translator(weights, tmp_path / f"{mode}.onnx", "onnx", batch_norm=mode)
        session = onnxruntime.InferenceSession(str(tmp_path / f"{mode}.onnx"))
        out = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert np.abs(out - reference[expected].numpy()).max() <= 1e-5


def test_the_pixelgan_reproduces_the_official_one(reference):
    d = DISCRIMINATORS.get("pixel").build(6, None, DISCRIMINATORS.get("pixel").arguments({"ndf": 8, "norm": "batch"}))
    d.load_state_dict(torch.load(FIXTURES / "pix2pix_pixel_ndf8_net_D.pth", weights_only=True))
    assert sum(p.numel() for p in d.parameters()) == 232
    with torch.inference_mode():
        assert (d.eval()(reference["pixel_input"]) - reference["pixel_output_eval"]).abs().max() <= 1e-5


def test_unets_have_the_official_sizes_and_dropout_in_the_ngf8_blocks():
    for name, params, drops in (("unet_128", 655_443, 2), ("unet_256", 852_307, 3)):
        arch = GENERATORS.get(name)
        g = arch.build(3, 3, arch.arguments({"ngf": 8, "norm": "batch", "dropout": True}))
        assert sum(p.numel() for p in g.parameters()) == params and g.size_multiple == 2 ** (drops + 5)
        assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == drops
        assert translate_tensor(g.eval(), torch.zeros(1, 3, 20, 30)).shape == (1, 3, 20, 30)


def test_an_official_unet_with_a_tensor_of_the_wrong_shape_is_one_line():
    state = torch.load(FIXTURES / "pix2pix_unet_128_ngf8_net_G.pth", weights_only=True)
    state["model.model.3.weight"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(OfficialFormatError, match=r"tensor model.model.3.weight has shape \(16, 3, 3, 3\)"):
        convert(state)
    del state["model.model.1.model.2.num_batches_tracked"]  # an old file: added back as 0
    state["model.model.3.weight"] = torch.zeros(16, 3, 4, 4)
    assert convert(state)[0]["model.model.1.model.2.num_batches_tracked"].item() == 0


def test_pretrained_lists_and_fetches_the_official_pix2pix_models(server, tmp_path, monkeypatch, capsys):  # noqa: F811
    url, served = server
    official = (FIXTURES / "pix2pix_unet_256_ngf8_net_G.pth").read_bytes()
    served.files["/pix2pix/edges2shoes.pth"] = official
    served.cut_at, served.cuts = len(official) // 3, 1
    monkeypatch.setenv("CYCLESTYLE_PRETRAINED_URL", url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["pretrained", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("facades_label2photo", "sat2map", "map2sat", "edges2shoes", "edges2handbags", "day2night"):
        assert f"pix2pix/{name}\n" in listed
    assert main(["pretrained", "pix2pix/edges2shoes", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    assert served.ranges == [None, f"bytes={len(official) // 3}-"]
    out = tmp_path / "models" / "pix2pix_edges2shoes.safetensors"
    g = load_generator(out, "cpu")
    x = load_file(str(FIXTURES / "pix2pix_io.safetensors"))["unet_256_input"]
    with torch.inference_mode(), as_tested(g, batch_norm="running"):
        expected = load_file(str(FIXTURES / "pix2pix_io.safetensors"))["unet_256_output_eval"]
        assert (g(x) - expected).abs().max() <= 1e-5
    monkeypatch.delenv("CYCLESTYLE_PRETRAINED_URL")
    from cyclestyle.interop.download import pretrained_url
    assert pretrained_url("pix2pix/day2night") == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/day2night.pth"


# --------------------------------------------------------------------------------------------
# Paired data


def paired_cfg(root: Path, **changes) -> DataConfig:
    settings = dict(root=str(root), load_size=40, crop_size=32, paired=True, num_workers=0) | changes
    return DataConfig(**settings)


def test_aligned_images_split_into_a_and_b_halves(tmp_path):
    root = make_paired_toy_dataset(tmp_path / "aligned", "aligned", n_train=3, n_test=1, size=32)
    a, b = open_domains(paired_cfg(root, format="aligned", max_dataset_size=2), "train")
    assert len(a) == len(b) == 2 and a.describe(1) == b.describe(1)  # the first two pairs
    a, b = open_domains(paired_cfg(root, format="aligned"), "train")
    whole = Image.open(root / "train" / "0001.png")
    assert len(a) == len(b) == 3 and a.load(1).size == b.load(1).size == (32, 32)
    assert np.array_equal(np.asarray(a.load(1)), np.asarray(whole)[:, :32])
    assert np.array_equal(np.asarray(b.load(1)), np.asarray(whole)[:, 32:])


@pytest.mark.parametrize("layout", ["aligned", "folders"])
def test_both_images_of_a_pair_get_one_crop_and_one_flip(layout, tmp_path):
    root = tmp_path / layout
    for split in ("train", "test"):
        for i in range(2):
            a = Image.fromarray(np.random.default_rng(i).integers(0, 256, (36, 44, 3), dtype=np.uint8))
            b = Image.fromarray(255 - np.asarray(a))  # B is A's negative, pixel for pixel
            if layout == "aligned":
                both = Image.new("RGB", (88, 36))
                both.paste(a, (0, 0)), both.paste(b, (44, 0))
                (root / split).mkdir(parents=True, exist_ok=True)
                both.save(root / split / f"{i}.png")
            else:
                for d, img in (("A", a), ("B", b)):
                    (root / f"{split}{d}").mkdir(parents=True, exist_ok=True)
                    img.save(root / f"{split}{d}" / f"{i}.png")
    cfg = paired_cfg(root, format="aligned" if layout == "aligned" else "folder", preprocess="crop", crop_size=24)
    dataset = PairedDataset(*open_domains(cfg, "train"), cfg)
    flips = set()
    for seed in range(12):
        item = dataset[(1, 0, seed)]
        assert torch.allclose(item["B"], -item["A"], atol=1e-6)  # the same crop and the same flip
        a = image_to_tensor(Image.fromarray(np.random.default_rng(1).integers(0, 256, (36, 44, 3), dtype=np.uint8)))
        flips.add(any(torch.equal(item["A"], a[:, t:t + 24, l:l + 24]) for t in range(13) for l in range(21)))
    assert flips == {True, False}  # some items flipped, some not: the flip is random, yet shared


def test_paired_folders_match_by_stem_and_name_the_unmatched_in_one_line(tmp_path):
    root = make_paired_toy_dataset(tmp_path / "pairs", "folders", n_train=4, n_test=1, size=16)
    (root / "trainA" / "0003.png").rename(root / "trainA" / "extra.png")
    with pytest.warns(DataWarning) as caught:
        a, b = open_domains(paired_cfg(root), "train")
    assert [Path(a.describe(i)).stem for i in range(len(a))] == ["0000", "0001", "0002"]
    assert [Path(b.describe(i)).stem for i in range(len(b))] == ["0000", "0001", "0002"]
    (message,) = [str(w.message) for w in caught]
    assert "\n" not in message and "trainA/extra" in message and "trainB/0003" in message and message.startswith("2 files")
    (root / "trainB" / "0000.jpg").write_bytes((root / "trainB" / "0000.png").read_bytes())
    with pytest.raises(DataError, match="0000.jpg and .*0000.png have the same stem|0000.png and .*0000.jpg have"):
        open_domains(paired_cfg(root), "train")


def test_an_hf_table_with_two_image_columns_is_read_row_by_row(tmp_path, monkeypatch):
    import datasets
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    same = Image.new("RGB", (20, 20), (10, 20, 30))  # two rows with one A image: both are pairs
    rows = {"imageA": [same, same, Image.new("RGB", (20, 20), (200, 0, 0))],
            "imageB": [Image.new("RGB", (20, 20), (c, c, c)) for c in (0, 100, 200)]}
    features = datasets.Features({"imageA": datasets.Image(), "imageB": datasets.Image()})
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(tmp_path / "hf"))
    a, b = open_domains(paired_cfg(tmp_path / "hf", format="hf"), "train")
    assert len(a) == len(b) == 3
    assert [b.load(i).getpixel((0, 0)) for i in range(3)] == [(0, 0, 0), (100, 100, 100), (200, 200, 200)]
    assert a.load(2).getpixel((0, 0)) == (200, 0, 0)
    unpaired = open_domains(paired_cfg(tmp_path / "hf", format="hf", paired=False), "train")
    assert len(unpaired[0]) == 2  # deduplicated as unpaired domains are


# --------------------------------------------------------------------------------------------
# The method's config


def test_pix2pix_builds_a_conditional_discriminator_and_translates_its_direction(tmp_path):
    sets = ["method=pix2pix", "model.generator=unet_128", "model.norm=batch", "model.ngf=8", "model.ndf=8",
            "model.in_channels=1", "data.crop_size=128", "data.load_size=128", "eval.every=0"]
    cfg = check_config(read_config(None, sets), check_paths=False)
    assert cfg.data.paired is True and cfg.sections == {"pix2pix": {"direction": "AtoB", "lambda_l1": 100.0}}
    pix2pix = METHODS.get("pix2pix")
    specs = pix2pix.network_specs(cfg)
    assert (specs["G"].in_channels, specs["G"].out_channels, specs["D"].in_channels) == (1, 3, 4)
    backwards = check_config(read_config(None, [*sets, "pix2pix.direction=BtoA"]), check_paths=False)
    assert pix2pix.translators_for(backwards) == {"BtoA": "G"}
    assert (pix2pix.network_specs(backwards)["G"].in_channels, pix2pix.network_specs(backwards)["G"].out_channels) == (3, 1)
    with pytest.raises(ConfigError, match="method pix2pix learns from pairs: data.paired must be true"):
        check_config(read_config(None, [*sets, "data.paired=false"]), check_paths=False)
    with pytest.raises(ConfigError, match="data.crop_size=32 must be a multiple of 128"):
        check_config(read_config(None, [*sets, "data.crop_size=32", "data.load_size=36"]), check_paths=False)
    with pytest.raises(ConfigError, match="pix2pix.direction must be one of AtoB, BtoA"):
        check_config(read_config(None, [*sets, "pix2pix.direction=both"]), check_paths=False)
    with pytest.raises(ConfigError, match="eval.metric BtoA/psnr needs a B→A generator"):
        check_config(read_config(None, [*sets, "eval.metric=BtoA/psnr"]), check_paths=False)
    psnr = check_config(read_config(None, [*sets, "eval.metric=psnr", "eval.every=10"]), check_paths=False)
    assert psnr.eval.metric == "psnr"  # paired data has its truth: no eval.paired_truth needed


@pytest.mark.parametrize("config", ["facades_pix2pix.yaml", "maps_pix2pix.yaml"])
def test_the_paper_configs_check(config, tmp_path):
    cfg = check_config(read_config(REPO / "configs" / config), check_paths=False)
    assert (cfg.model.generator, cfg.model.norm, cfg.model.dropout, cfg.loss.gan_mode) == ("unet_256", "batch", True, "vanilla")
    assert (cfg.train.lr, cfg.train.n_epochs, cfg.train.n_epochs_decay, cfg.train.batch_size) == (2e-4, 100, 100, 1)
    assert cfg.sections["pix2pix"]["lambda_l1"] == 100.0 and cfg.data.format == "aligned"


# --------------------------------------------------------------------------------------------
# Tiny runs: train, resume after SIGKILL bit for bit, translate, evaluate against the targets


def tiny_args(root: Path, run_dir: Path, data_format: str) -> list[str]:
    sets = [f"data.root={root}", f"data.format={data_format}", f"output_dir={run_dir}", "method=pix2pix",
            "model.generator=unet_128", "model.norm=batch", "model.dropout=true", "model.ngf=8", "model.ndf=8",
            "data.load_size=136", "data.crop_size=128", "loss.gan_mode=vanilla", "train.pool_size=0",
            "train.max_steps=6", "train.checkpoint_every=2", "train.log_every=2", "eval.every=3",
            "eval.num_images=2", "eval.metric=psnr", "log.with=none"]
    return ["train", "--config", str(REPO / "configs" / "tiny.yaml"), *sum([["--set", s] for s in sets], [])]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["aligned", "folders"])
def test_a_tiny_pix2pix_trains_resumes_bitwise_after_sigkill_translates_and_is_scored_against_the_truth(
        layout, tmp_path):
    root = make_paired_toy_dataset(tmp_path / "data", layout, n_train=4, n_test=2, size=128)
    data_format = "aligned" if layout == "aligned" else "folder"
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = subprocess.run(cli(*tiny_args(root, straight, data_format)), capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    stopped_at = kill_after_a_checkpoint(tiny_args(root, killed, data_format), killed, timeout=300)
    assert stopped_at.name != "step-6"
    resumed = subprocess.run(cli(*tiny_args(root, killed, data_format), "--resume", "latest"), capture_output=True,
                             text=True, timeout=600, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    a, b = (load_file(run / "G.safetensors") for run in (straight, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith("running_mean") for k in a)  # batch norm's statistics travel with the weights
    assert read_metadata(killed / "G.safetensors")["cyclestyle.direction"] == "AtoB"
    eval_lines = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines() if '"eval"' in line]
    assert eval_lines and all("AtoB/psnr" in r["eval"] and "AtoB/ssim" in r["eval"] for r in eval_lines)

    out = tmp_path / "translated"
    test_images = root / ("test" if layout == "aligned" else "testA")
    translated = subprocess.run(cli("translate", "--weights", str(killed), "--output", str(out), str(test_images),
                                    "--device", "cpu"), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert translated.returncode == 0, translated.stderr
    assert Image.open(out / "0000.png").size == Image.open(test_images / "0000.png").size

    report = tmp_path / "eval"
    evaluated = subprocess.run(cli("evaluate", "--weights", str(killed), "--data-root", str(root), "--output",
                                   str(report), "--device", "cpu"), capture_output=True, text=True, timeout=300,
                               cwd=REPO)
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["AtoB"]["n"] == 2 and metrics["BtoA"] is None
    assert 5 < metrics["AtoB"]["psnr"] < 60 and -1 < metrics["AtoB"]["ssim"] < 1
    assert (report / "images" / "AtoB" / "truth" / "0000.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("layout, direction", [("aligned", "AtoB"), ("folders", "BtoA")])
def test_a_pix2pix_runs_samples_read_input_output_truth_in_its_direction(layout, direction, tmp_path):
    """The panels on disk (and on the dashboard) of a paired method end each row with the true
    target: at 32 px with no resize, the truth column is the held-out pair's other file."""
    from cyclestyle.training.configure import load_config
    from cyclestyle.training.loop import train

    root = make_paired_toy_dataset(tmp_path / "data", layout, n_train=3, n_test=2, size=32)
    run = train(load_config(REPO / "configs" / "tiny.yaml", [
        f"data.root={root}", f"data.format={'aligned' if layout == 'aligned' else 'folder'}", "method=pix2pix",
        f"pix2pix.direction={direction}", f"output_dir={tmp_path / 'run'}", "data.load_size=32", "model.n_blocks=1",
        "train.max_steps=2", "train.checkpoint_every=2", "log.images_every=2", "log.with=none", "eval.every=0"]))
    x, y = direction.split("to")
    (entry,) = json.loads((run / "samples" / "index.json").read_text())
    assert entry["captions"] == [f"test {x} images, per row: real {x} | {x}→{y} (G) | true {y}"]
    samples = np.asarray(Image.open(run / "samples" / entry["image"]), dtype=np.int16)
    assert samples.shape == (2 * 32, 3 * 32, 3)  # two held-out pairs; input | output | truth
    sources = dict(zip("AB", open_domains(paired_cfg(root, format="aligned" if layout == "aligned" else "folder"),
                                          "test")))
    g = open_run(run).generator(direction, "cpu")
    for row in range(2):
        real, true = (np.asarray(sources[d].load(row), dtype=np.int16) for d in (x, y))
        with torch.inference_mode(), as_tested(g):
            fake = translate_tensor(g, image_to_tensor(sources[x].load(row)).unsqueeze(0))[0]
        fake = ((fake.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
        cells = [samples[32 * row:32 * row + 32, 32 * c:32 * c + 32] for c in range(3)]
        for column, expected in enumerate((real, fake, true)):
            assert np.abs(cells[column] - expected).max() <= 1, (row, column)
    assert np.abs(cells[2] - cells[1]).max() > 1  # a true target, not another copy of the output


def test_evaluation_scores_against_the_partner_and_a_wrong_partner_scores_worse(tmp_path):
    """The other image of each pair is its truth: a translator that returns its input is perfect on
    a pair whose B is A and far off on one whose B is A's negative."""
    from cyclestyle.evaluation.evaluate import evaluate_translators

    root = tmp_path / "same"
    for split in ("test",):
        for i in range(2):
            a = np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)
            both = np.concatenate([a, a if i == 0 else 255 - a], axis=1)
            (root / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(both).save(root / split / f"{i}.png")
    a, b = open_domains(paired_cfg(root, format="aligned"), "test")
    identity = torch.nn.Identity()
    identity.size_multiple = 1
    result = evaluate_translators(identity, None, a, b, size=None, paired=True, progress=False)
    per_image = result.directions["AtoB"]
    assert per_image.n == 2 and per_image.values["psnr"] is not None
    first = evaluate_translators(identity, None, a.subset([0]), b.subset([0]), paired=True, progress=False)
    second = evaluate_translators(identity, None, a.subset([1]), b.subset([1]), paired=True, progress=False)
    assert first.directions["AtoB"].values["ssim"] > 0.99 > second.directions["AtoB"].values["ssim"]
    assert first.directions["AtoB"].values["psnr"] > second.directions["AtoB"].values["psnr"] + 20


def test_fine_tuning_a_pix2pix_run_from_an_official_unet_starts_its_one_generator(tmp_path):
    """``train.init_from`` an official U-Net: batch norm's integer counters load, and a method that
    translates B→A alone takes a lone file into its one generator."""
    from cyclestyle.training.init_from import InitSource, load_initial_weights

    official = FIXTURES / "pix2pix_unet_128_ngf8_net_G.pth"
    sets = ["method=pix2pix", "model.generator=unet_128", "model.norm=batch", "model.dropout=true", "model.ngf=8",
            "model.ndf=8", "data.crop_size=128", "data.load_size=128", "eval.every=0", "pix2pix.direction=BtoA"]
    cfg = check_config(read_config(None, sets), check_paths=False)
    pix2pix = METHODS.get("pix2pix")
    networks = pix2pix.build_networks(cfg)
    line = load_initial_weights(networks, pix2pix.translators_for(cfg), str(official), InitSource(official, lone=official))
    expected = torch.load(official, weights_only=True)
    assert all(torch.equal(networks["G"].state_dict()[k], v) for k, v in expected.items()) and "G" in line
