"""The web page (Gradio, the ecosystem's convention for model demos): drop an image, pick the
translator and its direction, set ``cyclestyle translate``'s options, and get the translation at
the image's size with a button to download it. ``cyclestyle serve`` launches it on this machine;
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
from pathlib import Path

from ..data import DataError
from ..devices import default_device
from ..models.weights import CheckpointError
from . import INSTALL
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
    results = Path(tempfile.mkdtemp(prefix="cyclestyle-app-"))  # our PNGs; Gradio serves copies of them
    atexit.register(shutil.rmtree, results, ignore_errors=True)
    first = next(iter(offered.values()))

    def pick(label: str):
        directions = list(offered[label].directions)
        return gr.Radio(choices=directions, value=directions[0])

    def run(source, label, direction, tile, overlap, strength, preserve_color):
        if source is None:
            raise gr.Error("drop an image first")
        chosen = offered[label]
        if direction not in chosen.directions:  # the radio of another translator, changed under it
            raise gr.Error(f"pick a direction of {label}: {', '.join(chosen.directions)}")
        _prune(results, CACHE_SECONDS)
        try:
            options = Options(_whole(tile, "tile"), _whole(overlap, "overlap"), float(strength),
                              bool(preserve_color))
            result = translate_upload(chosen, chosen.directions[direction], source, options,
                                      Path(tempfile.mkdtemp(dir=results)), device)
        except (DataError, CheckpointError, ValueError, RuntimeError) as e:  # one line, as translate says it
            raise gr.Error(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
        return str(result.file), gr.DownloadButton(value=str(result.file), interactive=True), result.note

    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as app:
        gr.Markdown(f"# {title}\nDrop an image, pick a translator and its direction, and translate: the result "
                    "has the image's size.")
        with gr.Row():
            with gr.Column():
                source = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                  label="Image", elem_id="source")
                label = gr.Dropdown(list(offered), value=first.label, label="Translator", elem_id="translator")
                direction = gr.Radio(list(first.directions), value=next(iter(first.directions)),
                                     label="Direction", elem_id="direction")
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
                button = gr.Button("Translate", variant="primary", elem_id="translate")
            with gr.Column():
                result = gr.Image(type="filepath", format="png", label="Translation", interactive=False,
                                  buttons=["download", "fullscreen"], elem_id="result")  # no share to the hub
                download = gr.DownloadButton("Download", interactive=False, elem_id="download")
                note = gr.Markdown(elem_id="note")
        label.change(pick, label, direction)
        button.click(run, [source, label, direction, tile, overlap, strength, preserve], [result, download, note])
    return app


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
