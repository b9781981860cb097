"""The one HTML page writer and the one image-grid writer behind every report.

``evaluate`` (index.html), ``compare`` (index.html, grid.png) and the demo (report.html,
report.png) describe their pages as blocks (pure data) and write them here, so the pages look and
escape alike, and a metrics table has one column per registered metric wherever it appears.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .registry import Metric

CELL_WIDTH = 192  # px: every image of an image table is shown this wide
HEADER_HEIGHT = 18  # px: the row of column titles on top of a grid


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Text, then ``links`` (text, href) separated by dots; ``strong`` for what must not be missed."""

    text: str
    strong: bool = False
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Table:
    """A table of text: ``header`` on top, one tuple of cells per row."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Notes:
    """A bulleted list; ``empty`` is shown as the one item when there is none (None: no list)."""

    items: tuple[str, ...]
    empty: str | None = None


@dataclass(frozen=True)
class Picture:
    """One image at its own size, e.g. a grid PNG."""

    src: str
    alt: str


@dataclass(frozen=True)
class ImageRows:
    """One row per image: its name, then one image per column (None: an empty cell)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str | None, ...]], ...]


Block = Heading | Paragraph | Table | Notes | Picture | ImageRows


# --------------------------------------------------------------------------------------------
# Metrics tables


def fmt(value: Any) -> str:
    """How every report shows a value: 4 significant digits, "—" where there is none."""
    return "—" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))


def metric_columns(chosen: Iterable[Metric]) -> tuple[tuple[str, str], ...]:
    """(key, heading) of each metric's column."""
    return tuple((m.name, m.label) for m in chosen)


def metrics_table(first: str, rows: Mapping[str, Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> Table:
    """One row per entry of ``rows`` (a direction, a method), headed ``first``, with one cell per
    (key, heading) of ``columns``."""
    return Table(header=(first, *(heading for _, heading in columns)),
                 rows=tuple((name, *(fmt(values.get(key)) for key, _ in columns)) for name, values in rows.items()))


# --------------------------------------------------------------------------------------------
# HTML

_STYLE = ("body{font-family:sans-serif}td,th{padding:4px 8px;text-align:center}"
          f".images img{{width:{CELL_WIDTH}px}}")


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _render(block: Block) -> str:
    e = html.escape
    match block:
        case Heading(text):
            return f"<h2>{e(text)}</h2>"
        case Paragraph(text, strong, links):
            anchors = " · ".join(f'<a href="{_attribute(href)}">{e(label)}</a>' for label, href in links)
            body = " ".join(part for part in (e(text), anchors) if part)
            return f"<p><b>{body}</b></p>" if strong else f"<p>{body}</p>"
        case Table(header, rows):
            lines = ["<table border=1><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
            lines += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            return "\n".join(lines) + "</table>"
        case Notes(items, empty):
            shown = items or ((empty,) if empty is not None else ())
            return "<ul>" + "".join(f"<li>{e(item)}</li>" for item in shown) + "</ul>" if shown else ""
        case Picture(src, alt):
            return f'<p><img src="{_attribute(src)}" alt="{_attribute(alt)}"></p>'
        case ImageRows(columns, rows):
            lines = ['<table class="images"><tr><th>image</th>' + "".join(f"<th>{e(c)}</th>" for c in columns)
                     + "</tr>"]
            for name, sources in rows:
                cells = "".join(f'<td><img src="{_attribute(s)}" loading="lazy"></td>' if s is not None
                                else "<td></td>" for s in sources)
                lines.append(f"<tr><td>{e(name)}</td>{cells}</tr>")
            return "\n".join(lines) + "</table>"
    raise TypeError(f"not a report block: {block!r}")


def render_page(title: str, blocks: Iterable[Block]) -> str:
    """The HTML of a page: ``title`` as its title and heading, then the blocks in order."""
    parts = [f'<!doctype html><meta charset="utf-8"><title>{html.escape(title)}</title>',
             f"<style>{_STYLE}</style>", f"<h1>{html.escape(title)}</h1>"]
    parts += [text for text in map(_render, blocks) if text]
    return "\n".join(parts) + "\n"


def write_page(path: Path, title: str, blocks: Iterable[Block]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(title, blocks))
    return path


# --------------------------------------------------------------------------------------------
# Image grids


def write_grid(path: Path, rows: Sequence[Sequence[Path | None]], titles: Sequence[str] = (), scale: int = 1
               ) -> Path:
    """A PNG of images in rows and columns: every cell the size of the largest image times
    ``scale`` (enlarged without smoothing, so pixels stay visible), images centred on white, a
    missing file (or None) a white cell; ``titles`` are written in a row above the columns."""
    present = [p for row in rows for p in row if p is not None and p.is_file()]
    if not present:
        raise ValueError(f"{path.name}: no image to show")
    sizes = [_size(p) for p in present]
    cell_w, cell_h = max(w for w, _ in sizes) * scale, max(h for _, h in sizes) * scale
    top = HEADER_HEIGHT if titles else 0
    columns = max(len(row) for row in rows)
    grid = Image.new("RGB", (cell_w * columns, top + cell_h * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for c, title in enumerate(titles):
        draw.text((c * cell_w + 4, 3), _fitted(draw, title, cell_w - 6), fill="black")
    for r, row in enumerate(rows):
        for c, image_path in enumerate(row):
            if image_path is None or not image_path.is_file():
                continue
            with Image.open(image_path) as img:
                cell = img.convert("RGB")
            if scale != 1:
                cell = cell.resize((cell.width * scale, cell.height * scale), Image.Resampling.NEAREST)
            grid.paste(cell, (c * cell_w + (cell_w - cell.width) // 2, top + r * cell_h + (cell_h - cell.height) // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return path


def _fitted(draw: ImageDraw.ImageDraw, title: str, width: float) -> str:
    """``title``, cut short with "..." where it is wider than ``width`` px: a column's title stays
    over its own column."""
    if draw.textlength(title) <= width:
        return title
    while len(title) > 1 and draw.textlength(title + "...") > width:
        title = title[:-1]
    return title + "..."


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size
