"""Tests for cyclestyle.data: every image file and dataset is made here, tiny, in tmp_path."""

from __future__ import annotations

import dataclasses
import io
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclestyle.config import DataConfig
from cyclestyle.data import (
    IMAGE_EXTENSIONS,
    DataError,
    DataWarning,
    FolderSource,
    HFSource,
    UnalignedDataset,
    UnreadableImageError,
    image_to_tensor,
    list_images,
    load_image,
    open_domains,
    preprocess,
    tensor_to_image,
)


def noise(size: tuple[int, int] = (24, 20), seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A random image of PIL size (width, height), different for each seed."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half: its header opens (and passes the scan), decoding it fails."""
    buf = io.BytesIO()
    noise((32, 32)).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def make_folder_dataset(root: Path, n_a: int = 3, n_b: int = 2, size: tuple[int, int] = (40, 36)) -> Path:
    for domain, n in (("A", n_a), ("B", n_b)):
        folder = root / f"train{domain}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            noise(size, seed=100 * ord(domain) + k).save(folder / f"{k:02d}.png")
    return root


def small_cfg(root: Path | str = "", **changes) -> DataConfig:
    return dataclasses.replace(DataConfig(root=str(root), load_size=36, crop_size=32), **changes)


# --------------------------------------------------------------------------------------------
# list_images


def test_list_images_is_recursive_sorted_and_filters_by_extension(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ["b.png", "a.JPG", "sub/c.jpeg", "sub/deeper/d.webp", "e.TIFF"]:
        noise((4, 4)).save(tmp_path / name, format="PNG")  # content format is irrelevant here
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "f.gif").write_bytes(b"GIF89a")
    found = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.JPG",
        "b.png",
        "e.TIFF",
        "sub/c.jpeg",
        "sub/deeper/d.webp",
    ]
    assert set(IMAGE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def test_list_images_errors_name_the_folder(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        list_images(tmp_path / "empty")
    message = str(err.value)
    assert str(tmp_path / "empty") in message and ".png" in message and ".tiff" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# load_image


def test_load_image_grayscale_and_channels(tmp_path):
    Image.new("L", (6, 5), 77).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png")
    assert rgb.mode == "RGB" and rgb.size == (6, 5) and rgb.getpixel((0, 0)) == (77, 77, 77)
    gray = load_image(tmp_path / "g.png", channels=1)
    assert gray.mode == "L" and gray.getpixel((0, 0)) == 77
    Image.new("RGB", (3, 3), (200, 10, 10)).save(tmp_path / "c.png")
    assert load_image(tmp_path / "c.png", channels=1).mode == "L"
    Image.new("1", (3, 3), 1).save(tmp_path / "bw.png")
    assert load_image(tmp_path / "bw.png").getpixel((1, 1)) == (255, 255, 255)
    with pytest.raises(ValueError):
        load_image(tmp_path / "g.png", channels=2)


def test_load_image_alpha_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))  # transparent black ...
    rgba.putpixel((1, 0), (255, 0, 0, 255))  # ... next to opaque red
    rgba.save(tmp_path / "rgba.png")
    img = load_image(tmp_path / "rgba.png")
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 255, 255) and img.getpixel((1, 0)) == (255, 0, 0)

    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (40, 255))
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", channels=1).getpixel((0, 0)) == 255
    assert load_image(tmp_path / "la.png", channels=1).getpixel((1, 0)) == 40


def test_load_image_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (2, 1), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255])
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "t.png", transparency=0)
    pal.save(tmp_path / "o.png")
    assert load_image(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)
    assert load_image(tmp_path / "t.png").getpixel((1, 0)) == (0, 0, 255)
    assert load_image(tmp_path / "o.png").getpixel((0, 0)) == (0, 0, 0)
    pal.save(tmp_path / "t.gif", transparency=0)
    assert load_image(tmp_path / "t.gif").getpixel((0, 0)) == (255, 255, 255)


def test_load_image_cmyk(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    img = load_image(tmp_path / "cmyk.tif")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 0, 0)


def test_load_image_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    img = load_image(tmp_path / "deep.png", channels=1)
    assert img.mode == "L"
    low, mid, high = np.asarray(img)[0]
    assert low == 0 and abs(int(mid) - 128) <= 1 and high == 255
    # Mode "I" (32-bit) with the same range, and big-endian 16-bit.
    Image.fromarray(values.astype(np.int32)).save(tmp_path / "deep.tif")
    assert Image.open(tmp_path / "deep.tif").mode == "I"
    assert np.asarray(load_image(tmp_path / "deep.tif", channels=1))[0].tolist() == [0, 128, 255]
    big = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
    assert np.asarray(load_image(_tiff_bytes(big), channels=1))[0].tolist() == [0, 128, 255]


def _tiff_bytes(img: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    buf.seek(0)
    return buf


def test_load_image_float(tmp_path):
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert unit.mode == "F"
    unit.save(tmp_path / "f.tif")
    assert np.asarray(load_image(tmp_path / "f.tif", channels=1))[0].tolist() == [0, 128, 255]


def test_load_image_honours_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    noise((20, 10)).save(tmp_path / "rot.jpg", exif=exif)
    img = load_image(tmp_path / "rot.jpg")
    assert img.size == (10, 20)


def test_load_image_reads_file_objects(tmp_path):
    buf = io.BytesIO()
    noise((5, 4)).save(buf, "PNG")
    buf.seek(0)
    assert load_image(buf).size == (5, 4)


@pytest.mark.parametrize("kind", ["truncated", "text", "missing", "empty"])
def test_unreadable_images_raise_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "truncated":
        truncated_jpeg(path)
    elif kind == "text":
        path.write_text("this is not a JPEG\n")
    elif kind == "empty":
        path.write_bytes(b"")
    with pytest.raises(UnreadableImageError) as err:
        load_image(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert err.value.source == str(path)
    assert isinstance(err.value, DataError)
    again = pickle.loads(pickle.dumps(err.value))
    assert str(again) == str(err.value) and again.source == err.value.source


# --------------------------------------------------------------------------------------------
# Tensors


def test_tensor_round_trip():
    img = noise((7, 5))
    t = image_to_tensor(img)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    assert np.array_equal(np.asarray(tensor_to_image(t)), np.asarray(img))
    gray = noise((7, 5), mode="L")
    t1 = image_to_tensor(gray)
    assert t1.shape == (1, 5, 7)
    back = tensor_to_image(t1)
    assert back.mode == "L" and np.array_equal(np.asarray(back), np.asarray(gray))
    assert image_to_tensor(Image.new("L", (1, 1), 0)).item() == -1.0
    assert image_to_tensor(Image.new("L", (1, 1), 255)).item() == 1.0
    assert tensor_to_image(torch.full((3, 2, 2), 5.0)).getpixel((0, 0)) == (255, 255, 255)  # clamped
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(1, 3, 4, 4))


# --------------------------------------------------------------------------------------------
# open_domains: folders


def test_open_domains_folder(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", n_a=3, n_b=2)
    a, b = open_domains(small_cfg(root), "train")
    assert (len(a), len(b)) == (3, 2)
    assert a.name == str(root / "trainA")
    assert a.describe(0) == str(root / "trainA" / "00.png")
    assert a.load(0).mode == "RGB" and a.load(0, channels=1).mode == "L"
    gray_a, _ = open_domains(small_cfg(root), "train", channels=1)
    assert gray_a.load(0).mode == "L"
    assert pickle.loads(pickle.dumps(a)).describe(2) == a.describe(2)


def test_open_domains_skips_unreadable_files_with_warnings(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", n_a=3, n_b=2)
    bad = root / "trainA" / "01_bad.jpg"
    bad.write_text("garbage")
    with pytest.warns(DataWarning) as record:
        a, b = open_domains(small_cfg(root), "train")
    messages = [str(w.message) for w in record]
    assert len(a) == 3 and len(b) == 2
    assert str(bad) not in [a.describe(i) for i in range(len(a))]
    assert sum(str(bad) in m for m in messages) == 1
    assert f"skipped 1 of 4 images in {root / 'trainA'}" in messages


def test_open_domains_strict_raises(tmp_path):
    root = make_folder_dataset(tmp_path / "ds")
    bad = root / "trainB" / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(UnreadableImageError, match="bad.png"):
        open_domains(small_cfg(root, strict_images=True), "train")


def test_open_domains_empty_or_all_bad_domain(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", n_b=0)
    with pytest.raises(DataError, match="trainB"):
        open_domains(small_cfg(root), "train")
    (root / "trainB" / "x.png").write_text("nope")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="no readable images in .*trainB"):
        open_domains(small_cfg(root), "train")
    with pytest.raises(DataError, match="testA"):
        open_domains(small_cfg(root), "test")


# --------------------------------------------------------------------------------------------
# preprocess


@pytest.mark.parametrize(
    "mode, size, expected",
    [
        ("resize_and_crop", (50, 40), (32, 32)),
        ("scale_width_and_crop", (72, 40), (32, 32)),
        ("crop", (50, 40), (32, 32)),
        ("none", (97, 131), (132, 96)),  # each side to the nearest multiple of 4 (the reference's)
        ("none", (2, 3), (4, 4)),  # never below 4
        ("none", (40, 36), (36, 40)),  # already multiples of 4: untouched
        ("scale_width", (72, 40), (32, 36)),  # width to load_size 36; height 20 raised to crop_size 32
        ("scale_width", (36, 98), (100, 36)),  # load_size wide and taller than the crop: kept, padded 98 -> 100
    ],
)
def test_preprocess_shapes(mode, size, expected):
    cfg = small_cfg(preprocess=mode)
    for train in (True, False):
        t = preprocess(noise(size), cfg, random.Random(0), train=train)
        assert t.shape == (3, *expected) and t.dtype == torch.float32
        assert t.min() >= -1 and t.max() <= 1


def test_preprocess_none_resizes_to_multiples_of_4_as_the_reference():
    img = noise((97, 131))
    t = preprocess(img, small_cfg(preprocess="none", flip=False), random.Random(0))
    # __make_power_2(base=4): round(97 / 4) * 4 = 96, round(131 / 4) * 4 = 132, bicubic.
    assert torch.equal(t, image_to_tensor(img.resize((96, 132), Image.Resampling.BICUBIC)))


def test_uncropped_modes_pad_by_reflection_to_the_generators_multiple():
    img = noise((97, 131))
    for mode, resized in (("none", img.resize((96, 132), Image.Resampling.BICUBIC)),
                          ("scale_width", img.resize((40, int(40 * 131 / 97)), Image.Resampling.BICUBIC))):
        cfg = small_cfg(preprocess=mode, load_size=40, crop_size=24, flip=False)
        t = preprocess(img, cfg, random.Random(0), size_multiple=16)  # a U-Net's 2^depth, say
        w, h = resized.size
        assert t.shape[-2] % 16 == 0 and t.shape[-1] % 16 == 0 and t.shape[-2] >= h and t.shape[-1] >= w
        assert torch.equal(t[:, :h, :w], image_to_tensor(resized))
        assert torch.equal(t[:, h, :w], t[:, h - 2, :w])  # reflected about the last row


def test_scale_width_keeps_aspect():
    cfg = small_cfg(preprocess="scale_width_and_crop", load_size=40, crop_size=8, flip=False)
    # 80x200 -> 40x100; the centred 8x8 crop then comes from a known place.
    img = noise((80, 200))
    t = preprocess(img, cfg, random.Random(0), train=False)
    resized = img.resize((40, 100), Image.Resampling.BICUBIC)
    assert torch.equal(t, image_to_tensor(resized.crop((16, 46, 24, 54))))


def test_preprocess_is_deterministic_given_the_rng_seed():
    cfg = small_cfg()
    img = noise((50, 40))
    outputs = [preprocess(img, cfg, random.Random(seed)) for seed in range(8)]
    again = [preprocess(img, cfg, random.Random(seed)) for seed in range(8)]
    assert all(torch.equal(x, y) for x, y in zip(outputs, again))
    assert len({o.numpy().tobytes() for o in outputs}) > 1


def test_preprocess_flip_uses_the_rng():
    cfg = small_cfg(preprocess="none")
    img = noise((8, 8))
    base = image_to_tensor(img)
    flipped = [not torch.equal(preprocess(img, cfg, random.Random(s)), base) for s in range(20)]
    assert any(flipped) and not all(flipped)
    for s in range(20):
        expect = random.Random(s).random() < 0.5
        assert flipped[s] == expect
        assert torch.equal(preprocess(img, cfg, random.Random(s)), preprocess(img, cfg, random.Random(s)))
    no_flip = small_cfg(preprocess="none", flip=False)
    assert all(torch.equal(preprocess(img, no_flip, random.Random(s)), base) for s in range(5))
    assert all(torch.equal(preprocess(img, cfg, random.Random(s), train=False), base) for s in range(5))


def test_preprocess_eval_crop_is_centred():
    cfg = small_cfg(preprocess="crop", crop_size=4)
    img = noise((10, 8))
    t = preprocess(img, cfg, random.Random(0), train=False)
    assert torch.equal(t, image_to_tensor(img.crop((3, 2, 7, 6))))


def test_small_image_is_resized_up_with_a_warning():
    cfg = small_cfg(preprocess="crop", crop_size=32)
    with pytest.warns(DataWarning, match=r"tiny\.png is 20x10.*resized up to 64x32"):
        t = preprocess(noise((20, 10)), cfg, random.Random(0), source="tiny.png")
    assert t.shape == (3, 32, 32)


# --------------------------------------------------------------------------------------------
# UnalignedDataset


def test_unaligned_dataset_is_deterministic_per_key(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", n_a=3, n_b=2, size=(64, 64))
    cfg = small_cfg(root, load_size=48, crop_size=32)
    dataset = UnalignedDataset(*open_domains(cfg, "train"), cfg)
    assert (dataset.n_a, dataset.n_b, len(dataset)) == (3, 2, 3)
    item = dataset[(1, 0, 7)]
    assert set(item) == {"A", "B"} and item["A"].shape == (3, 32, 32) and item["B"].shape == (3, 32, 32)
    again = dataset[(1, 0, 7)]
    assert torch.equal(item["A"], again["A"]) and torch.equal(item["B"], again["B"])
    others = [dataset[(1, 0, seed)]["A"] for seed in range(8, 16)]
    assert any(not torch.equal(item["A"], o) for o in others)
    # A and B draw from different streams: same image in both domains, different crops.
    twin = UnalignedDataset(FolderSource(root / "trainA"), FolderSource(root / "trainA"), cfg)
    pairs = [twin[(0, 0, seed)] for seed in range(8)]
    assert any(not torch.equal(p["A"], p["B"]) for p in pairs)
    # Indices wrap around, and the dataset survives pickling (DataLoader workers).
    assert torch.equal(dataset[(4, 2, 7)]["A"], item["A"])
    copy = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(copy[(1, 0, 7)]["B"], item["B"])


def test_unaligned_dataset_grayscale(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", size=(36, 36))
    cfg = small_cfg(root)
    dataset = UnalignedDataset(*open_domains(cfg, "train", channels=1), cfg, channels=1)
    assert dataset[(0, 0, 0)]["A"].shape == (1, 32, 32)


def test_grayscale_a_and_colour_b_load_with_their_own_channels(tmp_path, hf):
    """A model of in_channels 1 and out_channels 3 reads A in gray and B in colour, from folders
    and from an HF table; B was read with A's channels."""
    root = make_folder_dataset(tmp_path / "ds", size=(36, 36))
    cfg = small_cfg(root)
    a, b = open_domains(cfg, "train", channels=1, channels_b=3)
    assert (a.load(0).mode, b.load(0).mode) == ("L", "RGB")
    item = UnalignedDataset(a, b, cfg, channels=1, channels_b=3)[(0, 0, 0)]
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (3, 32, 32)
    hf.DatasetDict({"train": paired_table(hf, 2, 2, 2)}).save_to_disk(str(tmp_path / "saved"))
    a, b = open_domains(small_cfg(tmp_path / "saved", format="hf"), "train", channels=3, channels_b=1)
    assert (a.load(0).mode, b.load(0).mode) == ("RGB", "L")


def test_unaligned_dataset_falls_back_on_a_file_broken_after_the_scan(tmp_path):
    root = make_folder_dataset(tmp_path / "ds", n_a=3, n_b=2, size=(36, 36))
    broken = truncated_jpeg(root / "trainA" / "01_broken.jpg")  # passes the header scan
    cfg = small_cfg(root, flip=False)
    a, b = open_domains(cfg, "train")
    assert len(a) == 4
    index = [a.describe(i) for i in range(4)].index(str(broken))
    dataset = UnalignedDataset(a, b, cfg)
    with pytest.warns(DataWarning, match="01_broken.jpg"):
        item = dataset[(index, 0, 3)]
    assert torch.equal(item["A"], dataset[(index + 1, 0, 3)]["A"])
    strict = UnalignedDataset(a, b, small_cfg(root, strict_images=True))
    with pytest.raises(UnreadableImageError, match="01_broken.jpg"):
        strict[(index, 0, 3)]


# --------------------------------------------------------------------------------------------
# open_domains: Hugging Face datasets


@pytest.fixture
def hf(tmp_path, monkeypatch):
    """The `datasets` module, with its cache in tmp_path so that tests leave nothing behind."""
    import datasets  # a hard dependency: a missing install must fail, not skip
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return datasets


def paired_table(hf, n_a: int, n_b: int, rows: int, seed: int = 0):
    """A huggan-style table: imageA and imageB side by side, each domain repeated to fill ``rows``."""
    a = [noise((20, 20), seed=seed + k) for k in range(n_a)]
    b = [noise((20, 20), seed=seed + 1000 + k) for k in range(n_b)]
    features = hf.Features({"imageA": hf.Image(), "imageB": hf.Image()})
    return hf.Dataset.from_dict(
        {"imageA": [a[k % n_a] for k in range(rows)], "imageB": [b[k % n_b] for k in range(rows)]},
        features=features,
    )


def test_hf_save_to_disk_deduplicates_repeated_images(tmp_path, hf):
    splits = hf.DatasetDict({"train": paired_table(hf, 5, 3, 5), "test": paired_table(hf, 2, 2, 2, seed=50)})
    splits.save_to_disk(str(tmp_path / "saved"))
    cfg = small_cfg(tmp_path / "saved", format="hf")
    a, b = open_domains(cfg, "train")
    assert (len(a), len(b)) == (5, 3)
    assert a.name == f"{tmp_path / 'saved'}[train].imageA"
    assert b.describe(2) == f"{tmp_path / 'saved'}[train].imageB row 2"
    assert np.array_equal(np.asarray(b.load(1)), np.asarray(noise((20, 20), seed=1001)))
    assert b.load(1, channels=1).mode == "L"
    test_a, test_b = open_domains(cfg, "test")
    assert (len(test_a), len(test_b)) == (2, 2)
    # Picklable, and usable in the dataset.
    copy = pickle.loads(pickle.dumps(a))
    assert np.array_equal(np.asarray(copy.load(4)), np.asarray(a.load(4)))
    item = UnalignedDataset(a, b, cfg)[(4, 2, 0)]
    assert item["A"].shape == (3, 32, 32)


def test_hf_skips_empty_cells_and_unreadable_bytes(tmp_path, hf):
    good = [noise((20, 20), seed=k) for k in range(3)]
    buf = io.BytesIO()
    good[0].save(buf, "PNG")
    table = hf.Dataset.from_dict(
        {
            "imageA": [{"bytes": buf.getvalue(), "path": None}, None, {"bytes": b"junk", "path": None}],
            "imageB": good,
        },
        features=hf.Features({"imageA": hf.Image(), "imageB": hf.Image()}),
    )
    hf.DatasetDict({"train": table}).save_to_disk(str(tmp_path / "saved"))
    with pytest.warns(DataWarning) as record:
        a, b = open_domains(small_cfg(tmp_path / "saved", format="hf"), "train")
    assert (len(a), len(b)) == (1, 3)
    messages = [str(w.message) for w in record]
    assert any("[train].imageA row 2" in m for m in messages)
    assert any("skipped 1 of 2 images in" in m for m in messages)


def test_hf_parquet_folder(tmp_path, hf):
    folder = tmp_path / "pq" / "data"
    folder.mkdir(parents=True)
    paired_table(hf, 4, 2, 4).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    paired_table(hf, 2, 1, 2, seed=9).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    cfg = small_cfg(tmp_path / "pq", format="hf")
    a, b = open_domains(cfg, "train")
    assert (len(a), len(b)) == (4, 2)
    test_a, test_b = open_domains(cfg, "test")
    assert (len(test_a), len(test_b)) == (2, 1)
    assert test_a.load(0).size == (20, 20)


def test_hf_imagefolder_with_label_column(tmp_path, hf):
    root = tmp_path / "tree"
    for domain, n in (("A", 3), ("B", 2)):
        (root / "train" / domain).mkdir(parents=True)
        for k in range(n):
            noise((20, 20), seed=10 * ord(domain) + k).save(root / "train" / domain / f"{k}.png")
    cfg = small_cfg(root, format="hf", label_column="label")
    a, b = open_domains(cfg, "train")
    assert (len(a), len(b)) == (3, 2)
    assert a.name == f"{root}[train].image[label=A]"
    loaded = sorted(np.asarray(b.load(i)).tobytes() for i in range(2))
    assert loaded == sorted(np.asarray(noise((20, 20), seed=10 * ord("B") + k)).tobytes() for k in range(2))
    with pytest.raises(DataError, match=r"label == 'C'.*values present: A, B"):
        open_domains(dataclasses.replace(cfg, label_b="C"), "train")


def test_hf_label_column_with_plain_values(tmp_path, hf):
    images = [noise((20, 20), seed=k) for k in range(5)]
    table = hf.Dataset.from_dict(
        {"img": images, "domain": [0, 1, 0, 1, 0]},
        features=hf.Features({"img": hf.Image(), "domain": hf.Value("int64")}),
    )
    hf.DatasetDict({"train": table}).save_to_disk(str(tmp_path / "saved"))
    cfg = small_cfg(tmp_path / "saved", format="hf", label_column="domain", label_a="0", label_b="1", image_column="img")
    a, b = open_domains(cfg, "train")
    assert (len(a), len(b)) == (3, 2)
    assert isinstance(a, HFSource) and b.describe(1) == f"{tmp_path / 'saved'}[train].img[domain=1] row 3"


def test_hf_missing_column_and_split(tmp_path, hf):
    hf.DatasetDict({"train": paired_table(hf, 2, 2, 2)}).save_to_disk(str(tmp_path / "saved"))
    cfg = small_cfg(tmp_path / "saved", format="hf")
    with pytest.raises(DataError, match=r"no column 'photo' \(columns: imageA, imageB\)"):
        open_domains(dataclasses.replace(cfg, column_b="photo"), "train")
    with pytest.raises(DataError, match=r"no column 'label'"):
        open_domains(dataclasses.replace(cfg, label_column="label", image_column="imageA"), "train")
    with pytest.raises(DataError, match=r"split 'validation' not found .*\(splits: train\)"):
        open_domains(cfg, "validation")


def test_hf_unreachable_hub_id_is_one_line(hf, monkeypatch):
    import huggingface_hub.constants

    # Offline mode makes the hub lookup fail at once instead of retrying on the network. The
    # variables are read at import time, so the module constants are set as well.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(hf.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as err:
        open_domains(small_cfg("cyclestyle-tests/no-such-dataset", format="hf"), "train")
    message = str(err.value)
    assert "\n" not in message
    assert "cyclestyle-tests/no-such-dataset" in message
    assert "could not fetch" in message and "save_to_disk" in message and "data.root" in message


@pytest.mark.parametrize("root", ["./horse2zebra", "../data/horse2zebra", "~/horse2zebra", "data/sets/horse2zebra",
                                  ".hidden/horse2zebra"])
def test_a_missing_path_that_looks_local_is_an_error_never_a_download(root, hf, monkeypatch):
    """A typo in a local path must not turn into a Hub download (issue 12)."""
    monkeypatch.setattr(hf, "load_dataset", lambda *a, **k: pytest.fail(f"fetched {a} from the Hub"))
    with pytest.raises(DataError, match=f"data.root {root} does not exist \\(and is a path, not a Hub id\\)"):
        open_domains(small_cfg(root, format="hf"), "train")


def test_a_hub_id_says_that_the_hub_is_used(hf, monkeypatch):
    monkeypatch.setattr(hf, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.warns(UserWarning, match="the Hugging Face Hub dataset huggan/horse2zebra is used"):
        with pytest.raises(DataError, match="could not fetch"):
            open_domains(small_cfg("huggan/horse2zebra", format="hf"), "train")
