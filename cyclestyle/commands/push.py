"""``cyclestyle push``: share a trained translator on the Hugging Face Hub, with a model card."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "share a trained translator on the Hugging Face Hub, with a model card"
DESCRIPTION = (
    "Build the folder a Hugging Face model repository holds (AtoB/ and BtoA/model.safetensors\n"
    "with a config.json each, config.json, config.yaml, and a README.md model card with the\n"
    "training config, data, steps, the last held-out evaluation with its FID protocol,\n"
    "intended use, limitations and license), create the repository and upload it. Needs a hub\n"
    "token (huggingface-cli login, or HF_TOKEN). Anyone can then use it with\n"
    "--weights hf://USER/NAME in translate, evaluate, compare, export and serve.\n"
    "\n"
    "The folder also holds app.py and requirements.txt, and its README the keys of a Gradio\n"
    "Space (sdk: gradio, app_file: app.py): --space USER/NAME uploads it to that Space too, where\n"
    "it serves the web page of `cyclestyle serve` (drop an image, download its translation).")
EPILOG = (
    "examples:\n"
    "  cyclestyle push --weights runs/monet2photo --repo-id me/monet2photo\n"
    "  cyclestyle push --weights runs/monet2photo/checkpoints/best --repo-id me/monet2photo-best --private\n"
    "  cyclestyle push --weights runs/monet2photo --repo-id me/monet2photo --folder hub/ --folder-only"
    "   # look first\n"
    "  cyclestyle push --weights runs/monet2photo --repo-id me/monet2photo --space me/monet2photo-app"
    "   # and a web app")
FORMATTER_CLASS = argparse.RawDescriptionHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--weights", required=True, metavar="RUN",
                   help="a run directory, a checkpoints/step-N or checkpoints/best folder, or a generator file")
    p.add_argument("--repo-id", required=True, metavar="USER/NAME", help="the hub repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--license", default="mit", help="the license of the weights, for the model card (default mit)")
    p.add_argument("--folder", metavar="DIR", help="build the folder here and keep it (default: a temporary folder)")
    p.add_argument("--folder-only", action="store_true", help="build --folder and stop: upload nothing")
    p.add_argument("--space", metavar="USER/NAME",
                   help="also upload the folder to this Hugging Face Space (created as a Gradio Space if needed), "
                        "which then serves the web app")


def run(args: argparse.Namespace) -> int:
    """Build the folder (into --folder or a temporary one), then upload it."""
    import tempfile

    from ..export.hub import build_hub_folder
    from ..inference.hub import HubError
    from ..inference.run import open_run

    if args.folder_only and not args.folder:
        raise HubError("--folder-only needs --folder DIR, the folder to write")
    run = open_run(args.weights)
    if args.folder:
        folder = build_hub_folder(run, Path(args.folder).expanduser(), args.repo_id, args.license)
        print(f"wrote {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
        if args.folder_only:
            return 0
        _upload(folder, args)
        return 0
    with tempfile.TemporaryDirectory(prefix="cyclestyle-push-") as tmp:
        folder = build_hub_folder(run, Path(tmp) / "repo", args.repo_id, args.license)
        _upload(folder, args)
    return 0


def _upload(folder: Path, args: argparse.Namespace) -> None:
    from ..export.hub import push, push_space

    print(f"pushed to {push(folder, args.repo_id, args.private)}")
    if args.space:
        print(f"pushed to the Space {push_space(folder, args.space, args.private)}")
