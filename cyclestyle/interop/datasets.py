"""The official CycleGAN and pix2pix datasets, fetched and unpacked into the layout ``train`` reads
(what ``cyclestyle datasets`` does).

The names and URLs are those of the official download scripts (junyanz/pytorch-CycleGAN-and-pix2pix
``datasets/download_cyclegan_dataset.sh``: ``NAME.zip`` under ``/cyclegan/datasets``, unpaired,
``NAME/trainA`` … ``testB``; ``download_pix2pix_dataset.sh``: ``NAME.tar.gz`` under
``/pix2pix/datasets``, aligned pairs, ``NAME/train`` … ``test``). ``facades`` and ``maps`` are in
both: ``cyclegan/facades`` and ``pix2pix/facades`` tell them apart, and the pix2pix ones unpack
into ``facades_pix2pix/`` and ``maps_pix2pix/`` so that both can sit in one ``data/``.

A transfer is ``download.fetch``'s: a progress bar, and a cut transfer resumed with a Range
request. The archive is then read once, front to back, checking and unpacking as it goes: every
member is checked before it is written (a member with an absolute path or ``..``, a link, or
anything but files and folders refuses the archive, so nothing is ever written outside the
dataset's folder), and every byte is checked as it is read (a zip's CRCs, a tar.gz's stream and
its gzip CRC to its end). The members go into a temporary folder beside the target, renamed into
place only once they are all out and the layout is the expected one; a damaged download (found
at whatever member) is removed with the temporary folder, one put there by hand is left for its
owner. So a bad archive leaves nothing half-unpacked, and a second call finds the dataset and
does nothing.
``CYCLESTYLE_DATASETS_HOST`` replaces the host (a mirror, or the tests' local server).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .download import DownloadError, fetch

OFFICIAL_HOST = "http://efrosgans.eecs.berkeley.edu"
HOST_VARIABLE = "CYCLESTYLE_DATASETS_HOST"
UNPAIRED = ("trainA", "trainB")  # what a CycleGAN dataset must hold (data.format: folder)
ALIGNED = ("train",)  # what a pix2pix dataset must hold (A and B side by side in each image)
LICENSED = {"cityscapes": "due to its licence the official host does not serve it: download gtFine_trainvaltest.zip "
                          "and leftImg8bit_trainvaltest.zip from https://cityscapes-dataset.com and prepare them with "
                          "the official datasets/prepare_cityscapes_dataset.py"}


class DatasetError(DownloadError):
    """A dataset that cannot be had or unpacked; one line saying what to do."""


class UnknownDataset(DatasetError):
    """A name that is not an official dataset, or that names two (a usage error)."""


@dataclass(frozen=True)
class OfficialDataset:
    """One official dataset: which script names it, the folder it unpacks into under the root, and
    the sub-folders that make it usable (an empty ``expects``: its layout is not checked)."""

    kind: str  # "cyclegan" or "pix2pix"
    name: str
    folder: str
    expects: tuple[str, ...]

    @property
    def archive(self) -> str:
        return f"{self.name}.zip" if self.kind == "cyclegan" else f"{self.name}.tar.gz"

    @property
    def url(self) -> str:
        host = os.environ.get(HOST_VARIABLE, OFFICIAL_HOST).rstrip("/")
        return f"{host}/{self.kind}/datasets/{self.archive}"

    @property
    def description(self) -> str:
        if self.expects == UNPAIRED:
            return "unpaired: trainA/ trainB/ testA/ testB/"
        return "paired: train/ val/ test/, A|B side by side" if self.expects == ALIGNED else "images"


# The official scripts' names, in their order (cityscapes is listed there too, and refused).
CYCLEGAN_NAMES = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                  "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower", "ae_photos",
                  "mini", "mini_pix2pix", "mini_colorization", "grumpifycat")
PIX2PIX_NAMES = ("cityscapes", "night2day", "edges2handbags", "edges2shoes", "facades", "maps")
# What the archives hold where it is not the kind's layout: a folder of photos to translate, and
# the script's small test sets of the other kinds.
_LAYOUT = {"ae_photos": (), "mini_pix2pix": ALIGNED, "mini_colorization": ()}


def official_datasets() -> tuple[OfficialDataset, ...]:
    """Every official dataset, the CycleGAN script's first."""
    cyclegan = tuple(OfficialDataset("cyclegan", n, n, _LAYOUT.get(n, UNPAIRED)) for n in CYCLEGAN_NAMES)
    pix2pix = tuple(OfficialDataset("pix2pix", n, f"{n}_pix2pix" if n in CYCLEGAN_NAMES else n, ALIGNED)
                    for n in PIX2PIX_NAMES)
    return cyclegan + pix2pix


def find_dataset(name: str) -> OfficialDataset:
    """The dataset ``name`` ("horse2zebra", or "pix2pix/facades" where a name is in both
    scripts); an ``UnknownDataset`` naming the choices otherwise."""
    kind, _, bare = name.rpartition("/")
    found = [d for d in official_datasets() if d.name == bare and kind in ("", d.kind)]
    if not found:
        raise UnknownDataset(f"no official dataset {name!r} (cyclestyle datasets --list shows the names)")
    if bare in LICENSED:
        raise DatasetError(f"{name}: {LICENSED[bare]}")
    if len(found) > 1:
        raise UnknownDataset(f"{name} is both a CycleGAN dataset (unpaired) and a pix2pix one (paired): "
                             f"say cyclegan/{name} or pix2pix/{name}")
    return found[0]


def get_dataset(name: str, root: str | Path = "data", *, progress: bool = True) -> tuple[Path, bool]:
    """(the dataset's folder under ``root``, whether it was unpacked now). A folder already there
    with the dataset's layout is kept as it is (False); one without it is an error, never
    overwritten. Otherwise the archive is fetched into ``root`` (resumed if a transfer was cut;
    taken as it is if put there by hand), checked and unpacked in one pass (``unpack``), and removed."""
    dataset = find_dataset(name)
    root = Path(root).expanduser()
    target = root / dataset.folder
    if target.exists():
        missing = _missing(target, dataset.expects)
        if missing:
            raise DatasetError(f"{target} exists but is not {dataset.name} (it has no {'/, '.join(missing)}/): "
                               "move it away, or give another --root")
        return target, False
    archive = root / dataset.archive
    by_hand = archive.is_file()
    try:
        fetch(dataset.url, archive, progress=progress)
    except DownloadError as e:
        raise DatasetError(f"{e}. Offline? Fetch {dataset.url} by hand, put it at {archive} and run the same "
                           "command again") from None
    try:
        unpack(archive, target, dataset.expects)
    except DamagedArchive as e:
        if by_hand:
            raise DatasetError(f"{e}; replace it with a whole copy of {dataset.url}") from None
        archive.unlink(missing_ok=True)
        raise DatasetError(f"{e}: it came from {dataset.url} and was removed; run the same command again to fetch "
                           "it anew") from None
    except WrongLayout as e:
        raise DatasetError(f"{e}; the archive is kept: remove it to fetch {dataset.url} anew") from None
    archive.unlink()
    return target, True


def _missing(folder: Path, expects: tuple[str, ...]) -> list[str]:
    return [sub for sub in expects if not (folder / sub).is_dir()]


# --------------------------------------------------------------------------------------------
# Archives: checked and unpacked member by member, in one pass


class DamagedArchive(DatasetError):
    """An archive that is not a whole zip or tar.gz (truncated, corrupt, another file), or that
    holds a member a dataset never holds: a download to remove, not a failure to write."""


class WrongLayout(DatasetError):
    """A whole archive without the folders the dataset has (``expects``): kept for the user to
    look into, since fetching it again would bring the same file."""


# What reading a bad archive raises: zipfile's CRC and header checks, tarfile's, gzip's end of stream.
_DAMAGE = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error)


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn what reading ``path`` raises into a ``DamagedArchive`` naming it (writes stay outside)."""
    try:
        yield
    except _DAMAGE as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DamagedArchive(f"{path} is not a whole zip or tar.gz archive ({reason})") from None


def _checked_name(name: str) -> str:
    """``name`` if it is a relative path that stays inside the folder it is unpacked into."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or ".." in parts or (parts[0].endswith(":")):
        raise DamagedArchive(f"refused the archive: member {name!r} would be written outside its folder")
    return name


def _checked_zip_member(info: zipfile.ZipInfo) -> str:
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 where the writer recorded no type
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise DamagedArchive(f"refused the archive: member {info.filename!r} is a link or a special file, "
                             "which a dataset never holds")
    return _checked_name(info.filename)


def _checked_tar_member(member: tarfile.TarInfo) -> str:
    if not (member.isfile() or member.isdir()):
        raise DamagedArchive(f"refused the archive: member {member.name!r} is a link or a special file, "
                             "which a dataset never holds")
    return _checked_name(member.name)


def unpack(archive: Path, target: Path, expects: tuple[str, ...] = ()) -> None:
    """Unpack ``archive`` into the new folder ``target``: all of it or nothing, reading it once.
    The members go into a temporary folder beside ``target``, each checked before it is written
    (``_extract``); a single top folder (``horse2zebra/``) becomes ``target``, which must then hold
    ``expects``; the rename is the last step. A ``DamagedArchive`` says the archive is bad (a
    download to remove), any other ``DatasetError`` that it could not be unpacked here."""
    staging = target.with_name(f".{target.name}.unpacking-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        try:
            _extract(archive, staging)
        except OSError as e:  # a full disk, or no archive to open: the archive's own faults are DamagedArchive
            raise DatasetError(f"could not unpack {archive}: {e.strerror or e}; "
                               f"nothing was unpacked into {target}") from None
        content = _content(staging)
        missing = _missing(content, expects)
        if missing:
            held = ", ".join(sorted(p.name for p in content.iterdir())[:8]) or "nothing"
            raise WrongLayout(f"{archive} does not hold the expected {'/, '.join(missing)}/ (it holds {held}); "
                               f"nothing was unpacked into {target}")
        os.replace(content, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, into: Path) -> None:
    """Every member of ``archive`` written under ``into`` as it is read, the archive read once: a
    zip's members in the order of its central directory, each one's CRC checked as its last byte
    is read; a tar.gz front to back, its gzip CRC checked at the end. A member is checked (a file
    or folder, a relative path with no ``..``) before anything of it is written, and only files
    and folders are made, so nothing lands outside ``into``. A bad archive is a ``DamagedArchive``
    part-way through; what was written by then is the caller's to remove."""
    with open(archive, "rb") as raw:
        with _reading(archive):
            zipped = zipfile.is_zipfile(raw)
            raw.seek(0)
        members = _zip_members(raw, archive) if zipped else _tar_members(raw, archive)
        with closing(members):
            for name, data in members:
                _write_member(into.joinpath(*PurePosixPath(name.replace("\\", "/")).parts), data, archive)


def _write_member(destination: Path, data: BinaryIO | None, archive: Path) -> None:
    """A folder (``data`` None) or a file made at ``destination`` from ``data``, read in chunks:
    reading is the archive's fault (``DamagedArchive``), writing the disk's (``OSError``)."""
    if data is None:
        destination.mkdir(parents=True, exist_ok=True)
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    with data, open(destination, "wb") as out:
        while True:
            with _reading(archive):
                chunk = data.read(1 << 20)
            if not chunk:
                return
            out.write(chunk)


def _zip_members(raw: BinaryIO, path: Path) -> Iterator[tuple[str, BinaryIO | None]]:
    """(name, its data, or None for a folder) of each member of the zip in ``raw``, checked."""
    with _reading(path):
        zipped = zipfile.ZipFile(raw)
    with zipped:
        for info in zipped.infolist():
            name = _checked_zip_member(info)
            with _reading(path):
                data = None if info.is_dir() else zipped.open(info)
            yield name, data


def _tar_members(raw: BinaryIO, path: Path) -> Iterator[tuple[str, BinaryIO | None]]:
    """(name, its data, or None for a folder) of each member of the tar (gz, bz2, xz) in ``raw``,
    checked, in the archive's order (each one's data read before the next member is asked for,
    so the compressed stream is read front to back once), then the stream read to its end: a
    gzip's CRC and length are checked there, and a transfer cut in its last bytes is seen."""
    with _reading(path):
        tarred = tarfile.open(fileobj=raw, mode="r:*")
    with tarred:
        members = iter(tarred)
        while True:
            with _reading(path):
                member = next(members, None)
            if member is None:
                break
            name = _checked_tar_member(member)
            with _reading(path):
                data = tarred.extractfile(member) if member.isfile() else None
            yield name, data
        with _reading(path):
            while tarred.fileobj.read(1 << 20):
                pass


def _content(staging: Path) -> Path:
    """The dataset's folder in what was unpacked: its one top folder (macOS's __MACOSX aside), or
    the whole when the members were not in one."""
    entries = [p for p in staging.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
