"""The ``cyclestyle`` command line: one program, one subcommand per job.

Each subcommand is a module of ``cyclestyle.commands`` (its help texts, ``add_arguments(parser)``
and ``run(args) -> int``); this module is the table of them, in the order ``cyclestyle --help``
lists them, and the errors every command reports the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import ModuleType
from typing import Sequence

from .commands import (
    compare,
    datasets,
    demo,
    evaluate,
    export,
    gatys,
    import_official,
    pretrained,
    push,
    serve,
    style_train,
    toy_data,
    train,
    translate,
)
from .registry import Registry

DESCRIPTION = ("Unpaired image-to-image translation with CycleGAN (Zhu et al. 2017) and CUT (Park et al. "
               "2020), paired translation with pix2pix (Isola et al. 2017), beside neural style transfer "
               "(Gatys et al.; Johnson et al.'s fast networks).")

COMMANDS: Registry[ModuleType] = Registry("command")
for _name, _module in (
    ("train", train),
    ("style-train", style_train),
    ("translate", translate),
    ("evaluate", evaluate),
    ("gatys", gatys),
    ("compare", compare),
    ("demo", demo),
    ("import-official", import_official),
    ("pretrained", pretrained),
    ("datasets", datasets),
    ("export", export),
    ("push", push),
    ("serve", serve),
    ("toy-data", toy_data),
):
    COMMANDS.register(_name, _module)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclestyle", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION, epilog=module.EPILOG,
                                 formatter_class=module.FORMATTER_CLASS)
        module.add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    began = time.perf_counter()
    args = build_parser().parse_args(argv)
    args.began = began  # what a command's time budget counts from (demo --minutes): loading torch too
    # Imported here so that --help answers without loading torch.
    from .config import ConfigError
    from .data import DataError
    from .devices import DeviceError
    from .interop.download import DownloadError
    from .models.weights import CheckpointError

    try:
        return COMMANDS.get(args.command).run(args)
    except ConfigError as e:  # OutputDirBusy too
        print(f"cyclestyle: config error: {e}", file=sys.stderr)
        return 2
    except DeviceError as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 2
    except (DataError, CheckpointError, DownloadError) as e:
        print(f"cyclestyle: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # what the file system refused (read-only, full, not a folder …): the file, in one line
        print(f"cyclestyle: error: {_os_error(e)}", file=sys.stderr)
        return 1


def _os_error(e: OSError) -> str:
    """``[Errno 13] Permission denied: 'x'`` as ``x: permission denied``, both files of a rename."""
    if e.filename is None:
        return " ".join(str(e).split())
    files = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else f"{e.filename}"
    return f"{files}: {(e.strerror or type(e).__name__).lower()}"


if __name__ == "__main__":
    sys.exit(main())
