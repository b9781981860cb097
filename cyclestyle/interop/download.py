"""Fetching the official pretrained CycleGAN and CUT generators: resumable, cached, with a progress bar.

The CycleGAN files (45 MB each) come from the official host over plain HTTP, as the official
download script fetches them; CUT's six (CUT and FastCUT on horse2zebra, cat2dog and cityscapes)
come in one archive, ``pretrained_models.tar`` from the link of CUT's README, which holds
``checkpoints/NAME_pretrained/latest_net_G.pth`` for each. A transfer writes to ``NAME.pth.part`` and continues from its length with an
HTTP ``Range`` request, so a cut connection or a Ctrl-C costs only what was not yet received; the
finished file is renamed into the cache (``$XDG_CACHE_HOME/cyclestyle/pretrained``, else
``~/.cache/cyclestyle/pretrained``) and not fetched again. ``CYCLESTYLE_PRETRAINED_URL`` replaces
the CycleGAN host and ``CYCLESTYLE_CUT_PRETRAINED_URL`` CUT's (a mirror, or the tests' local server).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

# The names of the official download script (scripts/download_cyclegan_model.sh), in its order.
PRETRAINED = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
              "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh",
              "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
              "facades_label2photo", "iphone2dslr_flower")
OFFICIAL_HOST = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
# The official pix2pix generators (scripts/download_pix2pix_model.sh: latest_net_G.pth of each), named
# ``pix2pix/NAME``: sat2map, map2sat and facades_label2photo are CycleGAN names too.
PIX2PIX = "pix2pix/"
PIX2PIX_PRETRAINED = tuple(PIX2PIX + name for name in (
    "facades_label2photo", "sat2map", "map2sat", "edges2shoes", "edges2handbags", "day2night"))
PIX2PIX_HOST = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
# A mirror (or the tests' local server) given in this variable holds the CycleGAN files at URL/NAME.pth
# and the pix2pix ones at URL/pix2pix/NAME.pth.
HOST_VARIABLE = "CYCLESTYLE_PRETRAINED_URL"
# CUT's published models (its README and experiments/pretrained_launcher.py, in that order), named
# here as their folders in the archive less "_pretrained"; cityscapes translates labels to photos.
CUT_PRETRAINED = ("cityscapes_cut", "cityscapes_fastcut", "horse2zebra_cut", "horse2zebra_fastcut", "cat2dog_cut",
                  "cat2dog_fastcut")
CUT_HOST = "http://efrosgans.eecs.berkeley.edu/CUT"
CUT_HOST_VARIABLE = "CYCLESTYLE_CUT_PRETRAINED_URL"
CUT_ARCHIVE = "pretrained_models.tar"
CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A transfer that failed; one line with what to do by hand."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cyclestyle"


def pretrained_url(name: str) -> str:
    """Where the official pretrained model ``name`` is fetched from: its own .pth (CycleGAN's,
    ``PRETRAINED``, and pix2pix's, ``PIX2PIX_PRETRAINED``), or the archive that holds it (CUT's)."""
    if name in CUT_PRETRAINED:
        return f"{os.environ.get(CUT_HOST_VARIABLE, CUT_HOST).rstrip('/')}/{CUT_ARCHIVE}"
    mirror = os.environ.get(HOST_VARIABLE)
    if name in PIX2PIX_PRETRAINED:
        host = f"{mirror.rstrip('/')}/pix2pix" if mirror else PIX2PIX_HOST
        return f"{host}/{name.removeprefix(PIX2PIX)}.pth"
    if name not in PRETRAINED:
        raise DownloadError(f"no official pretrained model {name!r} (cyclestyle pretrained --list shows the names)")
    return f"{(mirror or OFFICIAL_HOST).rstrip('/')}/{name}.pth"


def file_name(name: str) -> str:
    """The files' name for model ``name``: ``pix2pix/edges2shoes`` → ``pix2pix_edges2shoes``."""
    return name.replace("/", "_")


def cut_archive_member(name: str) -> str:
    """The path of CUT model ``name``'s generator in CUT's archive (its README: the weights are at
    checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth once it is unpacked)."""
    return f"checkpoints/{name}_pretrained/latest_net_G.pth"


def fetch(url: str, dest: Path, retries: int = 3, timeout: float = 30.0, progress: bool = True, *,
          size: int | None = None, sha256: str | None = None, verify: Callable[[Path], object] | None = None) -> Path:
    """``dest``, downloaded from ``url`` unless it is there already. Each attempt continues the
    ``.part`` file where the last one stopped; after ``retries`` cut transfers the part is kept for
    the next call and a ``DownloadError`` says how far it got.

    What arrived enters the cache (is renamed to ``dest``) only once it has passed the checks:
    ``size`` in bytes and ``sha256`` (hex) where they are known, and ``verify(path)``, which raises
    on a file that is not what was asked for (it must load as a state dict, say). A file that fails
    them is removed, and the ``DownloadError`` names it and says what it was (an HTML page …). A
    cached ``dest`` is checked again: one that fails (written before these checks) is removed,
    said in a line, and downloaded again."""
    checks = (size, sha256, verify)
    if dest.is_file():
        problem = _problem(dest, *checks)
        if problem is None:
            return dest
        dest.unlink()
        print(f"cyclestyle: removed {dest} from the cache: it is {problem}; downloading it again", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    problem = ""
    for _ in range(retries + 1):
        try:
            if _transfer(url, part, timeout, progress):
                bad = _problem(part, *checks)
                if bad is not None:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"{url} sent {bad}; it was removed, so nothing entered the cache at {dest}")
                os.replace(part, dest)
                return dest
            problem = f"the transfer was cut at {part.stat().st_size} bytes"
        except urllib.error.HTTPError as e:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:  # no route, refused, timed out, reset
            reason = getattr(e, "reason", None) or e
            if not part.exists() or part.stat().st_size == 0:
                raise DownloadError(f"cannot reach {url} ({reason})") from None
            problem = f"the transfer stopped at {part.stat().st_size} bytes ({reason})"
    raise DownloadError(f"{url}: {problem}; run the same command again to resume")


def _problem(path: Path, size: int | None, sha256: str | None, verify: Callable[[Path], object] | None) -> str | None:
    """Why the file at ``path`` is not the download asked for, in a few words; None when it is."""
    have = path.stat().st_size
    if size is not None and have != size:
        return f"{_looks_like(path) or 'a file'} of {have} bytes, not {size}"
    if sha256 is not None:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != sha256.lower():
            return f"{_looks_like(path) or 'a file'} whose sha256 is {digest.hexdigest()}, not {sha256.lower()}"
    if verify is not None:
        try:
            verify(path)
        except Exception as e:  # the check's own one-line reason
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return _looks_like(path) or f"a file that is not the one asked for ({reason})"
    return None


def _looks_like(path: Path) -> str:
    """What a file that starts with markup is, as servers and portals send it; else empty."""
    with path.open("rb") as f:
        head = f.read(512).lstrip()
    return "an HTML page (a login, error or captive-portal page?)" if head.startswith(b"<") else ""


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> bool:
    """One attempt: append to ``part`` from its current length. True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing after what we have: the part is the whole file
            return True
        raise
    with response:
        if have and response.status != 206:  # the server ignored Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5],
                file=sys.stderr, disable=not progress or None, dynamic_ncols=True) as bar:
            while chunk := _read(response):
                out.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size >= total


def _read(response) -> bytes:
    """The next chunk; a connection closed early reads as the end (the length check sees it)."""
    try:
        return response.read(CHUNK)
    except http.client.IncompleteRead:
        return b""
