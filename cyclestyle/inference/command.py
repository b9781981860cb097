"""``cyclestyle translate``: translate files, folders and globs into an output folder."""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from ..data import (
    IMAGE_EXTENSIONS,
    DataError,
    UnreadableImageError,
    image_to_tensor,
    list_images,
    load_image,
    tensor_to_image,
)
from ..devices import default_device
from ..models.weights import load_generator
from .run import find_generator
from .tiling import DEFAULT_TILE, TilePlan, _ceil4, _in_channels, plan_tiles
from .translate import AUTO_TILE_PIXELS, _alpha_of, _translate_pixels, _wants_tiles, resize_short_side, translate_tensor

# --------------------------------------------------------------------------------------------
# Inputs and outputs of the command


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _inside(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def collect_inputs(inputs: Sequence[str], exclude: str | Path | None = None) -> list[tuple[Path, Path]]:
    """(source, output path relative to the output folder) for every image the inputs name.

    A folder stands for its images (recursively, by extension) and each keeps its path relative to
    that folder; a file or a glob match (``**`` recurses) keeps its file name. Images under
    ``exclude`` (the output folder) are left out of folders and globs. A source named twice is
    taken once; two sources that would be written to the same place, or an input that names
    nothing, are a ``DataError``.
    """
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in list_images(path) if not _inside(p, skip)]
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif _is_pattern(item):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(item), recursive=True))
            images = [p for p in matches
                      if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not _inside(p, skip)]
            if not images:
                raise DataError(f"no image files match {item}")
            found += [(p, Path(p.name)) for p in images]
        else:
            raise DataError(f"input {item}: no such file or folder")
    result: list[tuple[Path, Path]] = []
    seen_sources: set[Path] = set()
    targets: dict[Path, Path] = {}
    for source, rel in found:
        key = source.resolve()
        if key in seen_sources:
            continue
        seen_sources.add(key)
        if rel in targets:
            raise DataError(f"inputs {targets[rel]} and {source} would both be written to {rel}")
        targets[rel] = source
        result.append((source, rel))
    return result


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as displayed (EXIF orientation applied), from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
            return w, h
    except Exception:
        return None  # reported properly when the image is loaded


def _target_size(size: tuple[int, int], short_side: int | None) -> tuple[int, int]:
    w, h = size
    if short_side is None or min(w, h) == short_side:
        return w, h
    scale = short_side / min(w, h)
    return (short_side, max(1, round(h * scale))) if w <= h else (max(1, round(w * scale)), short_side)


def _load(path: Path, channels: int, short_side: int | None) -> tuple[Image.Image, Image.Image | None]:
    img = load_image(path, channels)
    alpha = None
    try:
        with Image.open(path) as im:
            if im.has_transparency_data:
                im.load()
                alpha = _alpha_of(ImageOps.exif_transpose(im))
    except Exception as e:
        reason = str(e).strip() or type(e).__name__
        raise UnreadableImageError(f"unreadable image {path}: {reason}", str(path)) from None
    if short_side is not None:
        img = resize_short_side(img, short_side)
        if alpha is not None:
            alpha = resize_short_side(alpha, short_side)
    return img, alpha


_NO_ALPHA = {"JPEG", "MPEG", "PCX", "PPM", "EPS"}


def _save(img: Image.Image, dst: Path) -> None:
    """Write atomically, in the format the file name says, keeping alpha where the format can."""
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt is None:
        raise OSError(f"unknown image format for {dst.name}")
    if fmt in _NO_ALPHA and img.mode in ("RGBA", "LA"):
        img = img.convert(img.mode[:-1])
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        img.save(tmp, format=fmt, **options)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The command


def run_cli(args) -> int:
    """``cyclestyle translate``: 0 when every image was translated or skipped, 1 when any failed."""
    started = time.perf_counter()
    for name, least in (("batch_size", 1), ("size", 1), ("tile", 0), ("overlap", 0)):  # --tile 0: never tile
        value = getattr(args, name, None)
        if value is not None and value < least:
            option = "--" + name.replace("_", "-")
            print(f"cyclestyle: error: {option} must be at least {least}, got {value}", file=sys.stderr)
            return 2
    device = default_device(args.device)
    weights = find_generator(args.weights, args.direction)
    generator = load_generator(weights, device)
    out_root = Path(args.output).expanduser()
    jobs = collect_inputs(args.inputs, exclude=out_root)

    def note(message: str) -> None:
        tqdm.write(f"cyclestyle: {message}", file=sys.stderr)

    translated = skipped = failed = 0
    todo: list[tuple[Path, Path]] = []
    for source, rel in jobs:
        dst = out_root / rel
        if dst.exists() and not args.overwrite:
            note(f"skipped {dst}: it exists (--overwrite replaces it)")
            skipped += 1
        else:
            todo.append((source, dst))

    # Same-size images go through the network together; images to tile go one by one.
    groups: dict[tuple, list[tuple[Path, Path]]] = defaultdict(list)
    for i, (source, dst) in enumerate(todo):
        size = _header_size(source)
        if size is None:
            key: tuple = ("alone", i)
        else:
            w, h = _target_size(size, args.size)
            key = ("tiled", i) if _wants_tiles(h, w, args.tile) else ("full", w, h)
        groups[key].append((source, dst))

    plan_cache: list[TilePlan] = []

    def tile_plan() -> TilePlan:
        if not plan_cache:
            plan_cache.append(plan_tiles(generator, args.tile or DEFAULT_TILE, args.overlap if args.tile else None))
            for text in plan_cache[0].notes:
                note(text)
        return plan_cache[0]

    bar = tqdm(total=len(todo), unit="img", desc="translate", file=sys.stderr, disable=None, dynamic_ncols=True)
    channels = _in_channels(generator)
    with torch.inference_mode():
        for key, items in groups.items():
            step = args.batch_size
            if key[0] == "full":  # a batch holds no more pixels than the largest full-frame image
                step = max(1, min(step, AUTO_TILE_PIXELS // (_ceil4(key[1]) * _ceil4(key[2]))))
            for start in range(0, len(items), step):
                loaded = []
                for source, dst in items[start : start + step]:
                    try:
                        img, alpha = _load(source, channels, args.size)
                    except UnreadableImageError as e:
                        note(str(e))
                        failed += 1
                        bar.update(1)
                        continue
                    loaded.append((source, dst, img, alpha))
                by_size: dict[tuple[int, int], list] = defaultdict(list)  # the header can mislead
                for entry in loaded:
                    by_size[entry[2].size].append(entry)
                for (w, h), entries in by_size.items():
                    try:
                        if _wants_tiles(h, w, args.tile):
                            outs = [_translate_pixels(generator, e[2], tile_plan(), device) for e in entries]
                        else:
                            x = torch.stack([image_to_tensor(e[2]) for e in entries]).to(device)
                            y = translate_tensor(generator, x)
                            outs = [tensor_to_image(t) for t in y]
                    except (RuntimeError, ValueError) as error:  # out of memory, an image too small for the network
                        oom = isinstance(error, torch.OutOfMemoryError)
                        hint = "; try --tile or a smaller --batch-size" if oom else ""
                        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                        for e in entries:
                            note(f"cannot translate {e[0]} ({w}x{h}): {reason}{hint}")
                        failed += len(entries)
                        bar.update(len(entries))
                        continue
                    for (source, dst, _, alpha), out in zip(entries, outs):
                        if alpha is not None:
                            out.putalpha(alpha)
                        try:
                            _save(out, dst)
                            translated += 1
                        except (OSError, ValueError) as e:
                            note(f"cannot write {dst} (from {source}): {str(e).strip() or type(e).__name__}")
                            failed += 1
                        bar.update(1)
    bar.close()
    print(f"translated {translated}, skipped {skipped}, failed {failed} in {time.perf_counter() - started:.1f} s "
          f"-> {out_root}")
    return 0 if failed == 0 else 1
