"""The official pretrained CycleGAN, pix2pix and CUT generators: downloaded (cached), converted,
ready to use (what ``cyclestyle pretrained`` does)."""

from __future__ import annotations

from pathlib import Path

from ..files import check_output
from ..models import NetworkSpec
from ..models.weights import CheckpointError
from .download import CUT_ARCHIVE, CUT_PRETRAINED, DownloadError, cache_dir, cut_archive_member, file_name, pretrained_url
from .official import fetch_official, import_official


def download_pretrained(name: str, output_dir: str | Path | None = None, *, overwrite: bool = False,
                        progress: bool = True) -> tuple[Path, NetworkSpec | None]:
    """The converted weights file of the official pretrained model ``name`` (``PRETRAINED``:
    horse2zebra, style_monet …; ``PIX2PIX_PRETRAINED``: pix2pix/edges2shoes …; ``CUT_PRETRAINED``:
    horse2zebra_cut, cat2dog_fastcut …), as ``output_dir/NAME.safetensors``
    (``pix2pix_edges2shoes.safetensors``; default: the cache, ``cache_dir()/pretrained``), and
    the network it holds when it was converted now (None when
    the file was there already and not ``overwrite``). The download resumes where a cut one
    stopped and enters the cache only once it loads as an official generator
    (``fetch_official``); offline, the ``DownloadError`` names the URL to fetch by hand and the
    ``cyclestyle import-official`` command to run on it."""
    url = pretrained_url(name)
    output = (Path(output_dir).expanduser() if output_dir else cache_dir() / "pretrained") / f"{file_name(name)}.safetensors"
    check_output(output, folder=False, error=CheckpointError)  # before the download, not after it
    if output.is_file() and not overwrite:
        return output, None
    try:
        raw = fetch_official(name, progress=progress)
    except DownloadError as e:
        if name in CUT_PRETRAINED:
            member = cut_archive_member(name)
            raise DownloadError(f"{e}. Offline? Fetch {url} by hand, then: tar -xf {CUT_ARCHIVE} {member} && "
                                f"cyclestyle import-official {member} --output {output}") from None
        raise DownloadError(f"{e}. Offline? Fetch {url} by hand, then: cyclestyle import-official "
                            f"{url.rsplit('/', 1)[-1]} --output {output}") from None
    return output, import_official(raw, output)
