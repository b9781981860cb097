"""A synthetic two-domain dataset the toolkit builds itself, for quick checks without a download.

Domain A ("photos"): smooth colour gradients with soft shaded shapes. Domain B ("prints"): scenes
drawn the same way, then rendered in a different style: posterised to a few colours, outlined in
dark edges and overlaid with a fine stripe texture. A and B are drawn from different random
scenes, so the data is unpaired, and the style gap is one a small CycleGAN learns in minutes.

``make_paired_toy_dataset`` writes pairs instead, for pix2pix: each scene and its print, side by
side in one image (the official aligned layout) or under one name in two folders.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..data import DataError
from ..files import check_output


def random_scene(rng: random.Random, size: int) -> Image.Image:
    """A gradient background and a few soft, overlapping ellipses and rectangles."""
    top = np.array([rng.randint(40, 220) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randint(40, 220) for _ in range(3)], dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp) * np.ones((size, size, 3), np.float32)
    image = Image.fromarray(background.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.randint(-size // 4, size - 8), rng.randint(-size // 4, size - 8)
        w, h = rng.randint(size // 6, size // 2), rng.randint(size // 6, size // 2)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.6 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(radius=size / 64))


def print_style(image: Image.Image) -> Image.Image:
    """Posterise, darken edges and add a stripe texture: the "style" of domain B."""
    poster = image.quantize(colors=6, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).convert("RGB")
    pixels = np.asarray(poster, dtype=np.float32)
    edges = np.asarray(image.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32) / 255.0
    pixels *= 1.0 - np.clip(edges * 3.0, 0.0, 0.8)[..., None]
    stripes = 0.85 + 0.15 * (np.arange(image.height) % 4 < 2).astype(np.float32)
    pixels *= stripes[:, None, None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_toy_dataset(root: Path, n_train: int = 32, n_test: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Write ``root/{trainA,trainB,testA,testB}/*.png``; the same seed writes the same pixels."""
    root = Path(root)
    check_output(root, folder=True, error=DataError)
    for split, count in (("train", n_train), ("test", n_test)):
        for domain in ("A", "B"):
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                # Every image has its own stream, so A and B never share a scene.
                rng = random.Random(f"{seed}-{split}-{domain}-{i}")
                scene = random_scene(rng, size)
                (scene if domain == "A" else print_style(scene)).save(folder / f"{i:04d}.png")
    return root


def make_paired_toy_dataset(root: Path, layout: str = "aligned", n_train: int = 16, n_test: int = 4, size: int = 64,
                            seed: int = 0) -> Path:
    """Pairs (a scene as A, its print as B): ``root/{train,test}/*.png`` with A left and B right
    (``layout="aligned"``, ``data.format: aligned``), or ``root/{trainA,trainB,testA,testB}/``
    with a pair under one file name (``layout="folders"``, ``data.format: folder``)."""
    if layout not in ("aligned", "folders"):
        raise ValueError(f"layout must be aligned or folders, not {layout!r}")
    root = Path(root)
    for split, count in (("train", n_train), ("test", n_test)):
        for i in range(count):
            scene = random_scene(random.Random(f"{seed}-{split}-pair-{i}"), size)
            pair = (scene, print_style(scene))
            if layout == "aligned":
                both = Image.new("RGB", (2 * size, size))
                both.paste(pair[0], (0, 0))
                both.paste(pair[1], (size, 0))
                _save(both, root / split / f"{i:04d}.png")
            else:
                for domain, image in zip("AB", pair):
                    _save(image, root / f"{split}{domain}" / f"{i:04d}.png")
    return root


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
