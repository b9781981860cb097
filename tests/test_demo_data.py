"""The demo dataset: a deterministic renderer, a truly unpaired split, paired held-out truth."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclestyle.data import DataError
from cyclestyle.training.configure import load_config
from cyclestyle.demo import data as demo_data
from cyclestyle.demo.data import (
    MANIFEST,
    PHOTOS,
    SPLITS,
    TRUTH_DIR,
    boxes_overlap,
    build_demo_dataset,
    ensure_demo_dataset,
    file_digest,
    render_painting,
)
from cyclestyle.evaluation.evaluate import find_truth

REPO = Path(__file__).resolve().parents[1]
SMALL = dict(size=32, n_train=8, n_test=4)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", seed=0, **SMALL)


@pytest.fixture(scope="module")
def manifest(built) -> dict:
    return json.loads((built / MANIFEST).read_text())


def _photo_crop(size: int = 64) -> Image.Image:
    return demo_data.load_photo("chelsea.png").resize((size, size), Image.Resampling.LANCZOS, box=(100, 40, 260, 200))


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The renderer


def test_renderer_is_deterministic_and_keeps_the_size():
    photo = _photo_crop()
    first, second = render_painting(photo), render_painting(photo.copy())
    assert first.mode == "RGB" and first.size == photo.size
    assert first.tobytes() == second.tobytes()
    assert np.array_equal(np.asarray(photo), np.asarray(_photo_crop()))  # the input is left alone


def test_renderer_output_differs_clearly_from_its_input():
    for name in PHOTOS:
        img = demo_data.load_photo(name)
        photo = img.resize((64, 64), Image.Resampling.LANCZOS, box=(0, 0, min(img.size), min(img.size)))
        diff = np.abs(_pixels(render_painting(photo)) - _pixels(photo)).mean()
        assert diff > 6.0, f"{name}: mean |painting - photo| is only {diff:.2f} / 255"


def test_renderer_takes_any_mode_and_size():
    gray = _photo_crop(40).convert("L").resize((40, 24))
    out = render_painting(gray)
    assert out.mode == "RGB" and out.size == (40, 24)


# --------------------------------------------------------------------------------------------
# The split


def test_layout_counts_and_names(built):
    for split in SPLITS:
        files = sorted((built / split).glob("*.png"))
        assert len(files) == (SMALL["n_train"] if split.startswith("train") else SMALL["n_test"])
        for path in files:
            with Image.open(path) as img:
                assert img.size == (SMALL["size"], SMALL["size"]) and img.mode == "RGB"


def test_cells_tile_each_photo_and_every_split_gets_cells(manifest):
    for name in PHOTOS:
        cells = [c for c in manifest["cells"] if c["photo"] == name]
        width, height = demo_data.load_photo(name).size
        assert sum((c["box"][2] - c["box"][0]) * (c["box"][3] - c["box"][1]) for c in cells) == width * height
        for a, b in itertools.combinations(cells, 2):
            assert not boxes_overlap(a["box"], b["box"])
        assert {c["split"] for c in cells} == set(SPLITS), name


def test_no_region_is_shared_between_splits(manifest):
    images = manifest["images"]
    assert len(images) == 2 * SMALL["n_train"] + 2 * SMALL["n_test"]
    cells = {(c["photo"], c["cell"]): c for c in manifest["cells"]}
    for item in images:
        x0, y0, x1, y1 = item["box"]
        assert x1 - x0 == y1 - y0 > 0
        # Every crop lies inside one cell of its own split ...
        inside = [c for c in cells.values() if c["photo"] == item["photo"]
                  and c["box"][0] <= x0 and c["box"][1] <= y0 and x1 <= c["box"][2] and y1 <= c["box"][3]]
        assert len(inside) == 1 and inside[0]["split"] == item["split"], item
    # ... so crops of different splits never share a pixel of the same photograph.
    for a, b in itertools.combinations(images, 2):
        if a["split"] != b["split"] and a["photo"] == b["photo"]:
            assert not boxes_overlap(a["box"], b["box"]), (a, b)


def test_held_out_photos_come_with_their_true_paintings(built, manifest):
    test_a = sorted(p.name for p in (built / "testA").glob("*.png"))
    truth = sorted(p.name for p in (built / TRUTH_DIR).glob("*.png"))
    assert test_a == truth
    for name in test_a:
        with Image.open(built / "testA" / name) as photo, Image.open(built / TRUTH_DIR / name) as painting:
            assert photo.size == painting.size
            assert render_painting(photo).tobytes() == painting.convert("RGB").tobytes()
    # `cyclestyle evaluate --paired-truth ROOT/truth` matches them by name.
    assert sorted(find_truth(built / "truth", "AtoB")) == sorted(Path(n).stem for n in test_a)
    assert find_truth(built / "truth", "BtoA") == {}


def test_domain_b_images_are_paintings_of_their_recorded_crops(built, manifest):
    item = next(i for i in manifest["images"] if i["split"] == "trainB")
    photo = demo_data.load_photo(item["photo"]).resize(
        (SMALL["size"],) * 2, Image.Resampling.LANCZOS, box=tuple(item["box"]))
    if item["flip"]:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    with Image.open(built / item["file"]) as stored:
        assert stored.convert("RGB").tobytes() == render_painting(photo).tobytes()


# --------------------------------------------------------------------------------------------
# Determinism and rebuilding


def test_same_seed_same_bytes_other_seed_other_crops(built, manifest, tmp_path):
    again = build_demo_dataset(tmp_path / "again", seed=0, **SMALL)
    assert file_digest(again) == file_digest(built)
    other = build_demo_dataset(tmp_path / "other", seed=1, **SMALL)
    assert file_digest(other) != file_digest(built)
    boxes = lambda m: [(i["photo"], tuple(i["box"])) for i in m["images"]]  # noqa: E731
    assert boxes(json.loads((other / MANIFEST).read_text())) != boxes(manifest)


def test_rebuild_replaces_an_earlier_build_and_ensure_reuses(tmp_path):
    root = build_demo_dataset(tmp_path / "d", size=16, n_train=6, n_test=3)
    root = build_demo_dataset(root, size=16, n_train=3, n_test=2)
    assert len(list((root / "trainA").glob("*.png"))) == 3
    assert len(list((root / TRUTH_DIR).glob("*.png"))) == 2
    stamp = (root / MANIFEST).stat().st_mtime_ns
    assert ensure_demo_dataset(root, size=16, n_train=3, n_test=2) == root
    assert (root / MANIFEST).stat().st_mtime_ns == stamp  # reused, not rebuilt
    ensure_demo_dataset(root, size=16, n_train=4, n_test=2)
    assert len(list((root / "trainA").glob("*.png"))) == 4


def test_refuses_to_write_over_other_data(tmp_path):
    (tmp_path / "mine" / "trainA").mkdir(parents=True)
    (tmp_path / "mine" / "trainA" / "holiday.jpg").write_bytes(b"not ours")
    with pytest.raises(DataError, match="trainA"):
        build_demo_dataset(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "trainA" / "holiday.jpg").read_bytes() == b"not ours"


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="size"):
        build_demo_dataset(tmp_path / "x", size=4)


# --------------------------------------------------------------------------------------------
# The config that learns it


def test_demo_config_matches_the_default_build():
    cfg = load_config(REPO / "configs" / "demo.yaml", check_paths=False)
    assert cfg.data.root == "data/demo" and cfg.output_dir == "runs/demo/run"
    assert cfg.data.num_workers <= 1
    # Images are built at the training size, so training crops and evaluation see them whole.
    import inspect

    default_size = inspect.signature(build_demo_dataset).parameters["size"].default
    assert cfg.data.crop_size == default_size and cfg.data.preprocess == "crop"
    assert cfg.train.max_steps is not None


def test_demo_config_reads_a_built_set_whole(tmp_path):
    import random

    from cyclestyle.data import open_domains, preprocess

    root = build_demo_dataset(tmp_path / "demo", size=64, n_train=2, n_test=1)
    cfg = load_config(REPO / "configs" / "demo.yaml", [f"data.root={root}", f"output_dir={tmp_path / 'run'}",
                                                        f"eval.paired_truth={root / 'truth'}"])
    train_a, train_b = open_domains(cfg.data, cfg.data.train_split)
    assert (len(train_a), len(train_b)) == (2, 2)
    image = train_b.load(0)
    tensor = preprocess(image, cfg.data, random.Random(0), train=False)
    assert tensor.shape == (3, 64, 64)
    # With preprocess "crop" at the built size, training sees every pixel of the stored image.
    expected = np.asarray(image, dtype=np.float32) / 127.5 - 1
    assert np.allclose(tensor.permute(1, 2, 0).numpy(), expected, atol=1e-6)
