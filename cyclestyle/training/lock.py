"""One run per output folder: an exclusive lock on ``OUTPUT_DIR/.lock`` for the run's life.

Two runs in one folder would interleave their checkpoints, prune each other's and move
``latest`` back and forth. The main process of a run takes ``flock`` on the file before it reads
anything there, and writes its pid and host into it, so that a second run refuses at once and
says which process holds the folder. The kernel drops the lock when its process ends, however it
ends (``kill -9`` included): a lock never outlives its run. The file stays, naming the last holder,
unless the run left nothing else: a run that failed before writing anything (a bad data folder)
removes the lock file on release, and the folders it created for itself, so that it leaves nothing.

That removal is safe against a run starting at the same moment: the file is unlinked while the
lock is still held, and ``acquire``, once it holds a lock, checks that the path still names the
file it locked; a run that locked a file just unlinked tries again on the path's new file.

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
    """The lock of one run folder, held through ``fd`` until ``release``; ``created`` are the
    folders that ``acquire`` made (the run folder, then its new parents), deepest first."""

    path: Path
    fd: int
    created: tuple[Path, ...] = ()

    @classmethod
    def acquire(cls, run_dir: Path) -> OutputDirLock:
        """Lock ``run_dir`` (created if need be) or raise ``OutputDirBusy`` naming the holder."""
        created = _missing_folders(run_dir)
        path = run_dir / LOCK_FILE
        while True:  # again whenever the file locked is not, or no longer, the one the path names
            run_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:  # an ending run removed its empty folder after our mkdir
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputDirBusy(busy_message(run_dir)) from None
            if _names(path, fd):
                break
            os.close(fd)
        _HELD.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_line().encode(), 0)
        return cls(path, fd, created)

    def release(self) -> None:
        """Drop the lock; first, while it is still held, remove the lock file and the folders
        ``acquire`` created if the run left nothing else there."""
        if self.fd not in _HELD:
            return
        _HELD.discard(self.fd)
        try:
            self._remove_if_alone()
        finally:
            os.close(self.fd)  # closing the last descriptor drops the lock

    def _remove_if_alone(self) -> None:
        """Unlink the lock file when it is all the folder holds, then rmdir the folders created
        for the run (an rmdir fails, and stops, at the first one that holds anything)."""
        try:
            if [entry.name for entry in os.scandir(self.path.parent)] != [LOCK_FILE]:
                return
            os.unlink(self.path)
            for folder in self.created:
                folder.rmdir()
        except OSError:  # cannot list, unlink or rmdir: what stays is what a run leaves today
            return

    def __enter__(self) -> OutputDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _missing_folders(run_dir: Path) -> tuple[Path, ...]:
    """``run_dir`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    folder = run_dir.absolute()
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return tuple(missing)


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open as ``fd``: not when a run that ended unlinked it (or
    it was replaced) between our open and our lock."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


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
