"""Image data: two domains, A and B, read from folders or Hugging Face ``datasets``, unpaired or
as pairs of one scene (pix2pix: ``open_pairs``, ``PairedDataset``).

A *source* is one domain: an ordered list of images that can be loaded one at a time by index
(``FolderSource`` for ``ROOT/trainA``-style folders, ``HFSource`` for a column of a ``datasets``
table). ``open_domains`` builds the two sources of a split from a ``DataConfig``, dropping images
that cannot even be opened, so that a bad file is reported once, by name, before training starts
rather than as a crash hours in.

``UnalignedDataset`` pairs the two domains the way the reference CycleGAN implementation does
(``unaligned_dataset.py``): an A image and an unrelated B image per item. Unlike the reference, the
item key carries its own augmentation seed, ``(a_index, b_index, aug_seed)``, and every random
choice in ``preprocess`` is drawn from a ``random.Random`` seeded from it. The sampler that makes
the keys therefore fixes the whole data stream, which is what lets a resumed run see exactly the
same batches, whatever the number of DataLoader workers.

Problems are ``DataError``s with a one-line message naming the file, folder, column or split at
fault. Images skipped along the way are reported with ``warnings.warn`` (category
``DataWarning``): it needs no logging setup, it works inside DataLoader worker processes, and
Python shows a given message once per place rather than once per epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import os
import random
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import DataConfig

if TYPE_CHECKING:  # `datasets` is imported only when an HF source is opened: it is slow to import.
    import datasets

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Rows per read when hashing an HF image column; bounds memory on large tables.
_HASH_BATCH = 256


class DataError(Exception):
    """A problem with the input data, reported in one line naming what is at fault."""


class UnreadableImageError(DataError):
    """An image that cannot be opened or decoded; ``source`` names it (path or dataset row)."""

    # The message comes first and ``source`` has a default so that ``type(e)(message)`` works:
    # that is how torch's DataLoader re-raises an exception from a worker in the main process.
    def __init__(self, message: str, source: str = ""):
        super().__init__(message)
        self.source = source

    def __reduce__(self):
        return type(self), (str(self), self.source)


class ImageSizeError(UnreadableImageError):
    """An image whose resized size would pass the caps below; skipped like an unreadable one."""


MAX_RESIZED_PIXELS = 8192 * 8192
"""Resizing by the short side never makes an image larger than this (a 1×65535 strip at 256 px would
be 256×16.7M pixels, about 13 GB as floats)."""

MAX_ASPECT = 64
"""Nor does it take an image more elongated than this: no translator was trained on such a strip."""


def short_side_size(width: int, height: int, size: int, source: str = "") -> tuple[int, int]:
    """(width, height) with the shorter side ``size``, aspect kept; an ``ImageSizeError`` naming
    ``source`` when the image is more elongated than ``MAX_ASPECT`` or the result would pass
    ``MAX_RESIZED_PIXELS``."""
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageSizeError(f"image {source} is {width}x{height}: more elongated than {MAX_ASPECT}:1, "
                             "not resized", source)
    if min(width, height) == size:
        return width, height
    scale = size / min(width, height)
    new = (size, max(1, round(height * scale))) if width <= height else (max(1, round(width * scale)), size)
    if new[0] * new[1] > MAX_RESIZED_PIXELS:
        raise ImageSizeError(f"image {source} is {width}x{height}: at short side {size} it would be "
                             f"{new[0]}x{new[1]}, over the {MAX_RESIZED_PIXELS // 10**6} Mpx cap", source)
    return new


class DataWarning(UserWarning):
    """An image was skipped, replaced or resized; filter this category to silence them."""


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=2)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --------------------------------------------------------------------------------------------
# Files and single images


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursively, by extension, any case), sorted.

    Sorting makes an index mean the same file on every machine and every run.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"image folder {folder} {what}")
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not found:
        raise DataError(f"no images in {folder} (searched recursively for {' '.join(IMAGE_EXTENSIONS)})")
    return found


def _default_source(path_or_fileobj: str | Path | IO[bytes]) -> str:
    if isinstance(path_or_fileobj, (str, Path)):
        return str(path_or_fileobj)
    return str(getattr(path_or_fileobj, "name", "<image bytes>"))


def _unreadable(source: str, error: BaseException) -> UnreadableImageError:
    if isinstance(error, FileNotFoundError):
        reason = "file not found"
    elif isinstance(error, UnidentifiedImageError):
        reason = "not an image format PIL can read"  # PIL's own message repeats the path
    else:
        reason = _first_line(error)
    return UnreadableImageError(f"unreadable image {source}: {reason}", source)


def verify_image(path_or_fileobj: str | Path | IO[bytes], source: str | None = None) -> None:
    """Cheap readability check (header and, for PNG, checksums; no full decode).

    It catches the common failures (not an image, wrong extension, empty or garbage file) at a
    fraction of the cost of decoding; a file truncated mid-data can still pass and is caught later,
    when ``UnalignedDataset`` loads it.
    """
    source = source or _default_source(path_or_fileobj)
    try:
        with Image.open(path_or_fileobj) as img:
            img.verify()
    except Exception as e:
        raise _unreadable(source, e) from None


def load_image(
    path_or_fileobj: str | Path | IO[bytes], channels: int = 3, source: str | None = None
) -> Image.Image:
    """Decode an image fully and return it as "RGB" (``channels=3``) or "L" (``channels=1``).

    The EXIF orientation is applied, so a phone photo comes out the way it is displayed. Any
    failure is an ``UnreadableImageError`` naming ``source`` (by default the path).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    source = source or _default_source(path_or_fileobj)
    try:
        with Image.open(path_or_fileobj) as img:
            img.load()  # decode now, so that a truncated file fails here and not in a transform
            img = ImageOps.exif_transpose(img)
        return _to_mode(img, "L" if channels == 1 else "RGB")
    except Exception as e:
        raise _unreadable(source, e) from None


def _to_mode(img: Image.Image, target: str) -> Image.Image:
    """Convert any PIL mode to ``target`` ("L" or "RGB") without losing the value range."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # PIL's own conversion to 8 bits clips (every value above 255 becomes white), so scale
        # the 16-bit range down instead: 65535 -> 255. Mode "I" is how PIL opens some 16-bit
        # files, so it gets the same range; values outside it are clipped.
        values = np.clip(np.asarray(img, dtype=np.float64), 0, 65535)
        img = Image.fromarray(np.rint(values / 257.0).astype(np.uint8))
    elif img.mode == "F":
        # Float images have no fixed range: [0, 1] is the common convention, anything larger is
        # taken to be on the 0..255 scale.
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        img = Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8))
    if img.has_transparency_data:
        # Composite over white rather than dropping alpha: the colour stored under a transparent
        # pixel is arbitrary (often black, sometimes leftover content), white is what a viewer shows.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), rgba)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, P, 1, YCbCr, ...: PIL's conversions are fine for these
    return img if img.mode == target else img.convert(target)


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """An "L" or "RGB" image as a float32 C×H×W tensor in [-1, 1] (the generator's tanh range)."""
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"image_to_tensor expects an L or RGB image, got mode {img.mode} (use load_image)")
    array = np.array(img, dtype=np.uint8)  # a writable copy, as torch.from_numpy wants
    t = torch.from_numpy(array)
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    # Same mapping as the reference's ToTensor + Normalize((0.5,), (0.5,)).
    return t.to(torch.float32).div(127.5).sub(1.0).contiguous()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """Inverse of ``image_to_tensor``: a C×H×W tensor in [-1, 1] (C = 1 or 3) to "L" or "RGB"."""
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"tensor_to_image expects a C×H×W tensor with C = 1 or 3, got shape {tuple(t.shape)}")
    values = ((t.detach().to("cpu", torch.float32).clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    array = np.ascontiguousarray(values.to(torch.uint8).permute(1, 2, 0).numpy())
    return Image.fromarray(array[:, :, 0] if t.shape[0] == 1 else array)


def save_image(img: Image.Image, path: Path, **options) -> None:
    """Write ``img`` in the format ``path``'s suffix names, atomically: aside under a name of this
    process's own, then renamed, so a crash or a full disk never leaves half a file under the real
    name. ``options`` go to PIL's ``save`` (quality, pnginfo …)."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise OSError(f"unknown image format for {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        img.save(tmp, format=fmt, **options)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_dead_parts(path: Path) -> list[Path]:
    """Remove the ``.NAME.PID.part`` files that ``save_image`` left beside ``path`` in processes
    that no longer run here (a ``kill -9`` mid-write); those of running processes stay. Returns
    what was removed."""
    from .files import process_alive

    removed = []
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".part")]
    except OSError:  # no folder yet: nothing left there
        return removed
    for part in candidates:
        pid = part.name[len(prefix):-len(".part")]
        if pid.isdigit() and part.is_file() and not process_alive(int(pid)):
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


# --------------------------------------------------------------------------------------------
# Sources: one domain each


class Source(Protocol):
    """One domain: images addressable by index. Implementations must be picklable."""

    name: str

    def __len__(self) -> int: ...

    def describe(self, i: int) -> str: ...

    def load(self, i: int, channels: int | None = None) -> Image.Image: ...

    def verify(self, i: int) -> None: ...

    def subset(self, indices: Sequence[int]) -> Source: ...


class FolderSource:
    """The images under one folder, e.g. ``ROOT/trainA`` (recursively, sorted by path)."""

    def __init__(self, folder: str | Path, paths: Sequence[Path] | None = None, channels: int = 3):
        self.folder = Path(folder)
        self.name = str(folder)
        self.paths = list(list_images(self.folder) if paths is None else paths)
        self.channels = channels  # what load() returns when not told otherwise

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self, i: int) -> str:
        return str(self.paths[i])

    def load(self, i: int, channels: int | None = None) -> Image.Image:
        return load_image(self.paths[i], channels or self.channels)

    def verify(self, i: int) -> None:
        verify_image(self.paths[i])

    def subset(self, indices: Sequence[int]) -> FolderSource:
        return FolderSource(self.folder, [self.paths[i] for i in indices], self.channels)


class HFSource:
    """The images of one column of a Hugging Face ``datasets`` table, restricted to ``rows``.

    The column is read with ``Image(decode=False)``: cells are the stored bytes (or a file path),
    decoded here by ``load_image`` so that every image goes through the same mode handling.
    """

    def __init__(
        self,
        table: datasets.Dataset,
        column: str,
        name: str,
        rows: Sequence[int] | None = None,
        channels: int = 3,
    ):
        import datasets

        self.name = name
        self.column = column
        self.channels = channels
        self.rows = list(range(len(table)) if rows is None else rows)
        try:
            self._table = table.select_columns([column]).cast_column(column, datasets.Image(decode=False))
        except Exception as e:
            feature = table.features.get(column)
            raise DataError(f"column {column} of {name} does not hold images ({feature}): {_first_line(e)}") from None

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self, i: int) -> str:
        return f"{self.name} row {self.rows[i]}"

    def _cell(self, i: int) -> str | io.BytesIO:
        cell = self._table[self.rows[i]][self.column]
        if cell is not None and cell.get("bytes") is not None:
            return io.BytesIO(cell["bytes"])
        if cell is not None and cell.get("path"):
            return cell["path"]
        raise UnreadableImageError(f"unreadable image {self.describe(i)}: the cell is empty", self.describe(i))

    def load(self, i: int, channels: int | None = None) -> Image.Image:
        return load_image(self._cell(i), channels or self.channels, source=self.describe(i))

    def verify(self, i: int) -> None:
        verify_image(self._cell(i), source=self.describe(i))

    def subset(self, indices: Sequence[int]) -> HFSource:
        part = copy.copy(self)
        part.rows = [self.rows[i] for i in indices]
        return part

    def deduplicated(self) -> HFSource:
        """Drop empty cells and repeated images, keeping first occurrences in order.

        huggan/* CycleGAN tables hold one A and one B image per row, so the smaller domain is
        repeated to fill the table; training on it as is would over-weight its first images.
        Images are compared by a hash of their stored bytes (by path when only a path is stored).
        """
        seen: set[bytes | str] = set()
        keep: list[int] = []
        for start in range(0, len(self.rows), _HASH_BATCH):
            cells = self._table[self.rows[start : start + _HASH_BATCH]][self.column]
            for offset, cell in enumerate(cells):
                if cell is None:
                    continue
                if cell.get("bytes") is not None:
                    key: bytes | str = hashlib.blake2b(cell["bytes"], digest_size=16).digest()
                elif cell.get("path"):
                    key = cell["path"]
                else:
                    continue
                if key not in seen:
                    seen.add(key)
                    keep.append(start + offset)
        return self.subset(keep)


# --------------------------------------------------------------------------------------------
# Opening the two domains of a split


def open_domains(cfg: DataConfig, split: str, channels: int = 3, channels_b: int | None = None,
                 domains: Sequence[str] = ("A", "B")) -> tuple[Source, ...]:
    """The sources of ``domains`` (A and B, or A alone for a one-domain method) of split
    ``split`` (a split name, e.g. ``cfg.train_split``), loading ``channels`` for A and
    ``channels_b`` (default: the same) for B: a model's in_channels and out_channels, which differ
    for a grayscale ↔ colour translator.

    Unreadable images are dropped with a warning each and a summary (or, with
    ``cfg.strict_images``, the first one raises ``UnreadableImageError``). Paired data
    (``data.format: aligned``, or ``data.paired``) comes from ``open_pairs``: item i of A and of B
    are one pair.
    """
    domains = tuple(domains)
    if domains not in (("A", "B"), ("A",)):
        raise ValueError(f"domains must be (A, B) or (A,), got {domains}")
    channels_b = channels if channels_b is None else channels_b
    if is_paired(cfg):
        return open_pairs(cfg, split, (channels, channels_b))[:len(domains)]
    if cfg.format == "images":
        sources: tuple[Source, ...] = (_plain_folder(cfg, split, channels, domains),)
    elif cfg.format == "folder":
        root = Path(cfg.root).expanduser()
        sources = tuple(FolderSource(root / f"{split}{domain}", channels=c)
                        for domain, c in zip(domains, (channels, channels_b)))
    elif domains == ("A",):
        sources = (_open_hf_one(cfg, split, channels),)
    else:
        sources = _open_hf(cfg, split, (channels, channels_b))
    return tuple(_scan(limit_size(source, cfg.max_dataset_size), cfg.strict_images) for source in sources)


def limit_size(source: Source, max_size: int | None) -> Source:
    """The first ``max_size`` images of ``source`` (all of them for None): the reference's
    ``--max_dataset_size``, which keeps the first N of the sorted file list."""
    if max_size is None or len(source) <= max_size:
        return source
    return source.subset(range(max_size))


def _plain_folder(cfg: DataConfig, split: str, channels: int, domains: tuple[str, ...]) -> FolderSource:
    """``data.format: images``: the images under ``data.root``, one domain, training split only."""
    if domains != ("A",):
        raise DataError(f"data.format images: {cfg.root} is one collection of images, not domains A and B")
    if split != cfg.train_split:
        raise DataError(f"data.format images has no '{split}' split: {cfg.root} holds training images only")
    return FolderSource(Path(cfg.root).expanduser(), channels=channels)


def _readable(sources: Sequence[Source], strict: bool, skipped: str) -> list[int]:
    """The indices whose images open in every one of ``sources`` (a domain, or the two sides of
    paired data). An unreadable one raises its ``UnreadableImageError`` if ``strict``, else is a
    warning ending "(``skipped``)"."""
    keep = []
    for i in range(len(sources[0])):
        try:
            for source in sources:
                source.verify(i)
        except UnreadableImageError as e:
            if strict:
                raise
            _warn(f"{e} ({skipped})")
        else:
            keep.append(i)
    return keep


def _scan(source: Source, strict: bool) -> Source:
    keep = _readable((source,), strict, "skipped")
    if not keep:
        raise DataError(f"no readable images in {source.name}: all {len(source)} failed to open")
    if len(keep) < len(source):
        _warn(f"skipped {len(source) - len(keep)} of {len(source)} images in {source.name}")
        return source.subset(keep)
    return source


# A Hugging Face Hub dataset id: "name" or "owner/name", neither part starting with a dot. A
# root that starts with ".", "/" or "~", or has more parts, is a path: a missing one is an error,
# never a download.
_HUB_ID = re.compile(r"^[\w-][\w.-]*(/[\w-][\w.-]*)?$")


def content_format(root: str, train_split: str = "train") -> str:
    """The ``data.format`` of a one-domain collection named on a command line: "folder" for the
    CycleGAN layout (ROOT/trainA, and testA held out), "hf" for a ``datasets`` folder (saved,
    parquet) or a Hub id, else "images" (a plain folder of images, searched recursively; what is
    not a folder is reported as such by the config's validation)."""
    path = Path(root).expanduser()
    if path.is_dir():
        if (path / f"{train_split}A").is_dir():
            return "folder"
        hf_markers = ("dataset_dict.json", "state.json")
        if any((path / name).is_file() for name in hf_markers) or any(path.rglob("*.parquet")):
            return "hf"
        return "images"
    return "hf" if not path.exists() and _HUB_ID.match(root) and not root.startswith((".", "/", "~")) else "images"


def _open_hf(cfg: DataConfig, split: str, channels: tuple[int, int], domain_labels: tuple[str, ...] | None = None
             ) -> tuple[HFSource, ...]:
    """The A and B sources of an HF split, loading ``channels`` (A's, B's); ``domain_labels``: the
    label values to take, when a label column says the domain (default A's and B's)."""
    table = _load_hf_split(cfg.root, split)
    prefix = f"{cfg.root}[{split}]"
    if cfg.label_column is None:
        _require_columns(table, [cfg.column_a, cfg.column_b], prefix)
        sources = []
        for column, domain_channels in zip((cfg.column_a, cfg.column_b), channels):
            source = HFSource(table, column, f"{prefix}.{column}", channels=domain_channels).deduplicated()
            if len(source) == 0:
                raise DataError(f"column {column} of {prefix} holds no images")
            sources.append(source)
        return sources[0], sources[1]
    _require_columns(table, [cfg.image_column, cfg.label_column], prefix)
    labels = _label_strings(table, cfg.label_column)
    sources = []
    for label, domain_channels in zip(domain_labels or (cfg.label_a, cfg.label_b), channels):
        rows = [row for row, value in enumerate(labels) if value == str(label)]
        if not rows:
            present = sorted({value for value in labels if value is not None})
            raise DataError(
                f"no rows of {prefix} have {cfg.label_column} == {label!r} "
                f"(values present: {', '.join(present[:20]) or 'none'})"
            )
        name = f"{prefix}.{cfg.image_column}[{cfg.label_column}={label}]"
        sources.append(HFSource(table, cfg.image_column, name, rows, domain_channels))
    return tuple(sources)


def _open_hf_one(cfg: DataConfig, split: str, channels: int) -> HFSource:
    """One collection from an HF split, for a one-domain method: the images of ``image_column``
    (the rows whose ``label_column`` is ``label_a``, when a label column is set), deduplicated."""
    table = _load_hf_split(cfg.root, split)
    prefix = f"{cfg.root}[{split}]"
    if cfg.label_column is None:
        _require_columns(table, [cfg.image_column], prefix)
        source = HFSource(table, cfg.image_column, f"{prefix}.{cfg.image_column}", channels=channels).deduplicated()
        if len(source) == 0:
            raise DataError(f"column {cfg.image_column} of {prefix} holds no images")
        return source
    return _open_hf(cfg, split, (channels, channels), domain_labels=(cfg.label_a,))[0]


def _require_columns(table: datasets.Dataset, columns: Sequence[str], prefix: str) -> None:
    for column in columns:
        if column not in table.column_names:
            raise DataError(f"{prefix} has no column {column!r} (columns: {', '.join(table.column_names)})")


def _label_strings(table: datasets.Dataset, column: str) -> list[str | None]:
    """The label of every row as a string: the class name for a ``ClassLabel``, else str(value)."""
    import datasets

    values = table.with_format("arrow")[column].to_pylist()
    feature = table.features[column]
    if isinstance(feature, datasets.ClassLabel):
        # -1 is datasets' "no label".
        return [None if v is None or v < 0 else feature.int2str(v) for v in values]
    return [None if v is None else str(v) for v in values]


def _load_hf_split(root: str, split: str) -> datasets.Dataset:
    """One split of ``root``: a save_to_disk folder, a parquet folder, an imagefolder tree or a hub id."""
    import datasets

    path = Path(root).expanduser()
    if path.is_dir():
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            kind, load = "save_to_disk folder", lambda: datasets.load_from_disk(str(path))
        elif any(path.rglob("*.parquet")):
            kind, load = "folder of parquet files", lambda: datasets.load_dataset("parquet", data_dir=str(path))
        else:
            kind, load = "imagefolder tree", lambda: datasets.load_dataset("imagefolder", data_dir=str(path))
        try:
            splits = load()
        except Exception as e:
            raise DataError(f"cannot load data.root {root} as a {kind}: {_first_line(e)}") from None
    elif path.exists() or not _HUB_ID.match(root):
        what = "is not a folder" if path.exists() else "does not exist (and is a path, not a Hub id)"
        raise DataError(f"data.root {root} {what}")
    else:
        _warn(f"data.root {root}: no local folder of that name, so the Hugging Face Hub dataset {root} is used")
        try:
            splits = datasets.load_dataset(root)
        except Exception as e:
            raise DataError(
                f"could not fetch dataset {root} from the Hugging Face Hub (no network or unknown id: "
                f"{_first_line(e)}) and there is no local folder of that name; download it where there is "
                "network and set data.root to a local copy (a save_to_disk folder or a folder of parquet files)"
            ) from None
    if isinstance(splits, datasets.Dataset):
        splits = {"train": splits}  # a lone table is datasets' default split
    if split not in splits:
        raise DataError(f"split {split!r} not found in {root} (splits: {', '.join(splits)})")
    return splits[split].with_format(None)  # a saved torch/numpy format would alter the cells


# --------------------------------------------------------------------------------------------
# Paired data: item i of A and item i of B show the same scene (pix2pix)


class AlignedSource:
    """One half of the images of an aligned folder (the official pix2pix layout): A is the left
    half of each image, B the right, split as the official ``aligned_dataset.py`` splits them
    (at ``width // 2``; an odd width leaves B the extra column)."""

    def __init__(self, folder: str | Path, half: str, paths: Sequence[Path] | None = None, channels: int = 3):
        if half not in ("A", "B"):
            raise ValueError(f"half must be A or B, got {half!r}")
        self.folder, self.half, self.channels = Path(folder), half, channels
        self.name = f"{folder} ({'left' if half == 'A' else 'right'} halves)"
        self.paths = list(list_images(self.folder) if paths is None else paths)

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self, i: int) -> str:
        return str(self.paths[i])

    def load(self, i: int, channels: int | None = None) -> Image.Image:
        img = load_image(self.paths[i], channels or self.channels)
        w, h = img.size
        if w < 2:
            raise UnreadableImageError(f"image {self.paths[i]} is {w} pixel wide: no A|B halves", str(self.paths[i]))
        return img.crop((0, 0, w // 2, h) if self.half == "A" else (w // 2, 0, w, h))

    def verify(self, i: int) -> None:
        verify_image(self.paths[i])

    def subset(self, indices: Sequence[int]) -> AlignedSource:
        return AlignedSource(self.folder, self.half, [self.paths[i] for i in indices], self.channels)


def is_paired(cfg: DataConfig) -> bool:
    """Whether ``cfg`` reads pairs: ``data.format: aligned`` always, any other when ``data.paired``."""
    return cfg.format == "aligned" or bool(cfg.paired)


def open_pairs(cfg: DataConfig, split: str, channels: tuple[int, int] = (3, 3)) -> tuple[Source, Source]:
    """The A and B sources of split ``split`` as pairs, item for item: the halves of
    ``ROOT/SPLIT/`` (``data.format: aligned``), ``ROOT/SPLITA`` and ``ROOT/SPLITB`` matched by file
    stem (``folder``), or the two image columns of an HF table row by row (``hf``). A pair with
    an unreadable side is dropped whole, so that the two stay in step."""
    root = Path(cfg.root).expanduser()
    if cfg.format == "aligned":
        folder = root / split
        sources: tuple[Source, Source] = (AlignedSource(folder, "A", channels=channels[0]),
                                          AlignedSource(folder, "B", list_images(folder), channels[1]))
    elif cfg.format == "folder":
        sources = matched_folders(root / f"{split}A", root / f"{split}B", channels)
    elif cfg.format == "hf":
        sources = _hf_pairs(cfg, split, channels)
    else:
        raise DataError(f"data.format {cfg.format}: {cfg.root} is one collection of images, not pairs "
                        "(use data.format aligned, folder or hf)")
    limited = (limit_size(sources[0], cfg.max_dataset_size), limit_size(sources[1], cfg.max_dataset_size))
    return _scan_pairs(limited, cfg.strict_images)


def _stem(path: Path, folder: Path) -> str:
    """A file's name within ``folder`` without its extension: ``sub/0001`` for ``sub/0001.png``."""
    return path.relative_to(folder).with_suffix("").as_posix()


def matched_folders(folder_a: Path, folder_b: Path, channels: tuple[int, int]) -> tuple[FolderSource, FolderSource]:
    """Two folders' images paired by file stem (``trainA/0001.png`` with ``trainB/0001.jpg``).
    Files without a partner are left out, named in one warning; two files of one stem in a
    folder (``a.png``, ``a.jpg``) are a ``DataError``, since either could be the partner."""
    stems = []
    for folder in (folder_a, folder_b):
        by_stem: dict[str, Path] = {}
        for path in list_images(folder):
            other = by_stem.setdefault(_stem(path, folder), path)
            if other != path:
                raise DataError(f"{other} and {path} have the same stem: which is the partner of the other folder's?")
        stems.append(by_stem)
    a, b = stems
    common = sorted(set(a) & set(b))
    if not common:
        raise DataError(f"no file of {folder_a} has a partner of the same stem in {folder_b}")
    lonely = [f"{folder_a.name}/{k}" for k in sorted(set(a) - set(b))] + [f"{folder_b.name}/{k}" for k in sorted(set(b) - set(a))]
    if lonely:
        shown = ", ".join(lonely[:5]) + (f" and {len(lonely) - 5} more" if len(lonely) > 5 else "")
        _warn(f"{len(lonely)} files have no partner of the same stem and are left out: {shown}")
    return (FolderSource(folder_a, [a[k] for k in common], channels[0]),
            FolderSource(folder_b, [b[k] for k in common], channels[1]))


def _hf_pairs(cfg: DataConfig, split: str, channels: tuple[int, int]) -> tuple[HFSource, HFSource]:
    """The two image columns of an HF split, row by row (not deduplicated: a row is a pair)."""
    if cfg.label_column is not None:
        raise DataError(f"paired data from {cfg.root} needs two image columns (data.column_a, data.column_b), "
                        f"not data.label_column {cfg.label_column}")
    table = _load_hf_split(cfg.root, split)
    prefix = f"{cfg.root}[{split}]"
    _require_columns(table, [cfg.column_a, cfg.column_b], prefix)
    return (HFSource(table, cfg.column_a, f"{prefix}.{cfg.column_a}", channels=channels[0]),
            HFSource(table, cfg.column_b, f"{prefix}.{cfg.column_b}", channels=channels[1]))


def _scan_pairs(sources: tuple[Source, Source], strict: bool) -> tuple[Source, Source]:
    """The pairs whose two images open (``_scan`` for pairs): a bad side drops its pair."""
    keep = _readable(sources, strict, "its pair skipped")
    if not keep:
        raise DataError(f"no readable pairs in {sources[0].name} and {sources[1].name}")
    if len(keep) < len(sources[0]):
        _warn(f"skipped {len(sources[0]) - len(keep)} of {len(sources[0])} pairs in {sources[0].name}")
        return sources[0].subset(keep), sources[1].subset(keep)
    return sources


# --------------------------------------------------------------------------------------------
# Preprocessing


def preprocess(
    img: Image.Image, cfg: DataConfig, rng: random.Random, train: bool = True, *, source: str = "",
    size_multiple: int = 4,
) -> torch.Tensor:
    """Resize, crop, flip and convert to a [-1, 1] tensor, as the reference's ``get_transform``.

    Every random choice comes from ``rng`` (crop offset, then flip), so the same image and seed
    give bitwise the same tensor. With ``train=False`` the crop is centred and there is no flip.
    ``source`` names the image in warnings; ``size_multiple`` is what the generator needs of the
    sides: an uncropped image (``scale_width``, ``none``) is padded to it.
    """
    img = _resize_for(img, cfg)
    if cfg.preprocess.endswith("crop"):
        img = _crop(img, cfg.crop_size, rng if train else None, source)
    t = image_to_tensor(img)
    if not cfg.preprocess.endswith("crop"):
        t = _pad_to_multiple(t, size_multiple)
    if cfg.flip and train and rng.random() < 0.5:
        t = t.flip(-1)
    return t


def _resize_for(img: Image.Image, cfg: DataConfig) -> Image.Image:
    """The resize of ``data.preprocess`` before any crop: ``resize_and_crop`` to ``load_size``²,
    ``scale_width*`` to width ``load_size`` (the reference's ``__scale_width``), ``none`` to the
    nearest multiple of 4 (its ``__make_power_2``, base 4); ``crop`` none."""
    if cfg.preprocess == "resize_and_crop":
        return img.resize((cfg.load_size, cfg.load_size), Image.Resampling.BICUBIC)
    if cfg.preprocess.startswith("scale_width"):
        return _scale_width(img, cfg.load_size, cfg.crop_size)
    if cfg.preprocess == "none":
        return _nearest_multiple(img, 4)
    return img


def _nearest_multiple(img: Image.Image, base: int) -> Image.Image:
    """The reference's ``__make_power_2``: each side rounded to the nearest multiple of ``base``
    (Python's round: halves to even), bicubic; at least ``base``."""
    w, h = img.size
    size = (max(base, int(round(w / base) * base)), max(base, int(round(h / base) * base)))
    return img if size == (w, h) else img.resize(size, Image.Resampling.BICUBIC)


def _scale_width(img: Image.Image, width: int, crop_size: int) -> Image.Image:
    """Reference ``__scale_width``: width to ``width``, aspect kept, height at least ``crop_size``."""
    w, h = img.size
    if w == width and h >= crop_size:
        return img
    height = int(max(width * h / w, crop_size))
    return img.resize((width, height), Image.Resampling.BICUBIC)


def _crop(img: Image.Image, size: int, rng: random.Random | None, source: str) -> Image.Image:
    """A ``size``×``size`` crop: random when ``rng`` is given, else centred (as torchvision's)."""
    w, h = img.size
    if w < size or h < size:
        # The reference's RandomCrop would fail here; enlarging keeps the image usable.
        scale = size / min(w, h)
        new = (max(size, round(w * scale)), max(size, round(h * scale)))
        _warn(f"image {source or '(unnamed)'} is {w}x{h}, smaller than crop_size {size}: resized up to {new[0]}x{new[1]}")
        img = img.resize(new, Image.Resampling.BICUBIC)
        w, h = new
    if rng is None:
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    else:
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    return img.crop((left, top, left + size, top + size))


def _pad_to_multiple(t: torch.Tensor, base: int) -> torch.Tensor:
    """Pad right and bottom so H and W are multiples of ``base`` (the generator's size multiple).

    For the images that are not cropped (``scale_width``, and ``none`` after the reference's resize
    to a multiple of 4), when the generator needs more (a U-Net: 2^depth): the reference would
    fail there. Padding leaves the pixels as they are. Reflection needs the pad to be smaller
    than the side, so tiny images are padded by repeating the edge.
    """
    h, w = t.shape[-2:]
    pad_h, pad_w = -h % base, -w % base
    if pad_h == 0 and pad_w == 0:
        return t
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(t.unsqueeze(0), (0, pad_w, 0, pad_h), mode=mode).squeeze(0)


# --------------------------------------------------------------------------------------------
# The dataset


class UnalignedDataset(torch.utils.data.Dataset):
    """Pairs of unrelated A and B images, keyed by ``(a_index, b_index, aug_seed)``.

    The reference draws the B index and the augmentation inside ``__getitem__`` from global RNGs,
    so what a worker returns depends on scheduling. Here the key says it all: A is preprocessed
    with ``random.Random(aug_seed)`` and B with ``random.Random(f"{aug_seed}/B")`` (a string seed
    is hashed with SHA-512, so the B stream never coincides with an A stream of another key and
    does not depend on the process), and the same key always gives bitwise the same tensors.
    Indices are taken modulo the domain sizes, as the reference does for A. A is loaded with
    ``channels`` and B with ``channels_b`` (default: the same), the generators' in and out channels.
    A one-domain method has no ``source_b`` (``n_b`` is 0): items are ``{"A": …}`` alone.
    """

    def __init__(self, source_a: Source, source_b: Source | None, cfg: DataConfig, channels: int = 3, *, train: bool = True,
                 size_multiple: int = 4, channels_b: int | None = None):
        self.size_multiple = size_multiple  # what the generators need of a side (``preprocess: none`` pads)
        self.source_a = source_a
        self.source_b = source_b
        self.cfg = cfg
        self.channels = channels
        self.channels_b = channels if channels_b is None else channels_b
        self.train = train
        self.n_a = len(source_a)
        self.n_b = 0 if source_b is None else len(source_b)

    def __len__(self) -> int:
        return max(self.n_a, self.n_b)

    def __getitem__(self, key: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """``key`` is (A index, B index, augmentation seed), and optionally a fourth element, 1 for
        an item of the decay steps under ``data.decay_no_crop``: resized straight to the crop size
        (no random crop, flips kept), as CUT's ``unaligned_dataset.py`` once epoch > n_epochs."""
        a_index, b_index, aug_seed = (int(k) for k in key[:3])
        cfg = self.cfg
        if len(key) > 3 and int(key[3]):
            cfg = dataclasses.replace(cfg, load_size=cfg.crop_size)
        out = {}
        for domain, source, index, channels, rng in (
            ("A", self.source_a, a_index, self.channels, random.Random(aug_seed)),
            ("B", self.source_b, b_index, self.channels_b, random.Random(f"{aug_seed}/B")),
        ):
            if source is None:
                continue
            img, name = self._load(source, index, channels)
            out[domain] = preprocess(img, cfg, rng, self.train, source=name, size_multiple=self.size_multiple)
        return out

    def _load(self, source: Source, index: int, channels: int) -> tuple[Image.Image, str]:
        """Load ``index``; if it has become unreadable since the scan, the next readable one."""
        n = len(source)
        for step in range(n):
            i = (index + step) % n
            try:
                return source.load(i, channels), source.describe(i)
            except UnreadableImageError as e:
                if self.cfg.strict_images:
                    raise
                _warn(f"{e} (using the next image instead)")
        raise DataError(f"none of the {n} images in {source.name} can be read")


class PairedDataset(UnalignedDataset):
    """Pairs of the same scene (pix2pix): item i of A with item i of B, keyed as
    ``UnalignedDataset`` is, ``(index, unused, aug_seed)`` (the sampler's B index is not used).

    The same random crop and flip apply to both images, as the official ``aligned_dataset.py``
    does: B is brought to A's size first (bicubic, where a paired folder's B differs), and both
    are preprocessed with their own ``random.Random(aug_seed)``, so the two streams draw the same
    crop offset and the same flip.
    """

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        index, _, aug_seed = (int(k) for k in key)
        (a, b), name = self._load_pair(index)
        if b.size != a.size:
            b = b.resize(a.size, Image.Resampling.BICUBIC)
        return {domain: preprocess(img, self.cfg, random.Random(aug_seed), self.train, source=name,
                                   size_multiple=self.size_multiple) for domain, img in (("A", a), ("B", b))}

    def _load_pair(self, index: int) -> tuple[tuple[Image.Image, Image.Image], str]:
        """Pair ``index``; if a side has become unreadable since the scan, the next readable pair."""
        n = self.n_a
        for step in range(n):
            i = (index + step) % n
            try:
                return (self.source_a.load(i, self.channels), self.source_b.load(i, self.channels_b)), \
                    self.source_a.describe(i)
            except UnreadableImageError as e:
                if self.cfg.strict_images:
                    raise
                _warn(f"{e} (using the next pair instead)")
        raise DataError(f"none of the {n} pairs in {self.source_a.name} can be read")
