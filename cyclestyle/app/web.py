"""The web page (Gradio, the ecosystem's convention for model demos): drop an image (or, on the
Video tab, a short video or animated GIF), pick the translator and its direction, set ``cyclestyle
translate``'s options, and get the translation at the input's size with a button to download it. ``cyclestyle serve`` launches it on this machine;
the ``app.py`` that ``cyclestyle push`` writes builds it in a Hugging Face Space.

Nothing here reaches the internet: Gradio's analytics and version check are off
(``GRADIO_ANALYTICS_ENABLED=False``, set before Gradio is imported), there is no share link, no
server-side rendering (a Node process), and the theme's fonts are the system's rather than Google
Fonts', so the page works offline and tells no one it was opened.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import DataError
from ..devices import default_device
from ..models.weights import CheckpointError
from . import INSTALL
from ..inference.video import VIDEO_EXTENSIONS
from .translators import Offered, Options, open_translators, translate_upload

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read by Gradio when imported and when launched

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]
CACHE_SECONDS = 3600  # uploads and results older than this are deleted, checked as often


class AppMissing(ImportError):
    """Gradio is not installed: the ``[app]`` extra was not asked for."""


def import_gradio():
    """Gradio, or an ``AppMissing`` whose message is the line that installs it."""
    try:
        import gradio
    except ImportError as e:
        raise AppMissing(f"the web app needs the [app] extra ({e.msg}): {INSTALL}") from None
    return gradio


def build_app(offered: dict[str, Offered], device: str | None = None, title: str = "cyclestyle"):
    """The page for the translators ``offered`` (``translators.open_translators``), as a
    ``gradio.Blocks`` that the caller launches (``launch``)."""
    gr = import_gradio()
    events = _Events(gr, offered, device, _results_folder())
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as app:
        gr.Markdown(f"# {title}\nDrop an image, pick a translator and its direction, and translate: the result "
                    "has the image's size.")
        with gr.Row():
            with gr.Column():
                source, button = _image_tab(gr)
                clip, stable, clip_button = _video_tab(gr)
                label, direction = _translator_choice(gr, offered)
                tile, overlap, strength, preserve = _options(gr)
            with gr.Column():
                result, clip_result, download, note = _results(gr)
        label.change(events.pick, label, direction)
        options = [label, direction, tile, overlap, strength, preserve]
        button.click(events.run, [source, *options], [result, download, note])
        clip_button.click(events.run_clip, [clip, *options, stable], [clip_result, download, note])
    return app


def _results_folder() -> Path:
    """A folder of our own for the translations (Gradio serves copies of them), removed at exit."""
    results = Path(tempfile.mkdtemp(prefix="cyclestyle-app-"))
    atexit.register(shutil.rmtree, results, ignore_errors=True)
    return results


def _image_tab(gr):
    """The Image tab: the upload and its button."""
    with gr.Tab("Image"):
        source = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                          label="Image", elem_id="source")
        button = gr.Button("Translate", variant="primary", elem_id="translate")
    return source, button


def _video_tab(gr):
    """The Video tab: the clip, ``--stable`` and the button."""
    with gr.Tab("Video", elem_id="video-tab"):
        clip = gr.File(file_types=[*VIDEO_EXTENSIONS, ".gif"], label="Video or animated GIF "
                       "(translated frame by frame; the sound is kept)", elem_id="clip")
        stable = gr.Checkbox(False, label="Stable: smooth the instance-norm statistics across "
                             "frames against flicker (translate --stable)", elem_id="stable")
        clip_button = gr.Button("Translate the video", variant="primary", elem_id="translate-clip")
    return clip, stable, clip_button


def _translator_choice(gr, offered: dict[str, Offered]):
    """The translator and its direction, the first translator's first direction chosen."""
    first = next(iter(offered.values()))
    label = gr.Dropdown(list(offered), value=first.label, label="Translator", elem_id="translator")
    direction = gr.Radio(list(first.directions), value=next(iter(first.directions)),
                         label="Direction", elem_id="direction")
    return label, direction


def _options(gr):
    """``cyclestyle translate``'s options, folded away: tile, overlap, style strength, preserve colour."""
    with gr.Accordion("Options (as cyclestyle translate's)", open=False):
        # Text boxes, not number boxes: empty (translate's default) is a value of its own,
        # which a number box would show and send as 0 (never tile; no overlap).
        tile = gr.Textbox("", max_lines=1, placeholder="automatic",
                          label="Tile (pixels; empty: automatic, 0: never)", elem_id="tile")
        overlap = gr.Textbox("", max_lines=1, placeholder="the generator's receptive field",
                             label="Tile overlap (pixels)", elem_id="overlap")
        strength = gr.Slider(0, 1, value=1, step=0.05, label="Style strength (output blended with "
                             "the input)", elem_id="strength")
        preserve = gr.Checkbox(False, label="Preserve colour (keep the input's chroma)",
                               elem_id="preserve-color")
    return tile, overlap, strength, preserve


def _results(gr):
    """Where a translation shows: the image, the video, the download button and the note."""
    result = gr.Image(type="filepath", format="png", label="Translation", interactive=False,
                      buttons=["download", "fullscreen"], elem_id="result")  # no share to the hub
    # format None: shown as written, never converted (that would need an ffmpeg program)
    clip_result = gr.Video(format=None, label="Translated video", interactive=False,
                           elem_id="clip-result")
    download = gr.DownloadButton("Download", interactive=False, elem_id="download")
    note = gr.Markdown(elem_id="note")
    return result, clip_result, download, note


@dataclass
class _Events:
    """What the page does when a translator is picked or a button pressed: each translation goes to
    a folder of its own under ``results``; what goes wrong is one line on the page (``gr.Error``)."""

    gr: Any
    offered: dict[str, Offered]
    device: str | None
    results: Path

    def pick(self, label: str):
        directions = list(self.offered[label].directions)
        return self.gr.Radio(choices=directions, value=directions[0])

    def run(self, source, *options):
        result = self._translate(source, "an image", *options)
        return str(result.file), self.gr.DownloadButton(value=str(result.file), interactive=True), result.note

    def run_clip(self, source, *options):
        result = self._translate(source, "a video", *options)
        shown = None if result.file.suffix == ".gif" else str(result.file)  # the player takes no GIF
        return shown, self.gr.DownloadButton(value=str(result.file), interactive=True), result.note

    def _translate(self, source, what, label, direction, tile, overlap, strength, preserve_color, stable=False):
        gr = self.gr
        if source is None:
            raise gr.Error(f"drop {what} first")
        chosen = self.offered[label]
        if direction not in chosen.directions:  # the radio of another translator, changed under it
            raise gr.Error(f"pick a direction of {label}: {', '.join(chosen.directions)}")
        _prune(self.results, CACHE_SECONDS)
        try:
            options = Options(_whole(tile, "tile"), _whole(overlap, "overlap"), float(strength),
                              bool(preserve_color), bool(stable))
            return translate_upload(chosen, chosen.directions[direction], source, options,
                                    Path(tempfile.mkdtemp(dir=self.results)), self.device)
        except (DataError, CheckpointError, ValueError, RuntimeError) as e:  # one line, as translate says it
            raise gr.Error(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None


def _prune(results: Path, seconds: float) -> None:
    """Remove the results (one folder each) older than ``seconds``: a page left open for days keeps
    the disk as it found it."""
    for folder in results.iterdir():
        if time.time() - folder.stat().st_mtime > seconds:
            shutil.rmtree(folder, ignore_errors=True)


def _whole(text: str | None, name: str) -> int | None:
    """A box of pixels: empty is None (translate's default), else a whole number (a ``ValueError``
    naming the box)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of pixels, got {text!r}") from None


def launch(app, host: str | None = None, port: int | None = None, block: bool = True):
    """Serve ``app`` on ``host``:``port`` (None: Gradio's ``GRADIO_SERVER_NAME`` and
    ``GRADIO_SERVER_PORT``, which a Space sets, else 127.0.0.1 and 7860 or the next free port): no
    share link, no Node server, no telemetry. Returns the URL after the server is up; with ``block``, only
    once it is stopped (Ctrl-C)."""
    gr = import_gradio()
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)
    app.launch(server_name=host, server_port=port, share=False, quiet=True, ssr_mode=False, pwa=False,
               mcp_server=False, enable_monitoring=False, show_error=True, prevent_thread_lock=True,
               footer_links=[], theme=theme)
    url = app.local_url
    if block:
        print(f"serving on {url} (Ctrl-C stops)", flush=True)
        app.block_thread()
    return url


def serve(sources: Sequence[str | Path], host: str = "127.0.0.1", port: int | None = None,
          device: str | None = None) -> None:
    """``cyclestyle serve``: open the translators, build the page and serve it until Ctrl-C."""
    import_gradio()  # before opening anything: a missing extra is said first
    device = str(default_device(device))  # a device this machine lacks: one line now, not on the page later
    offered = open_translators(sources)
    for chosen in offered.values():
        print(f"{chosen.label}: {', '.join(chosen.directions)} ({chosen.run.path})", flush=True)
    launch(build_app(offered, device), host, port)
