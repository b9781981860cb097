"""Training samples on disk: a run watchable in a browser with no server and no account.

Every ``log.images_every`` steps (and at the last) the panels that the dashboard shows
(``tracking.HeldOutPanels``: the held-out images translated, translated back, and for pix2pix
beside their true targets) are also written, one above the other, to
``OUTPUT_DIR/samples/step-N.png``, and ``samples/index.html`` lists them newest first with the
losses of the step's log record and its held-out metrics, so that ``log.with: none``, or an
offline dashboard not yet synced, still shows how a run is going
(the official code's ``web/index.html`` does the same, ``util/html.py``). The page is static:
opened as a file, it reloads itself every minute.

``samples/index.json`` holds the entries the page is made from. Every file is written under a
temporary name and renamed into place, so a reader (or a kill) never sees half of one. At most
``log.keep_samples`` images are kept, the newest, as ``train.keep_checkpoints`` keeps
checkpoints; a run resumed from step N drops the entries past N (``trim_samples``), as
``recovery.trim_log`` trims ``log.jsonl``, so the page and the log tell one history.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from .checkpoint import aside
from .tracking import Panel, tile

SAMPLES = "samples"
INDEX_JSON = "index.json"
INDEX_HTML = "index.html"
REFRESH_S = 60  # the page reloads itself this often while it is open
_IMAGE = re.compile(r"step-([0-9]+)\.png")


def samples_dir(run_dir: Path) -> Path:
    return run_dir / SAMPLES


class SampleLog:
    """``OUTPUT_DIR/samples/``: the images, their entries, and the page (main process only)."""

    def __init__(self, folder: Path, keep: int, title: str):
        self.folder, self.keep, self.title = folder, keep, title

    def add(self, step: int, panels: Mapping[str, Panel], record: Mapping[str, Any] | None,
            metrics: Mapping[str, Any] | None) -> Path:
        """Write step ``step``'s panels, with the latest log ``record`` and held-out ``metrics``
        (each with its ``step``), list them first, and prune to the newest ``keep``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        image = self.folder / f"step-{step}.png"
        _replace(image, lambda tmp: stack([p.image for p in panels.values()]).save(tmp, format="PNG"))
        entry = {"step": step, "image": image.name, "captions": [p.caption for p in panels.values()],
                 "losses": _numbers(record), "metrics": _numbers(metrics)}
        entries = [e for e in read_entries(self.folder) if e["step"] != step] + [entry]
        entries.sort(key=lambda e: e["step"], reverse=True)
        for old in entries[self.keep:]:
            (self.folder / old["image"]).unlink(missing_ok=True)
        write_index(self.folder, entries[:self.keep], self.title)
        return image


def write_index(folder: Path, entries: list[dict[str, Any]], title: str) -> None:
    """``index.json`` and ``index.html`` from ``entries`` (newest first), each replaced whole."""
    text = json.dumps(entries, indent=1) + "\n"
    _replace(folder / INDEX_JSON, lambda tmp: tmp.write_text(text))
    page = render_index(entries, title)
    _replace(folder / INDEX_HTML, lambda tmp: tmp.write_text(page, encoding="utf-8"))


def read_entries(folder: Path) -> list[dict[str, Any]]:
    """The entries of ``index.json``, newest first; none when it is missing or unreadable."""
    try:
        entries = json.loads((folder / INDEX_JSON).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    valid = [e for e in entries if isinstance(e, dict) and isinstance(e.get("step"), int)
             and isinstance(e.get("image"), str) and _IMAGE.fullmatch(e["image"])]
    return sorted(valid, key=lambda e: e["step"], reverse=True)


def trim_samples(folder: Path, step: int, title: str) -> int:
    """Before a run starts (``step`` 0) or resumes at ``step``: drop the entries and images past
    ``step`` (a history that no checkpoint holds), and images that no entry lists (a kill between
    the image and the index); returns how many images were removed."""
    if not folder.is_dir():
        return 0
    entries = read_entries(folder)
    kept = [e for e in entries if e["step"] <= step]
    listed = {e["image"] for e in kept}
    removed = 0
    for image in folder.iterdir():
        if _IMAGE.fullmatch(image.name) and image.name not in listed:
            image.unlink(missing_ok=True)
            removed += 1
    if len(kept) != len(entries) or not (folder / INDEX_HTML).is_file():
        write_index(folder, kept, title)
    return removed


def stack(images: list[Image.Image]) -> Image.Image:
    """Images one under the other, left-aligned, on black."""
    return tile([[image.convert("RGB")] for image in images])


def render_index(entries: list[dict[str, Any]], title: str) -> str:
    """The page: one section per entry, in the order given (newest first); every text escaped."""
    esc = html.escape
    sections = "\n".join(_section(e) for e in entries) or "<p>No samples yet.</p>"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="refresh" content="{REFRESH_S}">\n<title>{esc(title)}: samples</title>\n'
            "<style>body{font-family:sans-serif;margin:1em 2em}img{max-width:100%;image-rendering:pixelated}"
            "table{border-collapse:collapse;margin:.3em 0}td,th{padding:.1em .6em;text-align:left}"
            ".caption{color:#555}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}: samples</h1>\n<p>The held-out images, newest step first, as the dashboard shows "
            f"them; the page reloads every {REFRESH_S} s.</p>\n{sections}\n</body>\n</html>\n")


def _section(entry: dict[str, Any]) -> str:
    esc, step = html.escape, entry["step"]
    captions = "".join(f'<p class="caption">{("top", "bottom")[min(i, 1)]}: {esc(str(c))}</p>\n'
                       for i, c in enumerate(entry.get("captions", [])))
    tables = _table("log record", entry.get("losses")) + _table("held-out metrics", entry.get("metrics"))
    return (f'<section id="step-{step}">\n<h2>step {step}</h2>\n'
            f'<img src="{esc(entry["image"])}" alt="held-out samples at step {step}">\n{captions}{tables}</section>')


def _table(what: str, values: Any) -> str:
    """A table of ``values`` (name → number, and the ``step`` they were measured at)."""
    if not isinstance(values, dict) or not values:
        return ""
    esc = html.escape
    measured = values.get("step")
    heading = f"{what} (step {measured})" if measured is not None else what
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in values.items() if k != "step")
    return f"<table><tr><th colspan=2>{esc(heading)}</th></tr>{rows}</table>\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _numbers(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The numbers of a log record or evaluation (with its step), as JSON keeps them."""
    if not values:
        return {}
    return {str(k): v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _replace(path: Path, write: Any) -> None:
    """``write(tmp)`` to a temporary beside ``path``, then rename it into place."""
    tmp = aside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
