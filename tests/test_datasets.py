"""``cyclestyle datasets`` against a real HTTP server on the loopback interface: the official
names, a transfer cut mid-body and resumed, the layout ``train`` reads, a second call that does
nothing, and archives that are damaged or would write outside their folder refused in one line
with nothing left behind."""

from __future__ import annotations

import io
import random
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cyclestyle.cli import main
from cyclestyle.config import read_config
from cyclestyle.data import open_domains
from cyclestyle.interop.datasets import CYCLEGAN_NAMES, HOST_VARIABLE, PIX2PIX_NAMES, unpack

from .test_download import server  # noqa: F401 (the local HTTP server fixture)


def png(value: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (value, 255 - value, 40)).save(out, format="PNG")
    return out.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tarred(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


HORSE2ZEBRA = {f"horse2zebra/{split}{domain}/{i}.png": png(10 * i + (domain == "B"))
               for split in ("train", "test") for domain in "AB" for i in range(3)}
FACADES = {f"facades/{split}/{i}.jpg": png(i) for split in ("train", "val", "test") for i in range(2)}


@pytest.fixture
def host(server, monkeypatch):  # noqa: F811 (pytest's fixture by name)
    url, served = server
    monkeypatch.setenv(HOST_VARIABLE, url)
    return served


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line]


def test_list_names_every_dataset_of_both_official_scripts(capsys):
    assert main(["datasets", "--list"]) == 0
    out = capsys.readouterr().out
    for name in CYCLEGAN_NAMES:
        assert f"cyclegan/{name} " in out
    for name in PIX2PIX_NAMES:
        assert f"pix2pix/{name} " in out
    assert "ROOT/facades_pix2pix/" in out and "not served" in out  # cityscapes


def test_get_resumes_a_cut_transfer_unpacks_the_layout_train_reads_and_is_safe_twice(host, tmp_path, capsys):
    archive = zipped(HORSE2ZEBRA)
    host.files["/cyclegan/datasets/horse2zebra.zip"] = archive
    host.cut_at, host.cuts = len(archive) // 3, 1
    root = tmp_path / "data"
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 0
    assert host.ranges == [None, f"bytes={len(archive) // 3}-"]  # the second request asked for the rest only
    folder = root / "horse2zebra"
    assert f"unpacked into {folder}" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert (folder / "trainB" / "2.png").read_bytes() == HORSE2ZEBRA["horse2zebra/trainB/2.png"]
    assert sorted(p.name for p in root.iterdir()) == ["horse2zebra"]  # no archive, part or staging folder left
    sources = open_domains(read_config(None, [f"data.root={folder}"]).data, "train")
    assert [len(s) for s in sources] == [3, 3]

    assert main(["datasets", "get", "cyclegan/horse2zebra", "--root", str(root), "--quiet"]) == 0
    assert f"already in {folder}" in capsys.readouterr().out
    assert len(host.ranges) == 2  # nothing fetched again


def test_a_transfer_cut_past_its_retries_is_resumed_by_the_next_call(host, tmp_path, capsys):
    archive = tarred(FACADES)
    host.files["/pix2pix/datasets/facades.tar.gz"] = archive
    cut = len(archive) // 8
    host.cut_at, host.cuts = cut, 4  # four cuts: the first call's attempts (one and three retries) are all cut
    root = tmp_path / "data"
    assert main(["datasets", "get", "pix2pix/facades", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "run the same command again" in err
    assert (root / "facades.tar.gz.part").stat().st_size == 4 * cut and not (root / "facades_pix2pix").exists()
    assert main(["datasets", "get", "pix2pix/facades", "--root", str(root), "--quiet"]) == 0
    assert host.ranges[-1] == f"bytes={4 * cut}-"
    assert sorted(p.name for p in (root / "facades_pix2pix").iterdir()) == ["test", "train", "val"]
    assert sorted(p.name for p in root.iterdir()) == ["facades_pix2pix"]


@pytest.mark.parametrize("damage", ["crc", "truncated"])
def test_a_damaged_archive_is_refused_in_one_line_with_nothing_unpacked(host, tmp_path, capsys, damage):
    if damage == "crc":  # a byte of a stored member's data changed: the zip still opens
        archive = bytearray(zipped(HORSE2ZEBRA))
        at = bytes(archive).index(HORSE2ZEBRA["horse2zebra/trainA/1.png"][20:40]) + 5
        archive[at] ^= 0xFF
        name, path = "horse2zebra", "/cyclegan/datasets/horse2zebra.zip"
    else:
        archive = tarred(FACADES)[:-200]
        name, path = "edges2shoes", "/pix2pix/datasets/edges2shoes.tar.gz"
    host.files[path] = bytes(archive)
    root = tmp_path / "data"
    assert main(["datasets", "get", name, "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "was removed" in err
    assert list(root.iterdir()) == []  # no dataset, no staging folder, no archive


@pytest.mark.parametrize("members, links, why", [
    ({"horse2zebra/trainA/0.png": png(0), "../evil.png": png(1)}, None, "outside its folder"),
    ({"/tmp/evil.png": png(1)}, None, "outside its folder"),
    ({"horse2zebra/trainA/0.png": png(0)}, {"horse2zebra/trainB": "../../"}, "a link"),
])
def test_an_archive_that_would_write_outside_its_folder_is_refused_whole(tmp_path, members, links, why):
    from cyclestyle.interop.datasets import DatasetError

    archive = tmp_path / "data" / "x.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(tarred(members, links))
    with pytest.raises(DatasetError, match=why):
        unpack(archive, tmp_path / "data" / "horse2zebra")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["x.tar.gz"]
    assert not (tmp_path / "evil.png").exists()


def test_a_zip_with_a_parent_path_is_refused(host, tmp_path, capsys):
    host.files["/cyclegan/datasets/mini.zip"] = zipped({"mini/trainA/0.png": png(0), "mini/../../evil.png": png(1)})
    root = tmp_path / "data"
    assert main(["datasets", "get", "mini", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "outside its folder" in err
    assert not (tmp_path / "evil.png").exists() and not (root / "mini").exists()


def test_an_archive_without_the_layout_is_refused_and_unpacks_nothing(host, tmp_path, capsys):
    host.files["/cyclegan/datasets/horse2zebra.zip"] = zipped({"horse2zebra/photos/0.png": png(0)})
    root = tmp_path / "data"
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "trainA/, trainB/" in err and "photos" in err
    assert not (root / "horse2zebra").exists() and not any(p.name.startswith(".") for p in root.iterdir())
    assert "the archive is kept: remove it to fetch" in err and (root / "horse2zebra.zip").is_file()


def test_offline_is_one_line_with_the_url_and_where_to_put_the_archive(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(HOST_VARIABLE, f"http://127.0.0.1:{port}")
    root = tmp_path / "data"
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1
    assert f"http://127.0.0.1:{port}/cyclegan/datasets/horse2zebra.zip" in err and str(root / "horse2zebra.zip") in err
    # Put there by hand, the archive is taken as it is, with no transfer.
    (root / "horse2zebra.zip").write_bytes(zipped(HORSE2ZEBRA))
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 0
    assert (root / "horse2zebra" / "testA" / "0.png").is_file() and not (root / "horse2zebra.zip").exists()


def test_a_folder_in_the_way_and_bad_names_are_one_line_each(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "monet2photo").mkdir(parents=True)
    (root / "monet2photo" / "mine.txt").write_text("keep me")
    assert main(["datasets", "get", "monet2photo", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "move it away" in err
    assert (root / "monet2photo" / "mine.txt").read_text() == "keep me"
    for name, code, words in (("horse2giraffe", 2, "--list"), ("facades", 2, "pix2pix/facades"),
                              ("cityscapes", 1, "cityscapes-dataset.com")):
        assert main(["datasets", "get", name, "--root", str(root)]) == code
        err = capsys.readouterr().err
        assert len(lines(err)) == 1 and words in err


def test_a_failure_mid_unpacking_leaves_nothing_half_unpacked(host, tmp_path, monkeypatch, capsys):
    """The disk fills after some members are out: the staging folder goes, the target never appears,
    and the checked archive stays for the next try."""
    import errno

    from cyclestyle.interop import datasets

    real_extract = datasets._extract

    def fill_the_disk(archive, into):
        real_extract(archive, into)  # every member out …
        raise OSError(errno.ENOSPC, "No space left on device")  # … then the disk is full

    monkeypatch.setattr(datasets, "_extract", fill_the_disk)
    host.files["/cyclegan/datasets/horse2zebra.zip"] = zipped(HORSE2ZEBRA)
    root = tmp_path / "data"
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and "No space left on device" in err and "nothing was unpacked" in err
    assert sorted(p.name for p in root.iterdir()) == ["horse2zebra.zip"]
    monkeypatch.setattr(datasets, "_extract", real_extract)
    assert main(["datasets", "get", "horse2zebra", "--root", str(root), "--quiet"]) == 0
    assert len(host.ranges) == 1 and sorted(p.name for p in root.iterdir()) == ["horse2zebra"]


def noise(top: str, folders: tuple[str, ...], count: int = 6, size: int = 64 << 10) -> dict[str, bytes]:
    """Members of random bytes (which no compression shrinks): the archive is as large as its data."""
    rng = random.Random(0)
    return {f"{top}/{folder}/{i}.png": rng.randbytes(size) for folder in folders for i in range(count)}


def bytes_read() -> int:
    """The bytes this process has had from read() calls so far, whatever file and library (Linux's rchar)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"])


@pytest.mark.skipif(not Path("/proc/self/io").is_file(), reason="counts reads with Linux's /proc/self/io")
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_get_reads_the_archive_once_checking_and_unpacking_it_in_one_pass(tmp_path, capsys, kind):
    """Every byte of the archive is read (the check is whole) and none twice: no separate checking
    pass before the unpacking one."""
    if kind == "zip":
        members = noise("horse2zebra", ("trainA", "trainB", "testA", "testB"))
        name = folder = "horse2zebra"
        data = zipped(members)
    else:
        members, name, folder = noise("facades", ("train", "val", "test")), "pix2pix/facades", "facades_pix2pix"
        data = tarred(members)
    root = tmp_path / "data"
    root.mkdir()
    archive = root / f"{name.rpartition('/')[2]}.{kind}"
    archive.write_bytes(data)  # put there by hand: no transfer, only the unpacking reads
    before = bytes_read()
    assert main(["datasets", "get", name, "--root", str(root), "--quiet"]) == 0
    read = bytes_read() - before
    assert len(data) <= read < 1.5 * len(data)  # the old check-then-unpack read it three times
    for member, content in members.items():
        assert (root / folder / member.partition("/")[2]).read_bytes() == content
    assert sorted(p.name for p in root.iterdir()) == [folder]


@pytest.mark.parametrize("kind, keep", [("tar.gz", 0.5), ("tar.gz", -4), ("zip", 0.5)])
def test_an_archive_cut_part_way_through_unpacking_is_named_and_removed(host, tmp_path, capsys, kind, keep):
    """Cut mid-way, the members before the cut are unpacked (into the temporary folder) before the
    damage shows; cut in a tar.gz's last bytes (gzip's length field), every member reads whole and
    only the end of the stream shows it. Either way: one line naming the archive, the download
    removed, nothing left."""
    members = noise("facades", ("train", "val", "test"))
    data = tarred(members) if kind == "tar.gz" else zipped(members)
    data = data[:int(len(data) * keep)] if isinstance(keep, float) else data[:keep]
    path = "/pix2pix/datasets/edges2shoes.tar.gz" if kind == "tar.gz" else "/cyclegan/datasets/mini.zip"
    host.files[path] = data
    root = tmp_path / "data"
    name = "edges2shoes" if kind == "tar.gz" else "mini"
    assert main(["datasets", "get", name, "--root", str(root), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(lines(err)) == 1 and str(root / path.rpartition("/")[2]) in err and "was removed" in err
    assert "not a whole zip or tar.gz" in err
    assert list(root.iterdir()) == []
