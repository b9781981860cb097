"""What the toolkit's writes must never do: replace one of the command's own inputs, or leave a
killed process's temporaries behind for good.

``refuse_output_over_input`` is called by every library function that writes a file a user
named (translate's outputs, an export, an imported generator) before anything is read or
written: an output that is an input (the same path, a hard link to it, a symbolic link to it or
from it) is refused in one line, ``--overwrite`` or not. ``process_alive`` tells a temporary of a
process that still runs from one that a ``kill -9`` left.

This module is at the bottom of the package: it imports nothing of cyclestyle.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def _identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names, links followed; None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file: the same inode on the same device (the same path,
    a hard link, a symbolic link either way), or, where one is not there yet, the same path once
    links and ``..`` are resolved (``sub/../a.png`` becomes ``a.png`` once ``sub`` is made)."""
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib
    return os.path.realpath(a) == os.path.realpath(b)


def refuse_output_over_input(output: str | Path, inputs: Iterable[str | Path], *, what: str = "--output",
                             error: type[Exception] = ValueError) -> None:
    """Raise ``error`` (one line) when ``output`` is one of ``inputs``: the same file, a hard
    link to it, or a symbolic link either way. ``what`` names the output as the user gave it."""
    refuse_outputs_over_inputs([output], inputs, what=what, error=error)


def refuse_outputs_over_inputs(outputs: Iterable[str | Path], inputs: Iterable[str | Path], *,
                               what: str = "--output", error: type[Exception] = ValueError) -> None:
    """``refuse_output_over_input`` for many outputs at once, in time linear in their number."""
    by_identity: dict[object, Path] = {}
    for source in map(Path, inputs):
        identity = _identity(source)
        if identity is not None:
            by_identity[identity] = source
        by_identity[os.path.realpath(source)] = source
    for output in map(Path, outputs):
        identity = _identity(output)
        source = by_identity.get(identity if identity is not None else os.path.realpath(output))
        if source is not None:
            shown = f"{output}" if output == source else f"{output} (the same file as {source})"
            raise error(f"{what} {shown} is an input of this command: inputs are never written over, "
                        "--overwrite or not")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts as running)."""
    if pid <= 0:
        return True  # not a process id: nothing to conclude, so nothing to remove
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_output(output: str | Path, *, folder: bool, what: str = "--output",
                 error: type[Exception] = ValueError) -> None:
    """Raise ``error`` (one line) when ``output`` cannot be the file (``folder=False``) or the
    folder (``folder=True``) a command is to write, before any work is done: a file where a
    folder is wanted or the reverse (``--overwrite`` replaces a file, never a folder), a file among
    its parents, or a parent this process may not write in. What only the write itself can tell
    (a read-only file system, a full disk; as root, permissions) fails there, and the command line
    names the file in one line (``cli.main``)."""
    output = Path(output)
    if output.is_dir() and not folder:
        raise error(f"{what} {output} is a folder: name a file")
    if output.exists() and not output.is_dir() and folder:
        raise error(f"{what} {output} is a file: name a folder")
    existing = output if folder and output.is_dir() else output.parent  # the folder written in
    while not existing.exists() and existing != existing.parent:  # the nearest existing parent
        existing = existing.parent
    if not existing.is_dir():
        raise error(f"{what} {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"{what} {output}: this user may not write in {existing}")
