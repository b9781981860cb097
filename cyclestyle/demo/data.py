"""The built-in demo dataset: real photographs (A) and paintings of other photographs (B).

Nothing is downloaded. Domain A is crops of the colour photographs that scikit-image ships inside
its package (``skimage/data/*.png``, read straight from the installed files); domain B is crops
of *other regions* of the same photographs, turned into paintings by ``render_painting``, a
deterministic painterly renderer written here. Because the renderer is known, every held-out
photo comes with its true painting, so a translator's output can be scored exactly
(``cyclestyle evaluate --paired-truth ROOT/truth``).

The split. Every photograph is cut into a grid of cells (about 130–190 px square) and every cell
belongs to exactly one split: trainA, trainB, testA or testB. An image is a crop that lies wholly
inside one cell, so no pixel of a photograph is seen in two splits: the training domains are
truly unpaired, and the held-out photos are regions no model saw in training, in either domain.
The cells of each photograph are dealt to the splits in a seeded random order (a third each to
trainA and trainB, a sixth each to testA and testB), so every photograph, and so every kind of
content, appears in every split. ``manifest.json`` records the cells and, for every image, its
photograph, crop box and flip, which is what lets the tests check the split.

The renderer (``render_painting``) uses only local, deterministic operations, so a small
convolutional generator can learn it from unpaired data:

1. flattening: a Kuwahara-type filter that replaces each pixel by the mean of the least varied of
   the four square windows it is a corner of (softly weighted rather than a hard choice), which
   flattens textures into patches of paint while keeping edges sharp;
2. colour: in CIELAB, the lightness is softly posterised into a few bands and the chroma is
   raised and warmed, so the picture takes the reduced, saturated palette of a painting; both
   depend only on the (flattened) colour of the pixel itself;
3. outlines: the edges of the flattened picture are darkened, as an ink or brush contour;
4. relief: a faint paint relief lit from above (the vertical gradient of the lightness), which is
   unchanged by the horizontal flips of training.

A global or content-independent texture (a canvas weave at a fixed phase, a random tint per
image) would be unlearnable for a translator that only sees the photo, so there is none.

Sources. The photographs are those of scikit-image's bundled data that are real colour photos of
everyday scenes (astronaut, chelsea, coffee, rocket, motorcycle_left); motorcycle_right is left
out because it is the other half of a stereo pair (the same scene as motorcycle_left), and the
microscopy, astronomy, retina and synthetic images are not photographs of the kind paintings
show. scikit-image (BSD-licensed) documents the provenance and licence of each image in
``skimage/data/README.txt``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color

from ..data import DataError

# The bundled photographs and the grid (rows, columns) each is cut into; cells are about
# 130–190 px on a side, so a crop may span most of a cell and still be resized down to 64 px.
PHOTOS: dict[str, tuple[int, int]] = {
    "astronaut.png": (3, 3),        # 512 × 512
    "chelsea.png": (2, 3),          # 300 × 451
    "coffee.png": (3, 4),           # 400 × 600
    "rocket.jpg": (3, 4),           # 427 × 640
    "motorcycle_left.png": (3, 4),  # 500 × 741
}

SPLITS = ("trainA", "trainB", "testA", "testB")
TRUTH_DIR = "truth/AtoB"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
DATASET = "cyclestyle demo: scikit-image photographs (A) and their rendered paintings (B)"  # the manifest's "dataset"
# Left in the folder before a build writes or removes anything: only a folder that carries it (or,
# built before it existed, a manifest.json of this dataset) is ever rebuilt, and then only files
# of the demo's own names (IMAGE_NAME) are removed.
DATA_MARKER = ".cyclestyle-demo-data"
IMAGE_NAME = re.compile(r"[0-9]{4}_(?:" + "|".join(re.escape(Path(name).stem) for name in PHOTOS) + r")\.png")

# Crop sides as a fraction of the cell's shorter side (the scale jitter).
MIN_CROP_FRACTION = 0.55
MAX_CROP_FRACTION = 1.0


# --------------------------------------------------------------------------------------------
# The renderer


@dataclass(frozen=True)
class PaintingStyle:
    """The renderer's settings. The defaults are the demo's style, tuned for 64 px images."""

    radius: int = 2                 # Kuwahara window: (radius + 1)² pixels per quadrant
    sharpness: float = 8.0          # soft Kuwahara: weight ∝ variance^(-sharpness / 2)
    levels: float = 12.0            # lightness band width in L* units (0–100)
    band_softness: float = 0.25     # 0: hard steps; 0.5: no posterisation at all
    chroma_gain: float = 1.7        # saturation boost
    warm_shift: float = 12.0        # added to b* (yellow) and, half of it, to a* (red)
    edge_threshold: float = 0.06    # Sobel magnitude (0–1 lightness) where outlines start ...
    edge_width: float = 0.10        # ... and over which they reach full strength
    edge_strength: float = 0.4      # how much a full outline darkens
    relief: float = 0.3             # strength of the top-lit paint relief


DEFAULT_STYLE = PaintingStyle()


def render_painting(img: Image.Image, style: PaintingStyle = DEFAULT_STYLE) -> Image.Image:
    """The painting of ``img`` (an RGB image of any size, returned at the same size).

    Pure and deterministic: the same pixels in give the same pixels out, bit for bit.
    """
    rgb = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
    flat = _soft_kuwahara(rgb, style.radius, style.sharpness)
    lab = color.rgb2lab(flat)
    lightness = lab[..., 0]
    # Outlines from the flattened picture's lightness, before posterising adds steps of its own.
    edges = _edge_map(lightness / 100.0, style)
    shade = _relief(lightness / 100.0, style.relief)
    lab[..., 0] = _soft_posterise(lightness, style.levels, style.band_softness)
    lab[..., 1] = lab[..., 1] * style.chroma_gain + style.warm_shift / 2
    lab[..., 2] = lab[..., 2] * style.chroma_gain + style.warm_shift
    with warnings.catch_warnings():
        # Raised chroma leaves the sRGB gamut for some colours; lab2rgb clips them, as intended.
        warnings.simplefilter("ignore", UserWarning)
        out = color.lab2rgb(lab)
    out = out * (1.0 - style.edge_strength * edges)[..., None] + shade[..., None]
    return Image.fromarray(np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8))


def _soft_kuwahara(rgb: np.ndarray, radius: int, sharpness: float) -> np.ndarray:
    """Each pixel becomes a blend of the means of the four (r+1)² windows it is a corner of,
    weighted by the inverse of each window's lightness variance to the power sharpness/2."""
    k = radius + 1
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    # Window means with the window's top-left corner at each pixel (edges reflected).
    pad = ((radius, radius), (radius, radius))
    gray_p = np.pad(gray, pad, mode="reflect")
    rgb_p = np.pad(rgb, pad + ((0, 0),), mode="reflect")
    mean_g = ndimage.uniform_filter(gray_p, size=k, origin=-(k // 2), mode="reflect")
    mean_g2 = ndimage.uniform_filter(gray_p * gray_p, size=k, origin=-(k // 2), mode="reflect")
    mean_c = ndimage.uniform_filter(rgb_p, size=(k, k, 1), origin=(-(k // 2), -(k // 2), 0), mode="reflect")
    var = np.maximum(mean_g2 - mean_g * mean_g, 0.0)
    h, w = gray.shape
    total = np.zeros_like(rgb)
    weight_sum = np.zeros_like(gray)
    # A pixel (y, x) is the bottom-right, bottom-left, top-right or top-left corner of a window
    # whose top-left corner is at (y - dy, x - dx), dy and dx each 0 or radius.
    for dy in (0, radius):
        for dx in (0, radius):
            ys, xs = slice(radius - dy, radius - dy + h), slice(radius - dx, radius - dx + w)
            wgt = (var[ys, xs] + 1e-4) ** (-sharpness / 2)
            total += wgt[..., None] * mean_c[ys, xs]
            weight_sum += wgt
    return total / weight_sum[..., None]


def _soft_posterise(lightness: np.ndarray, band: float, softness: float) -> np.ndarray:
    """Lightness pulled towards the centres of bands ``band`` wide, with smooth transitions."""
    t = lightness / band
    base = np.floor(t)
    frac = t - base
    # A smooth staircase: flat in the middle of each band, a smoothstep ramp of width 2·softness
    # around each band boundary.
    s = np.clip((frac - 0.5 + softness) / (2 * softness), 0.0, 1.0) if softness > 0 else (frac >= 0.5) * 1.0
    ramp = s * s * (3.0 - 2.0 * s)
    return (base + ramp) * band


def _edge_map(lightness01: np.ndarray, style: PaintingStyle) -> np.ndarray:
    gy = ndimage.sobel(lightness01, axis=0, mode="reflect") / 4.0
    gx = ndimage.sobel(lightness01, axis=1, mode="reflect") / 4.0
    magnitude = np.hypot(gx, gy)
    return np.clip((magnitude - style.edge_threshold) / style.edge_width, 0.0, 1.0)


def _relief(lightness01: np.ndarray, strength: float) -> np.ndarray:
    """A paint relief lit from above: brighter where lightness rises downwards, a little."""
    gy = ndimage.sobel(ndimage.gaussian_filter(lightness01, 0.7, mode="reflect"), axis=0, mode="reflect") / 4.0
    return strength * np.clip(gy, -0.25, 0.25)


# --------------------------------------------------------------------------------------------
# The photographs and the split


def photo_path(name: str) -> Path:
    """The file of a photograph bundled with scikit-image (never downloaded)."""
    path = Path(str(importlib.resources.files("skimage") / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(f"scikit-image's bundled photograph {name} is missing at {path}; "
                                "reinstall scikit-image")
    return path


def load_photo(name: str) -> Image.Image:
    with Image.open(photo_path(name)) as img:
        return img.convert("RGB")


def grid_cells(width: int, height: int, rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """The cells (left, top, right, bottom) of a rows × cols grid, row by row; they tile the image."""
    xs = [round(i * width / cols) for i in range(cols + 1)]
    ys = [round(j * height / rows) for j in range(rows + 1)]
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(rows) for i in range(cols)]


def assign_cells(n_cells: int, rng: random.Random) -> list[str]:
    """The split of each cell: a sixth (at least one) each for testA and testB, the rest shared
    equally by trainA and trainB, in a seeded random order."""
    n_test = max(1, round(n_cells / 6))
    n_train_a = (n_cells - 2 * n_test + 1) // 2
    labels = ["testA"] * n_test + ["testB"] * n_test + ["trainA"] * n_train_a
    labels += ["trainB"] * (n_cells - len(labels))
    rng.shuffle(labels)
    return labels


def boxes_overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (left, top, right, bottom) boxes share any pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _random_crop(cell: tuple[int, int, int, int], rng: random.Random) -> tuple[int, int, int, int]:
    left, top, right, bottom = cell
    short = min(right - left, bottom - top)
    side = int(rng.uniform(MIN_CROP_FRACTION, MAX_CROP_FRACTION) * short)
    x = rng.randint(left, right - side)
    y = rng.randint(top, bottom - side)
    return (x, y, x + side, y + side)


# --------------------------------------------------------------------------------------------
# Building


def build_demo_dataset(root: Path, size: int = 64, n_train: int = 400, n_test: int = 40, seed: int = 0) -> Path:
    """Write the demo dataset under ``root`` and return ``root``.

    ``root/trainA``, ``root/testA``: ``size``-px photo crops; ``root/trainB``, ``root/testB``:
    paintings of crops of other regions; ``root/truth/AtoB/<name>``: the true painting of each
    ``testA/<name>``; ``root/manifest.json``: the cells of every photograph with their split, and
    the photograph, box and flip of every image. ``n_train`` and ``n_test`` are per domain. The
    same arguments write bitwise the same files; a different seed deals the cells and draws the
    crops differently. Images a previous build left in these folders are removed first.
    """
    root = Path(root)
    check_arguments(size, n_train, n_test)
    _clear_previous(root)
    photos = {name: load_photo(name) for name in PHOTOS}
    cells, cell_records = _deal_cells(photos, random.Random(f"cyclestyle-demo/{seed}"))
    counts = {"trainA": n_train, "trainB": n_train, "testA": n_test, "testB": n_test}
    images = []
    for split in SPLITS:
        (root / split).mkdir(parents=True, exist_ok=True)
        if split == "testA":
            (root / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
        split_rng = random.Random(f"cyclestyle-demo/{seed}/{split}")
        pool = cells[split]
        for i in range(counts[split]):
            # Walk the split's cells in turn, so every cell (and photograph) is used evenly.
            name, cell = pool[i % len(pool)]
            box, flip, photo = _draw_crop(photos[name], cell, size, split_rng)
            file_name = f"{i:04d}_{Path(name).stem}.png"
            _write_image(root, split, file_name, photo)
            images.append({"split": split, "file": f"{split}/{file_name}", "photo": name,
                           "box": list(box), "flip": flip})
    arguments = {"size": size, "n_train": n_train, "n_test": n_test, "seed": seed}
    _write_manifest(root, arguments, cell_records, images)
    return root


def _deal_cells(photos: dict[str, Image.Image], rng: random.Random
                ) -> tuple[dict[str, list[tuple[str, tuple[int, int, int, int]]]], list[dict]]:
    """Every photograph's grid cells dealt to the splits (``assign_cells``): the (photograph, cell)
    pairs of each split, and the manifest's record of every cell."""
    cells: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {s: [] for s in SPLITS}
    cell_records = []
    for name, (rows, cols) in PHOTOS.items():
        img = photos[name]
        boxes = grid_cells(img.width, img.height, rows, cols)
        for index, (box, split) in enumerate(zip(boxes, assign_cells(len(boxes), rng))):
            cells[split].append((name, box))
            cell_records.append({"photo": name, "cell": index, "box": list(box), "split": split})
    return cells, cell_records


def _draw_crop(photo: Image.Image, cell: tuple[int, int, int, int], size: int, rng: random.Random
               ) -> tuple[tuple[int, int, int, int], bool, Image.Image]:
    """A random square crop inside ``cell``, flipped or not at random: its box, the flip, and the
    crop at ``size`` pixels."""
    box = _random_crop(cell, rng)
    flip = rng.random() < 0.5
    image = photo.resize((size, size), Image.Resampling.LANCZOS, box=box)
    if flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return box, flip, image


def _write_image(root: Path, split: str, file_name: str, photo: Image.Image) -> None:
    """``photo`` into its split: as it is in domain A, painted in domain B; a held-out photo's
    true painting (testA) into the truth folder as well."""
    if split.endswith("B"):
        _save(render_painting(photo), root / split / file_name)
    else:
        _save(photo, root / split / file_name)
    if split == "testA":
        _save(render_painting(photo), root / TRUTH_DIR / file_name)


def _write_manifest(root: Path, arguments: dict, cell_records: list[dict], images: list[dict]) -> None:
    """``manifest.json``: the arguments and style it was built with, every cell and every image."""
    manifest = {
        "dataset": DATASET,
        "format_version": FORMAT_VERSION,
        "arguments": arguments,
        "style": dataclasses.asdict(DEFAULT_STYLE),
        "truth": TRUTH_DIR,
        "cells": cell_records,
        "images": images,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def write_training_pairs(root: Path, dest: Path) -> Path:
    """The demo dataset as pairs, for pix2pix: ``dest/trainA`` and ``dest/testA`` are the photos of
    ``root``, ``dest/trainB`` the true painting of every training photo (``render_painting``, as
    the held-out truth was made) and ``dest/testB`` the held-out truth, each under its photo's name
    (``data.paired``). CycleGAN and CUT never see a photo's own painting; pix2pix sees nothing else:
    what pairs buy, on the same photos. Returns ``dest``; what it held is replaced."""
    root, dest = Path(root), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    sources = {"trainA": root / "trainA", "testA": root / "testA", "testB": root / TRUTH_DIR}
    for split, folder in sources.items():
        (dest / split).mkdir(parents=True)
        for path in sorted(folder.glob("*.png")):
            shutil.copyfile(path, dest / split / path.name)
    (dest / "trainB").mkdir()
    for path in sorted((root / "trainA").glob("*.png")):
        with Image.open(path) as photo:
            _save(render_painting(photo.convert("RGB")), dest / "trainB" / path.name)
    return dest


def ensure_demo_dataset(root: Path, size: int = 64, n_train: int = 400, n_test: int = 40, seed: int = 0) -> Path:
    """``root`` holding the demo dataset with these arguments: reused when its manifest says it
    was built with them (and its files are there), built otherwise (``build_demo_dataset``)."""
    root = Path(root)
    if _reusable(root, {"size": size, "n_train": n_train, "n_test": n_test, "seed": seed}):
        return root
    return build_demo_dataset(root, size=size, n_train=n_train, n_test=n_test, seed=seed)


def check_demo_dataset(root: Path, size: int = 64, n_train: int = 400, n_test: int = 40, seed: int = 0) -> None:
    """Raise ``DemoDataError`` (one line) when ``ensure_demo_dataset`` with these arguments would
    refuse: before anything else is written or deleted, whoever calls it can check first."""
    root = Path(root)
    check_arguments(size, n_train, n_test)
    if not _reusable(root, {"size": size, "n_train": n_train, "n_test": n_test, "seed": seed}):
        check_rebuildable(root)


class DemoDataError(DataError, ValueError):
    """A demo dataset that cannot be built where or as asked; one line naming the folder or value."""


def check_arguments(size: int, n_train: int, n_test: int) -> None:
    if size < 8 or n_train < 1 or n_test < 1:
        raise DemoDataError(f"the demo dataset needs an image size of at least 8 and positive counts; got "
                            f"size={size}, n_train={n_train}, n_test={n_test}")


def _reusable(root: Path, wanted: dict[str, int]) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        return (manifest.get("format_version") == FORMAT_VERSION and manifest.get("arguments") == wanted
                and manifest.get("style") == dataclasses.asdict(DEFAULT_STYLE)
                and all((root / item["file"]).is_file() for item in manifest["images"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def is_demo_folder(root: Path) -> bool:
    """Whether ``root`` is a demo dataset's folder: it carries ``DATA_MARKER``, or (written before
    the marker existed) a ``manifest.json`` of this dataset, which no other program writes."""
    if (root / DATA_MARKER).is_file():
        return True
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("dataset") == DATASET
            and manifest.get("format_version") == FORMAT_VERSION and isinstance(manifest.get("images"), list))


def _demo_folders(root: Path) -> list[Path]:
    return [root / s for s in SPLITS] + [root / TRUTH_DIR]


def check_rebuildable(root: Path) -> None:
    """Raise ``DemoDataError`` unless a build may write into ``root``: a new or empty place, or a
    demo dataset's folder (``is_demo_folder``) whose image folders hold only the demo's files."""
    if root.exists() and not root.is_dir():
        raise DemoDataError(f"{root} is a file, not a folder for the demo dataset; choose another folder")
    for folder in _demo_folders(root):
        if folder.exists() and not folder.is_dir():
            raise DemoDataError(f"{folder} is a file, where the demo dataset keeps a folder of images; "
                                "choose another folder")
    held = [p for folder in _demo_folders(root) if folder.is_dir() for p in sorted(folder.iterdir())]
    if not held:
        return
    if not is_demo_folder(root):
        why = (f"its {MANIFEST} is not the demo's" if (root / MANIFEST).exists()
               else f"it has no {DATA_MARKER} or demo {MANIFEST}")
        raise DemoDataError(f"{held[0].parent} already holds files and {root} is not a demo dataset ({why}): "
                            "it is left alone; choose another folder")
    foreign = [p for p in held if not p.name.startswith(".")  # .DS_Store and the like: left, never deleted
               and not (IMAGE_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink())]
    if foreign:
        raise DemoDataError(f"{foreign[0]} was not written by the demo: {root} is not rebuilt, so that nothing of "
                            "yours is deleted; move it out of there, or choose another folder")


def _clear_previous(root: Path) -> None:
    """Check that ``root`` may be built in (``check_rebuildable``), mark it as the demo's, then
    remove the manifest and images of an earlier build (the demo's own names only)."""
    check_rebuildable(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / DATA_MARKER).write_text("made by `cyclestyle demo`: a rebuild replaces only the images the demo wrote\n")
    (root / MANIFEST).unlink(missing_ok=True)  # a build stopped half-way is never taken for a whole one
    for folder in _demo_folders(root):
        if folder.is_dir():
            for path in folder.iterdir():
                if IMAGE_NAME.fullmatch(path.name):
                    path.unlink()


def _save(img: Image.Image, path: Path) -> None:
    """PNG with no metadata (no time stamps): the same pixels always give the same bytes."""
    img.save(path, format="PNG", optimize=False, compress_level=6)


def file_digest(root: Path) -> str:
    """One SHA-256 over every file of a built dataset (names and bytes), to compare builds."""
    h = hashlib.sha256()
    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()
