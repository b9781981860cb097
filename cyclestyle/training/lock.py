"""One run per output folder: an exclusive lock on ``OUTPUT_DIR/.lock`` for the run's life.

Two runs in one folder would interleave their checkpoints, prune each other's and move
``latest`` back and forth. The main process of a run takes ``flock`` on the file before it reads
anything there, and writes its pid and host into it, so that a second run refuses at once and
says which process holds the folder. The kernel drops the lock when its process ends, however it
ends (``kill -9`` included): a lock never outlives its run. The file stays, naming the last holder.

Forked children (DataLoader workers) would share the lock and keep it after their parent's
death until they notice it; each closes its copy at fork, so only the run's own process holds it.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import os
import socket
from pathlib import Path

from ..config import ConfigError

LOCK_FILE = ".lock"

_HELD: set[int] = set()  # file descriptors of the locks this process holds


class OutputDirBusy(ConfigError):
    """Another run holds the output folder's lock."""


@dataclasses.dataclass
class OutputDirLock:
    """The lock of one run folder, held through ``fd`` until ``release``."""

    path: Path
    fd: int

    @classmethod
    def acquire(cls, run_dir: Path) -> OutputDirLock:
        """Lock ``run_dir`` (created if need be) or raise ``OutputDirBusy`` naming the holder."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputDirBusy(busy_message(run_dir)) from None
        _HELD.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_line().encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self.fd in _HELD:
            _HELD.discard(self.fd)
            os.close(self.fd)  # closing the last descriptor drops the lock

    def __enter__(self) -> OutputDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_line() -> str:
    """Who holds a lock: this process, its host and when it took the lock."""
    since = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on host {socket.gethostname()} since {since}\n"


def busy_message(run_dir: Path) -> str:
    """The one line a second run stops with: the folder and the process that holds it."""
    try:
        holder = (run_dir / LOCK_FILE).read_text().strip() or "a process that is starting"
    except (OSError, UnicodeDecodeError):
        holder = "another process"
    return (f"output_dir {run_dir} is in use by another run ({holder}); wait for it to end, stop it, "
            "or choose another output_dir")


def _forget_in_child() -> None:
    """In a forked child: close the inherited lock descriptors, which leaves the parent's lock held."""
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)
