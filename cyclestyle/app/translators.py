"""What the web app offers and does, without any web library: the translators a person picks from
(a label for each run and each of its directions) and one uploaded image translated exactly as
``cyclestyle translate`` translates a file (``inference.files.translate_file``), written as a PNG
to download."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import save_image
from ..inference.files import image_translator, translate_file
from ..inference.hub import HUB_PREFIX
from ..inference.run import TrainedRun, open_run
from ..run_folder import CHECKPOINTS

ARROWS = {"AtoB": "A → B", "BtoA": "B → A"}


@dataclass(frozen=True)
class Offered:
    """One translator of the page: the run it opens, and its directions by the label shown."""

    label: str
    run: TrainedRun
    directions: dict[str, str]  # label shown ("A → B") -> "AtoB"


def open_translators(sources: Sequence[str | Path], names: Sequence[str] | None = None) -> dict[str, Offered]:
    """Each source opened as ``--weights`` opens it (a run or checkpoint folder, a generator file, a
    hub folder, ``hf://USER/NAME``), by its label: ``names`` where given, else the folder's or
    file's name (the id for ``hf://``), numbered when two are alike."""
    offered: dict[str, Offered] = {}
    for i, source in enumerate(sources):
        run = open_run(source)
        label = names[i] if names else default_label(source)
        if label in offered:
            label = f"{label} ({i + 1})"
        offered[label] = Offered(label, run, directions_of(run))
    return offered


def default_label(source: str | Path) -> str:
    """``USER/NAME`` for ``hf://USER/NAME``, ``RUN/step-N`` for a checkpoint folder, else the name."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        return text[len(HUB_PREFIX):]
    path = Path(text).expanduser()
    if path.name in ("", ".", ".."):
        path = path.resolve()
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == CHECKPOINTS else path.name


def directions_of(run: TrainedRun) -> dict[str, str]:
    """The directions a person can pick: a lone generator file (which ``open_run`` lends to both
    directions) is one translator, named by its file."""
    if len(set(run.files.values())) == 1 and len(run.files) > 1:
        return {f"{run.path.name}": "AtoB"}
    return {ARROWS[name]: name for name in run.translators}


@dataclass(frozen=True)
class Options:
    """``cyclestyle translate``'s options that the page offers (same names, same meaning)."""

    tile: int | None = None  # None: automatic; 0: never tile; N: N-pixel tiles
    overlap: int | None = None  # None: the generator's receptive field
    style_strength: float = 1.0
    preserve_color: bool = False

    def check(self) -> None:
        """A ``ValueError`` worded as ``translate`` words it."""
        for name, value in (("tile", self.tile), ("overlap", self.overlap)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be at least 0, got {value}")
        if not 0 <= self.style_strength <= 1:
            raise ValueError(f"style strength must be between 0 and 1, got {self.style_strength}")


@dataclass(frozen=True)
class Result:
    file: Path  # the translated image, a PNG at the input's size
    note: str  # one line for the page: what was done, how long it took, what tiling changed of the options


def translate_upload(offered: Offered, direction: str, source: str | Path, options: Options, folder: Path,
                     device: str | None = None) -> Result:
    """Translate the uploaded file ``source`` with ``offered``'s ``direction`` ("AtoB"/"BtoA") and
    write it into ``folder`` as ``NAME-DIRECTION.png`` (PNG: lossless, and it keeps alpha)."""
    options.check()
    started = time.perf_counter()
    translator = image_translator(offered.run, direction, style_strength=options.style_strength,
                                  preserve_color=options.preserve_color, tile=options.tile,
                                  overlap=options.overlap, device=device)
    image = translate_file(translator, source)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{Path(source).stem}-{direction}.png"
    save_image(image, out)
    seconds = time.perf_counter() - started
    done = f"{offered.label}, {ARROWS[direction]}: {image.width}×{image.height} px in {seconds:.1f} s"
    return Result(out, "; ".join([done, *translator.notes]))
