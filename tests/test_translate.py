"""Tests for cyclestyle.inference (translate and tiling): tiny random generators, images made here, CPU, a few seconds."""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cyclestyle import cli
from cyclestyle.config import ModelConfig
from cyclestyle.data import DataError, image_to_tensor, load_image
from cyclestyle.inference import translate
from cyclestyle.inference.files import collect_inputs
from cyclestyle.inference.tiling import (
    TilingWarning,
    _GlobalNorm,
    _layout,
    _partition,
    plan_tiles,
    receptive_radius,
    tiled_translate,
)
from cyclestyle.inference.translate import translate_image, translate_tensor
from cyclestyle.models import ResnetGenerator
from cyclestyle.models.weights import save_weights, weights_metadata

from .conftest import REPO

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread (conftest)

MODEL = ModelConfig(ngf=8, n_blocks=2, init_gain=0.03)  # outputs spread over most of [-1, 1]


def make_generator(seed: int = 0, **changes) -> ResnetGenerator:
    torch.manual_seed(seed)
    m = dataclasses.replace(MODEL, **changes)
    return ResnetGenerator(m.in_channels, m.out_channels, m.ngf, m.n_blocks, m.norm, m.dropout, m.upsample,
                           m.init_gain).eval()


@pytest.fixture(scope="module")
def generator() -> ResnetGenerator:
    return make_generator()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished run as `train` leaves it: G_A and G_B with their model config in the metadata."""
    run = tmp_path_factory.mktemp("run")
    meta = weights_metadata(dataclasses.asdict(MODEL), 10)
    save_weights(run / "G_A.safetensors", make_generator(0).state_dict(), meta)
    save_weights(run / "G_B.safetensors", make_generator(1).state_dict(), meta)
    return run


def assert_same_up_to_rounding(a: np.ndarray, b: np.ndarray) -> None:
    """Two 8-bit images from two computations of the same outputs (another batch layout, another
    code path): float noise may move a value across a rounding boundary, never further."""
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).sum())


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """H×W×3 uint8: a dark left third, a bright right part, gradients, stripes and noise, so that
    the statistics of one tile are far from the whole image's."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    img = np.stack([0.2 + 0.6 * x, 0.5 + 0.3 * np.sin(9 * y), 0.5 + 0.4 * np.cos(7 * x + 3 * y)], -1)
    img[:, : width // 3] *= 0.25
    img += rng.normal(0, 0.05, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def as_tensor(array: np.ndarray) -> torch.Tensor:
    return image_to_tensor(Image.fromarray(array)).unsqueeze(0)


def translate_cli(*args: str) -> int:
    return cli.main(["translate", *args])


# --------------------------------------------------------------------------------------------
# Receptive field and tile geometry


def test_receptive_radius_bounds_the_dependence_exactly():
    """With the norm statistics fixed the network is local: a one-pixel change reaches exactly
    `radius` pixels (measured in float64 before the tanh), never further."""
    for upsample, expected in (("transpose", 28), ("resize_conv", 31)):
        g = make_generator(0, upsample=upsample, init_gain=0.3).double()
        g.head[-1] = nn.Identity()  # tanh saturates; the dependence is what is measured here
        layout = _layout(g)
        assert layout.radius == expected
        x = torch.randn(1, 3, 96, 96, dtype=torch.float64)
        reach = 0
        for py, px in ((48, 48), (49, 50), (50, 51), (51, 49)):  # every phase of the 1/4 grid
            x2 = x.clone()
            x2[0, :, py, px] += 1.0
            with _GlobalNorm(layout.norms) as norm, torch.inference_mode():
                for k, m in enumerate(layout.norms):
                    norm.set(k, torch.zeros(m.num_features), torch.ones(m.num_features), None, "cpu", torch.float64)
                changed = (g(x2) - g(x)).abs().amax(1)[0] > 0
            ys, xs = torch.nonzero(changed, as_tuple=True)
            reach = max(reach, int((ys - py).abs().max()), int((xs - px).abs().max()))
        assert reach == expected
    assert receptive_radius(ResnetGenerator(ngf=4, n_blocks=9)) == 84  # the paper's generator
    assert receptive_radius(make_generator()) == 28


def test_partition_cores_cover_the_side_and_windows_fit_the_tile():
    for length in range(4, 1200, 4):
        for (tile, halo), shrink in itertools.product(((112, 36), (512, 92), (224, 92), (512, 4)), (True, False)):
            cores, side = _partition(length, tile, halo, 4, shrink)
            assert shrink or side == min(length, tile)
            assert cores[0][0] == 0 and cores[-1][1] == length
            assert all(b == c for (_, b), (c, _) in zip(cores, cores[1:]))
            assert side == min(length, side) <= tile and side % 4 == 0
            for a, b in cores:
                assert a % 4 == 0 and b % 4 == 0
                assert min(length, b + halo) - max(0, a - halo) <= side  # the window holds core and halo
                assert len(cores) == 1 or b - a >= 16  # room for the two blend bands
            if len(cores) > 1:  # and no fewer windows would do
                assert (len(cores) - 1) * tile - 2 * halo * (len(cores) - 2) < length


def test_plan_raises_small_overlap_and_tile_with_a_note(generator):
    plan = plan_tiles(generator, 512, 32)
    assert (plan.tile, plan.overlap, plan.radius) == (512, 28 + 8, 28)
    assert len(plan.notes) == 1 and "overlap 32 px" in plan.notes[0] and "using 36" in plan.notes[0]
    assert plan_tiles(generator, 512, 64).overlap == 64 and not plan_tiles(generator, 512, 64).notes
    small = plan_tiles(generator, 50)
    assert small.tile == 2 * 36 + 40 and "tile 50" in small.notes[0]
    with pytest.warns(TilingWarning, match="overlap 8"):
        tiled_translate(generator, torch.zeros(1, 3, 16, 16), 512, overlap=8)


# --------------------------------------------------------------------------------------------
# Tiles equal the full frame


def test_tiled_equals_full_frame_and_naive_tiles_do_not(generator):
    x = as_tensor(scene(200, 264))
    with torch.inference_mode():
        full = translate_tensor(generator, x)
    plan = plan_tiles(generator, 112)
    assert len(_partition(200, plan.tile, plan.overlap, 4)[0]) * len(_partition(264, plan.tile, plan.overlap, 4)[0]) >= 12
    tiled = tiled_translate(generator, x, 112)
    diff = (tiled - full).abs() / 2  # on the [0, 1] scale
    assert diff.mean() < 1 / 255 and diff.max() < 8 / 255  # the requirement
    assert diff.max() < 1e-4  # and in fact equal up to float rounding
    norms = [m for m in generator.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in norms)  # the hooks are gone
    naive = tiled_translate(generator, x, 112, global_stats=False)  # each tile its own statistics
    naive_diff = (naive - full).abs() / 2
    assert naive_diff.mean() > 1 / 255 and naive_diff.max() > 8 / 255


def test_tiled_batch_and_odd_sizes_come_back_at_their_size(generator):
    for h, w in ((97, 131), (131, 97)):
        x = torch.stack([as_tensor(scene(h, w, seed))[0] for seed in (1, 2)])
        with torch.inference_mode():
            full = translate_tensor(generator, x)
        tiled = tiled_translate(generator, x, 112)
        assert tiled.shape == full.shape == (2, 3, h, w)
        assert (tiled - full).abs().max() < 1e-4


def test_tiles_of_generators_without_instance_norm_need_no_statistics():
    x = as_tensor(scene(100, 180, seed=7))
    for norm in ("batch", "none"):
        g = make_generator(3, norm=norm, init_gain=0.05)
        assert _layout(g).norms == ()
        with torch.inference_mode():
            full = translate_tensor(g, x)
        assert (tiled_translate(g, x, 112) - full).abs().max() < 1e-4


def test_translate_image_tiled_matches_full_frame_pixels(generator):
    img = Image.fromarray(scene(150, 230, seed=3))
    full = translate_image(generator, img, tile=0)
    tiled = translate_image(generator, img, tile=112)
    assert tiled.size == full.size == (230, 150) and tiled.mode == "RGB"
    diff = np.abs(np.asarray(full, dtype=int) - np.asarray(tiled, dtype=int))
    assert diff.max() <= 1 and diff.mean() < 0.01  # a rounding flip at most


def test_translate_image_tiles_automatically_above_the_limit(generator, monkeypatch):
    img = Image.fromarray(scene(120, 180, seed=4))
    full = np.asarray(translate_image(generator, img), dtype=int)  # under the limit: full frame
    calls = []
    real = translate._run_tiled
    monkeypatch.setattr(translate, "_run_tiled", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    monkeypatch.setattr(translate, "AUTO_TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(translate, "DEFAULT_TILE", 112)
    auto = np.asarray(translate_image(generator, img), dtype=int)
    assert calls and np.abs(auto - full).max() <= 1


# --------------------------------------------------------------------------------------------
# Image modes


def test_translate_image_puts_the_original_alpha_back(generator):
    rgb = scene(60, 150, seed=5)
    alpha = np.tile(np.linspace(0, 255, 150).astype(np.uint8), (60, 1))
    img = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    out = translate_image(generator, img)
    assert out.mode == "RGBA" and out.size == (150, 60)
    assert np.array_equal(np.asarray(out.getchannel("A")), alpha)
    white = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img).convert("RGB")
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(translate_image(generator, white)))
    tiled = translate_image(generator, img, tile=112)  # alpha survives tiling too
    assert np.array_equal(np.asarray(tiled.getchannel("A")), alpha)


def test_translate_image_takes_grayscale_cmyk_and_palette(generator):
    rgb = Image.fromarray(scene(40, 52, seed=6))
    for img in (rgb.convert("L"), rgb.convert("CMYK"), rgb.convert("P"), rgb.convert("LA")):
        out = translate_image(generator, img)
        assert out.size == (52, 40)
        assert out.mode == ("RGBA" if img.mode == "LA" else "RGB")
    gray = make_generator(2, in_channels=1, out_channels=1)
    out = translate_image(gray, rgb.convert("RGBA"))
    assert out.mode == "LA" and out.size == (52, 40)


# --------------------------------------------------------------------------------------------
# Inputs


def test_collect_inputs_files_folders_and_globs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for p in ("d/a.png", "d/sub/b.jpg", "c.png", "e.jpg", "notes.txt"):
        (tmp_path / p).write_bytes(b"x")
    found = collect_inputs([str(tmp_path / "d"), str(tmp_path / "c.png"), str(tmp_path / "*.jpg"),
                            str(tmp_path / "d" / "a.png")])  # named twice: taken once
    assert [(s.relative_to(tmp_path).as_posix(), r.as_posix()) for s, r in found] == [
        ("d/a.png", "a.png"), ("d/sub/b.jpg", "sub/b.jpg"), ("c.png", "c.png"), ("e.jpg", "e.jpg")]
    with pytest.raises(DataError, match="would both be written to a.png"):
        (tmp_path / "a.png").write_bytes(b"x")
        collect_inputs([str(tmp_path / "d"), str(tmp_path / "a.png")])
    with pytest.raises(DataError, match="no such file or folder"):
        collect_inputs([str(tmp_path / "missing.png")])
    with pytest.raises(DataError, match="no image files match"):
        collect_inputs([str(tmp_path / "*.tif")])
    out = tmp_path / "d" / "out"  # an output folder inside an input folder is not read back
    out.mkdir()
    (out / "a.png").write_bytes(b"x")
    assert len(collect_inputs([str(tmp_path / "d")], exclude=out)) == 2


# --------------------------------------------------------------------------------------------
# The command


def exif_rotated_jpeg(path: Path, array: np.ndarray) -> None:
    """A JPEG stored landscape with an EXIF tag saying "rotate 90° to display" (orientation 6)."""
    img = Image.fromarray(array)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, quality=95, exif=exif)


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """in/ with nested folders, RGBA, grayscale, CMYK, an EXIF-rotated photo and a corrupt file."""
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(scene(40, 56, 1)).save(root / "plain.png")
    alpha = np.tile(np.linspace(0, 255, 56).astype(np.uint8), (40, 1))
    Image.fromarray(np.dstack([scene(40, 56, 2), alpha]), "RGBA").save(root / "sub" / "alpha.png")
    Image.fromarray(scene(40, 56, 3)).convert("L").save(root / "sub" / "gray.png")
    Image.fromarray(scene(36, 44, 4)).convert("CMYK").save(root / "sub" / "deeper" / "cmyk.jpg", quality=95)
    exif_rotated_jpeg(root / "sub" / "rotated.jpg", scene(32, 48, 5))
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def test_cli_translates_a_folder_and_reports_the_corrupt_file(run_dir, photo_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = translate_cli("--weights", str(run_dir), "--direction", "AtoB", "--output", str(out), str(photo_folder))
    stdout, stderr = capsys.readouterr()
    assert code == 1
    assert "broken.png" in stderr and stderr.count("broken.png") == 1
    assert "translated 5, skipped 0, failed 1" in stdout
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["plain.png", "sub/alpha.png", "sub/deeper/cmyk.jpg", "sub/gray.png", "sub/rotated.jpg"]
    alpha_in = Image.open(photo_folder / "sub" / "alpha.png")
    alpha_out = Image.open(out / "sub" / "alpha.png")
    assert alpha_out.mode == "RGBA" and alpha_out.size == alpha_in.size
    assert np.array_equal(np.asarray(alpha_out.getchannel("A")), np.asarray(alpha_in.getchannel("A")))
    assert Image.open(out / "sub" / "gray.png").size == (56, 40)
    cmyk = Image.open(out / "sub" / "deeper" / "cmyk.jpg")
    assert cmyk.format == "JPEG" and cmyk.mode == "RGB" and cmyk.size == (44, 36)
    assert Image.open(out / "sub" / "rotated.jpg").size == (32, 48)  # stored 48×32, displayed 32×48
    # the result is the generator's output (the G_A of the run) for the image load_image sees; the
    # command runs same-size images as one batch, which may round a value to the neighbouring level
    expected = translate_image(make_generator(0), load_image(photo_folder / "plain.png"))
    assert_same_up_to_rounding(np.asarray(Image.open(out / "plain.png")), np.asarray(expected))


def test_cli_skips_existing_outputs_unless_overwrite(run_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(scene(24, 32, k)).save(src / f"{k}.png")
    out = tmp_path / "out"
    args = ["--weights", str(run_dir), "--direction", "BtoA", "--output", str(out), str(src / "*.png")]
    assert translate_cli(*args) == 0
    first = (out / "0.png").read_bytes()
    (out / "1.png").write_bytes(b"keep me")
    capsys.readouterr()
    assert translate_cli(*args) == 0
    stdout, stderr = capsys.readouterr()
    assert "translated 0, skipped 2, failed 0" in stdout
    assert stderr.count("skipped") == 2 and "1.png" in stderr and "--overwrite" in stderr
    assert (out / "1.png").read_bytes() == b"keep me"
    assert translate_cli(*args, "--overwrite") == 0
    assert "translated 2, skipped 0, failed 0" in capsys.readouterr().out
    assert (out / "0.png").read_bytes() == first and (out / "1.png").read_bytes() != b"keep me"


def test_cli_size_resizes_the_short_side(run_dir, tmp_path, capsys):
    Image.fromarray(scene(50, 80)).save(tmp_path / "wide.png")
    Image.fromarray(scene(90, 30)).save(tmp_path / "tall.png")
    out = tmp_path / "out"
    assert translate_cli("--weights", str(run_dir / "G_A.safetensors"), "--direction", "AtoB", "--size", "40",
                         "--output", str(out), str(tmp_path / "wide.png"), str(tmp_path / "tall.png")) == 0
    assert Image.open(out / "wide.png").size == (64, 40)
    assert Image.open(out / "tall.png").size == (40, 120)


def test_cli_tiles_batches_and_matches_full_frame(run_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for k, (h, w) in enumerate([(100, 150), (100, 150), (100, 150), (60, 70), (77, 91)]):
        Image.fromarray(scene(h, w, k)).save(src / f"{k}.png")
    common = ["--weights", str(run_dir), "--direction", "AtoB", str(src)]
    assert translate_cli(*common, "--output", str(tmp_path / "one"), "--batch-size", "1") == 0
    assert translate_cli(*common, "--output", str(tmp_path / "batch"), "--batch-size", "3") == 0
    capsys.readouterr()
    assert translate_cli(*common, "--output", str(tmp_path / "tiled"), "--tile", "100") == 0
    stdout, stderr = capsys.readouterr()
    # The tile is too small for the generator's halo: one note for the whole run, not one per image.
    assert "tile 100 px" in stderr and stderr.count("cyclestyle:") == 1
    assert "translated 5" in stdout
    for k in range(5):
        one = np.asarray(Image.open(tmp_path / "one" / f"{k}.png"), dtype=int)
        assert_same_up_to_rounding(one, np.asarray(Image.open(tmp_path / "batch" / f"{k}.png"), dtype=int))
        assert np.abs(one - np.asarray(Image.open(tmp_path / "tiled" / f"{k}.png"), dtype=int)).max() <= 1


def test_cli_translates_tiny_images_padded(run_dir, tmp_path, capsys):
    """A 1×1 or 3×3 image is padded up to what the network needs and cropped back (issue 12: it
    used to fail with torch's "Expected more than 1 spatial element")."""
    Image.fromarray(scene(3, 3)).save(tmp_path / "speck.png")
    Image.fromarray(scene(1, 1)).save(tmp_path / "dot.png")
    out = tmp_path / "out"
    assert translate_cli("--weights", str(run_dir), "--direction", "AtoB", "--output", str(out),
                         str(tmp_path / "*.png")) == 0
    assert "translated 2, skipped 0, failed 0" in capsys.readouterr().out
    assert Image.open(out / "speck.png").size == (3, 3) and Image.open(out / "dot.png").size == (1, 1)


def test_cli_says_what_it_ignored_and_translates_a_still_gif_into_a_png(run_dir, tmp_path, capsys):
    """A still GIF becomes a PNG (a GIF holds 256 colours); an animated one is a clip (test_video.py).
    Other animations (a multi-page TIFF) are translated by their first frame, and say so."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(scene(24, 32, 0)).save(src / "still.gif")
    frames = [Image.fromarray(scene(24, 32, k)) for k in range(3)]
    frames[0].save(src / "pages.tif", save_all=True, append_images=frames[1:])
    (src / "notes.txt").write_text("not an image")
    (src / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "out"
    assert translate_cli("--weights", str(run_dir), "--direction", "AtoB", "--output", str(out), str(src)) == 0
    stdout, stderr = capsys.readouterr()
    assert "ignored 1 files that are not images" in stderr and "notes.txt" in stderr and ".DS_Store" not in stderr
    assert "pages.tif has 3 frames: the first is translated, into pages.tif" in stderr
    assert "translated 2," in stdout and sorted(p.name for p in out.iterdir()) == ["pages.tif", "still.png"]
    still = Image.open(src / "still.gif").convert("RGB")
    assert_same_up_to_rounding(np.asarray(Image.open(out / "still.png")),
                               np.asarray(translate_image(make_generator(0), still)))


def test_cli_errors_are_one_line(run_dir, tmp_path, capsys):
    assert translate_cli("--weights", str(tmp_path / "nope"), "--direction", "AtoB", "--output",
                         str(tmp_path / "o"), str(tmp_path)) == 1
    assert "--weights" in capsys.readouterr().err
    assert translate_cli("--weights", str(run_dir), "--direction", "AtoB", "--output", str(tmp_path / "o"),
                         str(tmp_path / "missing.png")) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.slow
def test_cli_end_to_end_in_a_subprocess(run_dir, tmp_path):
    src = tmp_path / "photos" / "set1"
    src.mkdir(parents=True)
    Image.fromarray(scene(40, 48)).save(src / "a.png")
    Image.fromarray(scene(20, 28, 1)).save(src / "b.webp")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "cyclestyle", "translate", "--weights", str(run_dir),
                           "--direction", "AtoB", "--output", str(out), "--device", "cpu", str(tmp_path / "photos")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "translated 2, skipped 0, failed 0" in done.stdout
    assert Image.open(out / "set1" / "a.png").size == (48, 40)
    assert Image.open(out / "set1" / "b.webp").format == "WEBP"


def test_cli_skips_an_image_that_resizing_would_make_huge(run_dir, tmp_path, capsys):
    """Issue 12: a 1×65535 strip at --size 256 would be 256×16.7M pixels; it is skipped by name."""
    Image.new("RGB", (2, 400), (90, 120, 200)).save(tmp_path / "strip.png")  # 200:1
    Image.fromarray(scene(20, 24)).save(tmp_path / "fine.png")
    out = tmp_path / "out"
    code = translate_cli("--weights", str(run_dir), "--direction", "AtoB", "--output", str(out), "--size", "16",
                         str(tmp_path / "*.png"))
    stdout, stderr = capsys.readouterr()
    assert code == 1 and "failed 1" in stdout and "translated 1" in stdout
    assert "strip.png is 2x400: more elongated than 64:1" in stderr and stderr.count("strip.png") == 1
    assert Image.open(out / "fine.png").size == (19, 16)


def test_resizing_is_capped():
    from cyclestyle.data import MAX_RESIZED_PIXELS, ImageSizeError, short_side_size

    assert short_side_size(300, 200, 100) == (150, 100)
    with pytest.raises(ImageSizeError, match="over the 67 Mpx cap"):
        short_side_size(1000, 20_000, 8192)  # 8192×163840
    assert short_side_size(8192, 8192, 8192)[0] ** 2 == MAX_RESIZED_PIXELS


@pytest.mark.slow
def test_cli_compiled_and_bf16_translate_what_eager_fp32_does(run_dir, tmp_path, capsys):
    """--compile on runs the generator through torch.compile (fused kernels: float noise, so a
    value may round to the neighbouring 8-bit level); --precision bf16 keeps within a few levels."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        Image.fromarray(scene(48, 64, k)).save(src / f"{k}.png")
    common = ["--weights", str(run_dir), "--direction", "AtoB", str(src)]
    assert translate_cli(*common, "--output", str(tmp_path / "eager"), "--compile", "off") == 0
    assert "compiling" not in capsys.readouterr().err
    assert translate_cli(*common, "--output", str(tmp_path / "compiled"), "--compile", "on") == 0
    assert "compiling the generator for 3 images" in capsys.readouterr().err
    assert translate_cli(*common, "--output", str(tmp_path / "bf16"), "--precision", "bf16") == 0
    for k in range(3):
        eager = np.asarray(Image.open(tmp_path / "eager" / f"{k}.png"), dtype=int)
        compiled = np.asarray(Image.open(tmp_path / "compiled" / f"{k}.png"), dtype=int)
        assert np.abs(compiled - eager).max() <= 1 and (compiled != eager).mean() < 1e-2
        bf16 = np.asarray(Image.open(tmp_path / "bf16" / f"{k}.png"), dtype=int)
        assert bf16.shape == eager.shape and np.abs(bf16 - eager).mean() < 2 and np.abs(bf16 - eager).max() <= 16


@pytest.mark.parametrize("how", ["int64", "complex64", "nan", "inf"])
def test_translate_refuses_weights_that_are_not_finite_floating_point_naming_the_file_and_tensor(tmp_path, capsys,
                                                                                                   how):
    from .test_official import spoiled

    state = make_generator(0).state_dict()
    key = "blocks.0.body.1.weight"
    state[key] = spoiled(state[key], how)
    run = tmp_path / "run"
    run.mkdir()
    weights = run / "G_A.safetensors"
    save_weights(weights, state, weights_metadata(dataclasses.asdict(MODEL), 10))
    photo = tmp_path / "photo.png"
    Image.fromarray(scene(32, 32)).save(photo)
    out = tmp_path / "out"
    assert translate_cli("--weights", str(weights), "--direction", "AtoB", "--output", str(out), str(photo)) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(weights) in err and key in err, err
    assert not (out.exists() and list(out.glob("*.png")))
