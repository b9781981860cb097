"""``cyclestyle serve``: trained translators in a local web page (Gradio, the ``[app]`` extra)."""

from __future__ import annotations

import argparse
import sys

HELP = "try translators in a local web page: drop an image or a short clip, pick a direction, download the result"
DESCRIPTION = (
    "Start a web page on this machine where you drop an image, pick one of the translators RUN\n"
    "and its direction, and get the translation at the image's size, with a button to download\n"
    "it (a PNG). The page offers translate's options: tiles (and their overlap), style strength\n"
    "and preserve colour; each image is translated exactly as `cyclestyle translate` translates\n"
    "it. RUN is what translate's --weights takes: a run folder, a checkpoints/step-N folder, a\n"
    "generator .safetensors file, a hub folder or hf://USER/NAME. Open the address it prints in a\n"
    "browser; Ctrl-C stops it. The page is served to this machine only unless --host says\n"
    "otherwise; it makes no share link and sends no analytics, and works offline.\n"
    "\n"
    "Needs the web app extra: pip install \"cyclestyle[app]\" (Gradio).")
EPILOG = (
    "examples:\n"
    "  cyclestyle serve runs/monet2photo                       # http://127.0.0.1:7860\n"
    "  cyclestyle serve runs/monet2photo runs/horse2zebra/G_A.safetensors --port 8080\n"
    "  cyclestyle serve hf://me/monet2photo --host 0.0.0.0       # reachable from the network")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="translators to offer: run folders, checkpoint folders, generator .safetensors files, hub "
                        "folders or hf://USER/NAME")
    p.add_argument("--port", type=int, metavar="N", help="the port (default: 7860, or the next free one)")
    p.add_argument("--host", default="127.0.0.1", metavar="H",
                   help="the address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network "
                        "interface)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (0); 2 without the [app] extra or for a port out of range."""
    if args.port is not None and not 1 <= args.port <= 65535:
        print(f"cyclestyle: error: --port must be between 1 and 65535, got {args.port}", file=sys.stderr)
        return 2
    from ..app.web import AppMissing, serve
    from ..inference.hub import first_line

    try:
        serve(args.runs, args.host, args.port, args.device)
    except AppMissing as e:  # no Gradio: the line that installs it
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the port is taken, the host is not this machine's
        reason = "the port is in use (--port picks another)" if "empty port" in str(e) else first_line(e)
        print(f"cyclestyle: error: cannot serve on {args.host}:{args.port or 7860}: {reason}", file=sys.stderr)
        return 1
    return 0
