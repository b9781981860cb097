"""Translating image files: files, folders (recursively) and globs into an output folder.

``translate_files`` is what ``cyclestyle translate`` does: it collects the inputs
(``collect_inputs``), keeps each output's name and its input's size, groups images of one size
into batches, tiles the large ones (``tiling.py``) and writes every output atomically; an image
that fails is one line naming it, and the others go on.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch import nn
from tqdm import tqdm

from ..data import (
    IMAGE_EXTENSIONS,
    DataError,
    ImageSizeError,
    UnreadableImageError,
    image_to_tensor,
    load_image,
    remove_dead_parts,
    save_image,
    short_side_size,
    tensor_to_image,
)
from ..devices import default_device
from ..files import check_output, refuse_outputs_over_inputs
from .run import TrainedRun, open_run
from .temporal import DEFAULT_SMOOTHING, reset_statistics, stable_generator
from .tiling import DEFAULT_TILE, TilePlan, ceil_to, plan_tiles, size_multiple
from .translate import (
    AUTO_TILE_PIXELS,
    CompiledGenerator,
    _alpha_of,
    _translate_pixels,
    _wants_tiles,
    has_batch_norm,
    post_process,
    resize_short_side,
    test_mode,
    translate_tensor,
    wants_compile,
)
from .video import VIDEO_EXTENSIONS, import_av, is_clip, translate_clip

# --------------------------------------------------------------------------------------------
# Inputs and outputs


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


TRANSLATABLE = (*IMAGE_EXTENSIONS, ".gif", *VIDEO_EXTENSIONS)
"""What ``translate_files`` reads: the dataset formats, GIF (a still one written as PNG: a GIF
holds only 256 colours; an animated one as a GIF clip) and videos (``video.py``)."""


def _output_name(source: Path, rel: Path) -> Path:
    return rel.with_suffix(".png") if rel.suffix.lower() == ".gif" and not is_clip(source) else rel


def _folder_images(folder: Path, skip: Path | None, ignored: list[Path]) -> list[Path]:
    """The translatable files under ``folder`` (recursively, sorted); the other files go to
    ``ignored`` (hidden ones, such as .DS_Store, are passed over without a word)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not _inside(p, skip))
    ignored += [p for p in files if p.suffix.lower() not in TRANSLATABLE and not p.name.startswith(".")]
    images = [p for p in files if p.suffix.lower() in TRANSLATABLE]
    if not images:
        raise DataError(f"no images in {folder} (searched recursively for {' '.join(TRANSLATABLE)})")
    return images


def collect_inputs(inputs: Sequence[str | Path], exclude: str | Path | None = None,
                   ignored: list[Path] | None = None) -> list[tuple[Path, Path]]:
    """(source, output path relative to the output folder) for every image the inputs name.

    A folder stands for its images (recursively, by extension) and each keeps its path relative to
    that folder; a file or a glob match (``**`` recurses) keeps its file name (a still GIF's output is
    a PNG). Images under ``exclude`` (the output folder) are left out of folders and globs; files of
    a folder that are not images are appended to ``ignored``. A source named twice is taken once;
    two sources that would be written to the same place, or an input that names nothing, are a
    ``DataError``.
    """
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    ignored = [] if ignored is None else ignored
    found: list[tuple[Path, Path]] = []
    for item in map(str, inputs):
        path = Path(item).expanduser()
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in _folder_images(path, skip, ignored)]
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif _is_pattern(item):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(item), recursive=True))
            images = [p for p in matches
                      if p.suffix.lower() in TRANSLATABLE and p.is_file() and not _inside(p, skip)]
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
        rel = _output_name(source, rel)
        if rel in targets:
            raise DataError(f"inputs {targets[rel]} and {source} would both be written to {rel}")
        targets[rel] = source
        result.append((source, rel))
    return result


def _frame_count(path: Path) -> int:
    """Frames of an animated image (GIF, WebP, TIFF …); 1 for a still or unreadable one."""
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except Exception:
        return 1  # reported when the image is loaded


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


def _target_size(size: tuple[int, int], short_side: int | None) -> tuple[int, int] | None:
    """The size the image is translated at; None past the caps (reported when it is loaded)."""
    if short_side is None:
        return size
    try:
        return short_side_size(*size, short_side)
    except ImageSizeError:
        return None


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
        img = resize_short_side(img, short_side, str(path))
        if alpha is not None:
            alpha = resize_short_side(alpha, short_side, str(path))
    return img, alpha


_NO_ALPHA = {"JPEG", "MPEG", "PCX", "PPM", "EPS"}


def _save(img: Image.Image, dst: Path) -> None:
    """Write atomically, in the format the file name says, keeping alpha where the format can."""
    fmt = Image.registered_extensions().get(dst.suffix.lower())
    if fmt in _NO_ALPHA and img.mode in ("RGBA", "LA"):
        img = img.convert(img.mode[:-1])
    save_image(img, dst, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))


# --------------------------------------------------------------------------------------------
# Translating the files


def note(message: str) -> None:
    """One line on stderr that does not break the progress bar."""
    tqdm.write(f"cyclestyle: {message}", file=sys.stderr)


@dataclass
class Tally:
    """What ``translate_files`` did: images translated, skipped (their output exists) and failed."""

    translated: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class _Translator:
    """The generator and how ``translate_files`` runs it: full frame in batches of equal-size images,
    or tile by tile with one plan for the whole run (its notes said once)."""

    generator: nn.Module
    device: torch.device
    channels: int
    multiple: int
    tile: int | None
    overlap: int | None
    strength: float = 1.0  # --style-strength
    preserve_color: bool = False
    precision: str = "fp32"
    compiled: CompiledGenerator | None = None  # the generator through torch.compile, for full frames
    _plan: TilePlan | None = None

    def wants_tiles(self, width: int, height: int) -> bool:
        return _wants_tiles(height, width, self.tile, self.multiple)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the tile plan changed of the options asked for (said once, as ``note`` lines)."""
        return self._plan.notes if self._plan is not None else ()

    def plan(self) -> TilePlan:
        if self._plan is None:
            self._plan = plan_tiles(self.generator, self.tile or DEFAULT_TILE, self.overlap if self.tile else None)
            for text in self._plan.notes:
                note(text)
        return self._plan

    def __call__(self, images: list[Image.Image]) -> list[Image.Image]:
        """Translate images of one size, blended with them and with their colours as asked."""
        if self.wants_tiles(*images[0].size):
            outs = [_translate_pixels(self.generator, img, self.plan(), self.device) for img in images]
        else:
            x = torch.stack([image_to_tensor(img) for img in images]).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                y = translate_tensor(self.compiled or self.generator, x)
            outs = [tensor_to_image(t.float()) for t in y]
        return [post_process(img, out, self.strength, self.preserve_color) for img, out in zip(images, outs)]


def translate_files(
    weights: str | Path | TrainedRun, inputs: Sequence[str | Path], output: str | Path, *,
    direction: str | None = None, style_strength: float = 1.0, preserve_color: bool = False,
    tile: int | None = None, overlap: int | None = None, size: int | None = None, batch_size: int = 4,
    device: str | torch.device | None = None, overwrite: bool = False, compile: str = "auto",
    precision: str = "fp32", progress: bool = True, stable: bool = False, stable_smoothing: float = DEFAULT_SMOOTHING,
    batch_norm: str = "auto", dropout: bool = False, seed: int = 0,
) -> Tally:
    """Translate image files, folders (recursively) and globs into the folder ``output``, each
    output at its input's exact size and under its input's name (``collect_inputs``); returns how
    many were translated, skipped (their output exists and not ``overwrite``) and failed.

    ``weights``: what ``open_run`` opens, or a ``TrainedRun``; ``direction``: "AtoB" or "BtoA"
    (default: the run's only one). ``style_strength`` blends the output with the input and
    ``preserve_color`` keeps the input's chroma (``post_process``). ``tile``: None = full frame up
    to ``AUTO_TILE_PIXELS`` and tiles above, 0 = never tile, N = N-pixel tiles, with ``overlap``
    pixels (default: the generator's receptive field). ``size``: resize so the short side is
    ``size`` first. Images of one size go through the network ``batch_size`` at a time.
    ``compile``: "auto", "on" or "off" (``wants_compile``); ``precision``: "fp32" or "bf16".
    ``batch_norm``, ``dropout`` and ``seed``: how a generator with batch norm or dropout runs
    (``test_mode``: by default as the official ``test.py``, batch norm by each image's own
    statistics, and dropout off unless asked, drawn from ``seed``); a batch-norm generator is
    translated full frame, never in tiles (its statistics are the whole image's).
    Videos and animated GIFs are translated into clips of their own format, frame by frame in
    batches of ``batch_size`` (``video.translate_clip``; PyAV needed, else ``VideoSupportMissing``
    before anything is written); ``stable`` smooths the instance-norm statistics across each
    clip's frames against flicker (``temporal.py``, weight ``stable_smoothing`` on the past).
    An image or clip that cannot be read, translated or written is one line on stderr and counts
    as failed; the others go on. What is wrong with the arguments raises ``ValueError``. A single
    path in ``inputs`` is taken for a list of one.
    """
    inputs = [inputs] if isinstance(inputs, (str, Path)) else inputs
    _check_options(batch_size=batch_size, size=size, tile=tile, overlap=overlap, style_strength=style_strength,
                   stable_smoothing=stable_smoothing)
    check_output(Path(output).expanduser(), folder=True, error=DataError)
    run = weights if isinstance(weights, TrainedRun) else open_run(weights)
    translator = image_translator(run, direction or _only_direction(run), style_strength=style_strength,
                                  preserve_color=preserve_color, tile=tile, overlap=overlap, device=device,
                                  precision=precision)
    generator = translator.generator
    out_root = Path(output).expanduser()
    tally = Tally()
    images, clips = _images_and_clips(_outputs_to_write(_collect(inputs, out_root), out_root, overwrite, tally))
    if clips:
        import_av()  # before anything is written: without PyAV, one line and nothing done
    elif stable:
        note("--stable smooths statistics across the frames of videos; these inputs are images")
    if wants_compile(compile, len(images)) and not (dropout or (batch_norm != "running" and has_batch_norm(generator))):
        translator.compiled = CompiledGenerator(generator, note)
        note(f"compiling the generator for {len(images)} images (--compile {compile}): the first takes longer")
    with torch.inference_mode(), test_mode(generator, batch_norm=batch_norm, dropout=dropout, seed=seed):
        if images:
            _translate_images(images, translator, size, batch_size, progress, tally)
        if clips:
            _translate_clips(clips, translator, stable_smoothing if stable else None, size, batch_size, progress, tally)
    return tally


def _check_options(*, batch_size: int, size: int | None, tile: int | None, overlap: int | None,
                   style_strength: float, stable_smoothing: float) -> None:
    """Each number ``translate_files`` takes in its range: a ``ValueError`` naming the first that is not."""
    for name, value, least in (("batch_size", batch_size, 1), ("size", size, 1), ("tile", tile, 0),
                               ("overlap", overlap, 0)):
        if value is not None and value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    if not 0 <= style_strength <= 1:
        raise ValueError(f"style_strength must be between 0 and 1, got {style_strength}")
    if not 0 <= stable_smoothing <= 1:
        raise ValueError(f"stable_smoothing must be between 0 and 1, got {stable_smoothing}")


def _images_and_clips(todo: list[tuple[Path, Path]]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The jobs split into still images (translated in batches) and clips (videos, animated GIFs)."""
    as_clip = [is_clip(source) for source, _ in todo]
    clips = [job for job, clip in zip(todo, as_clip) if clip]
    images = [job for job, clip in zip(todo, as_clip) if not clip]
    return images, clips


def _translate_images(images: list[tuple[Path, Path]], translator: _Translator, short_side: int | None,
                      batch_size: int, progress: bool, tally: Tally) -> None:
    """Translate the still images batch by batch (``_batches``), under one progress bar."""
    bar = tqdm(total=len(images), unit="img", desc="translate", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)
    for batch in _batches(images, translator, short_side, batch_size):
        _translate_batch(batch, translator, short_side, tally)
        bar.update(len(batch))
    bar.close()


def _translate_clips(clips: list[tuple[Path, Path]], translator: _Translator, smoothing: float | None,
                     short_side: int | None, batch_size: int, progress: bool, tally: Tally) -> None:
    """Translate the clips one after the other (``video.translate_clip``), through ``translator``
    or, with ``smoothing`` (not None), through a copy whose instance norms carry their
    statistics from frame to frame, reset at each clip. Each failure is one line naming the clip."""
    translator = stabilised(translator, smoothing)
    for source, dst in clips:
        try:
            frames = translate_video(translator, source, dst, batch_size=batch_size, short_side=short_side,
                                     progress=progress)
            tally.translated += 1
            note(f"{dst}: {frames} frames")
        except DataError as error:  # VideoError: unreadable, truncated; ImageSizeError (--size)
            note(str(error))
            tally.failed += 1
        except (RuntimeError, ValueError, OSError) as error:  # out of memory, a full disk
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            note(f"cannot translate {source}: {reason}")
            tally.failed += 1


def stabilised(translator: _Translator, smoothing: float | None) -> _Translator:
    """``translator`` itself, or with ``smoothing`` (not None) a copy whose instance norms carry
    their statistics from frame to frame (``temporal.stable_generator``; not compiled)."""
    if smoothing is None:
        return translator
    return dataclasses.replace(translator, generator=stable_generator(translator.generator, smoothing),
                               compiled=None, _plan=None)


def translate_video(translator: _Translator, source: str | Path, dst: str | Path, *, batch_size: int = 4,
                    short_side: int | None = None, progress: bool = False) -> int:
    """One clip translated into ``dst`` as ``translate_files`` translates it, its frames
    ``batch_size`` at a time (``video.translate_clip``), the statistics of a ``stabilised``
    translator reset first; returns the number of frames. A clip that cannot be read is a
    ``VideoError`` and ``dst`` is left as it was."""
    reset_statistics(translator.generator)
    return translate_clip(Path(source), Path(dst), translator, channels=translator.channels, batch_size=batch_size,
                          short_side=short_side, progress=progress)


def image_translator(run: TrainedRun, direction: str, *, style_strength: float = 1.0, preserve_color: bool = False,
                     tile: int | None = None, overlap: int | None = None, device: str | torch.device | None = None,
                     precision: str = "fp32") -> _Translator:
    """Direction ``direction`` of ``run`` on ``device``, run as ``translate_files`` runs it (the
    options are ``translate_files``'); a ``DataError`` for post-processing the translator cannot take."""
    device = default_device(device)
    generator = run.generator(direction, device)
    if has_batch_norm(generator):
        if tile:
            raise DataError(f"--tile {tile}: {run.file(direction).name} has batch norm (a U-Net), whose every output "
                             "pixel sees the whole image: it is translated full frame (leave out --tile)")
        tile = 0
    translator = _Translator(generator, device, run.in_channels(direction), size_multiple(generator),
                             tile, overlap, style_strength, preserve_color, precision)
    _check_post_processing(translator, run.out_channels(direction))
    return translator


def translate_file(translator: _Translator, source: str | Path) -> Image.Image:
    """One image file translated as ``translate_files`` translates it (read as ``load_image``
    reads it, alpha put back), without writing it: what the web app shows. An unreadable image is
    an ``UnreadableImageError``."""
    img, alpha = _load(Path(source), translator.channels, None)
    with torch.inference_mode(), test_mode(translator.generator):  # batch norm as translate's default
        out = translator([img])[0]
    if alpha is not None:
        out.putalpha(alpha)
    return out


def _only_direction(run) -> str:
    """The direction to translate when ``--direction`` is not given: the run's only one."""
    if len(run.files) == 1 or len(set(run.files.values())) == 1:
        return "AtoB" if "AtoB" in run.files else next(iter(run.files))
    raise DataError(f"--weights {run.path} translates {' and '.join(run.files)}: choose one with --direction")


def _check_post_processing(translator: _Translator, out_channels: int) -> None:
    """--style-strength blends the output with the input, --preserve-color takes the input's chroma."""
    if translator.preserve_color and (translator.channels, out_channels) != (3, 3):
        raise DataError("--preserve-color needs a translator of colour images to colour images")
    if translator.strength != 1.0 and translator.channels != out_channels:
        raise DataError(f"--style-strength needs a translator whose output has its input's channels "
                        f"({translator.channels} in, {out_channels} out)")


def _collect(inputs: Sequence[str | Path], out_root: Path) -> list[tuple[Path, Path]]:
    """``collect_inputs``, saying what it ignored and which animations lose frames."""
    ignored: list[Path] = []
    jobs = collect_inputs(inputs, exclude=out_root, ignored=ignored)
    if ignored:
        shown = ", ".join(str(p) for p in ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
        note(f"ignored {len(ignored)} files that are not images ({' '.join(TRANSLATABLE)}): {shown}")
    for source, rel in jobs:
        frames = 1 if is_clip(source) else _frame_count(source)
        if frames > 1:
            note(f"{source} has {frames} frames: the first is translated, into {rel.name}")
    return jobs


def _outputs_to_write(jobs: list[tuple[Path, Path]], out_root: Path, overwrite: bool, tally: Tally
                      ) -> list[tuple[Path, Path]]:
    """(source, destination) of every job whose output is to be written; existing ones are kept
    unless ``overwrite``. An output that is an input is refused, before anything is written; the
    parts of these outputs that killed translations left (``.NAME.PID.part``) are removed."""
    refuse_outputs_over_inputs([out_root / rel for _, rel in jobs], [source for source, _ in jobs], what="output",
                               error=DataError)
    todo = []
    for source, rel in jobs:
        dst = out_root / rel
        remove_dead_parts(dst)
        if dst.exists() and not overwrite:
            note(f"skipped {dst}: it exists (--overwrite replaces it)")
            tally.skipped += 1
        else:
            todo.append((source, dst))
    return todo


def _batches(todo: list[tuple[Path, Path]], translator: _Translator, short_side: int | None, batch_size: int
             ) -> Iterator[list[tuple[Path, Path]]]:
    """Images of one size (as their headers say) go through the network together, in batches of
    no more pixels than the largest full-frame image; images to tile, or of unknown size, alone."""
    groups: dict[tuple, list[tuple[Path, Path]]] = defaultdict(list)
    for i, (source, dst) in enumerate(todo):
        size = _header_size(source)
        target = _target_size(size, short_side) if size is not None else None
        if target is None or translator.wants_tiles(*target):
            groups[("alone", i)].append((source, dst))
        else:
            groups[("full", *target)].append((source, dst))
    for key, items in groups.items():
        step = batch_size
        if key[0] == "full":
            padded = ceil_to(key[1], translator.multiple) * ceil_to(key[2], translator.multiple)
            step = max(1, min(step, AUTO_TILE_PIXELS // padded))
        for start in range(0, len(items), step):
            yield items[start : start + step]


def _translate_batch(batch: list[tuple[Path, Path]], translator: _Translator, short_side: int | None,
                     tally: Tally) -> None:
    """Load, translate and write one batch; each failure is one line naming the image."""
    by_size: dict[tuple[int, int], list] = defaultdict(list)  # the header can mislead
    for source, dst in batch:
        try:
            img, alpha = _load(source, translator.channels, short_side)
        except UnreadableImageError as e:
            note(str(e))
            tally.failed += 1
            continue
        by_size[img.size].append((source, dst, img, alpha))
    for (w, h), entries in by_size.items():
        try:
            outs = translator([img for _, _, img, _ in entries])
        except (RuntimeError, ValueError) as error:  # out of memory, an image the network cannot take
            hint = "; try --tile or a smaller --batch-size" if isinstance(error, torch.OutOfMemoryError) else ""
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            for source, *_ in entries:
                note(f"cannot translate {source} ({w}x{h}): {reason}{hint}")
            tally.failed += len(entries)
            continue
        for (source, dst, _, alpha), out in zip(entries, outs):
            if alpha is not None:
                out.putalpha(alpha)
            try:
                _save(out, dst)
                tally.translated += 1
            except (OSError, ValueError) as e:
                note(f"cannot write {dst} (from {source}): {str(e).strip() or type(e).__name__}")
                tally.failed += 1
