"""``cyclestyle import-official`` and ``cyclestyle pretrained``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.weights import CheckpointError
from .download import PRETRAINED, DownloadError, cache_dir, pretrained_url
from .official import fetch_official, import_official


def _describe(spec) -> str:
    a = spec.arguments
    return (f"ResNet generator, ngf {a['ngf']}, {a['n_blocks']} blocks, {spec.in_channels} -> {spec.out_channels} "
            f"channels{', dropout' if a['dropout'] else ''}")


def _translate_hint(weights: Path) -> str:
    return f"  cyclestyle translate --weights {weights} --direction AtoB --output translated/ YOUR_IMAGES"


def import_cli(args) -> int:
    """Convert one official generator file."""
    source, output = Path(args.path).expanduser(), Path(args.output).expanduser()
    if output.exists() and not args.overwrite:
        raise CheckpointError(f"--output {output} exists (--overwrite replaces it)")
    spec = import_official(source, output)
    print(f"wrote {output}: {_describe(spec)}\nuse it with:\n{_translate_hint(output)}")
    return 0


def pretrained_cli(args) -> int:
    """Download (or take from the cache) an official pretrained model and convert it."""
    if args.list or not args.name:
        print("official pretrained CycleGAN generators (cyclestyle pretrained NAME):\n  " + "\n  ".join(PRETRAINED))
        return 0
    url = pretrained_url(args.name)
    output_dir = Path(args.output).expanduser() if args.output else cache_dir() / "pretrained"
    output = output_dir / f"{args.name}.safetensors"
    if not output.is_file() or args.overwrite:
        try:
            raw = fetch_official(args.name, progress=not args.quiet)
        except DownloadError as e:
            raise DownloadError(f"{e}. Offline? Fetch {url} by hand, then: cyclestyle import-official "
                                f"{args.name}.pth --output {output}") from None
        spec = import_official(raw, output)
        print(f"wrote {output}: {_describe(spec)}", file=sys.stderr)
    print(f"{args.name}: {output}\nuse it with:\n{_translate_hint(output)}")
    return 0
