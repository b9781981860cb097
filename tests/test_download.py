"""The pretrained models' download against a real HTTP server on the loopback interface: Range
requests, a transfer cut in the middle and resumed, the cache, and one line when offline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cyclestyle.cli import main
from cyclestyle.interop.download import HOST_VARIABLE, DownloadError, fetch
from cyclestyle.models.weights import load_generator

OFFICIAL = Path(__file__).parent / "fixtures" / "official"


@dataclass
class Served:
    """What the server holds and does: ``files`` by URL path; the first ``cuts`` responses stop
    after ``cut_at`` bytes of their body; every request's Range header is logged."""

    files: dict[str, bytes]
    cut_at: int = 0
    cuts: int = 0
    ranges: list[str | None] = field(default_factory=list)


def handler_for(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            served.ranges.append(self.headers.get("Range"))
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-")) if self.headers.get("Range") else 0
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if served.cuts > 0:
                served.cuts -= 1
                self.wfile.write(body[start:start + served.cut_at])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served(files={})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(served))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


def test_a_cut_transfer_resumes_where_it_stopped(server, tmp_path):
    url, served = server
    served.files["/big.pth"] = PAYLOAD
    served.cut_at, served.cuts = 300_000, 1
    dest = fetch(f"{url}/big.pth", tmp_path / "big.pth", progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert served.ranges == [None, "bytes=300000-"]  # the second request asked for the rest only
    assert not (tmp_path / "big.pth.part").exists()
    fetch(f"{url}/big.pth", dest, progress=False)  # cached: no request
    assert len(served.ranges) == 2


def test_a_transfer_cut_past_its_retries_is_resumed_by_the_next_call(server, tmp_path):
    url, served = server
    served.files["/big.pth"] = PAYLOAD
    served.cut_at, served.cuts = 250_000, 2
    dest = tmp_path / "big.pth"
    with pytest.raises(DownloadError) as caught:
        fetch(f"{url}/big.pth", dest, retries=1, progress=False)
    assert "\n" not in str(caught.value) and "500000 bytes" in str(caught.value) and "again" in str(caught.value)
    assert (tmp_path / "big.pth.part").stat().st_size == 500_000 and not dest.exists()
    fetch(f"{url}/big.pth", dest, retries=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert served.ranges == [None, "bytes=250000-", "bytes=500000-"]


def test_pretrained_downloads_converts_and_says_how_to_translate(server, tmp_path, monkeypatch, capsys):
    url, served = server
    official = (OFFICIAL / "resnet_6blocks_ngf8_net_G_A.pth").read_bytes()
    served.files["/style_monet.pth"] = official
    served.cut_at, served.cuts = len(official) // 2, 1
    monkeypatch.setenv(HOST_VARIABLE, url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["pretrained", "style_monet", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    out = tmp_path / "models" / "style_monet.safetensors"
    assert f"cyclestyle translate --weights {out} --direction AtoB" in capsys.readouterr().out
    assert served.ranges == [None, f"bytes={len(official) // 2}-"]
    assert (tmp_path / "cache" / "cyclestyle" / "downloads" / "style_monet.pth").read_bytes() == official
    io = load_file(str(OFFICIAL / "resnet_6blocks_ngf8_io.safetensors"))
    with torch.inference_mode():
        assert (load_generator(out)(io["input"]) - io["output"]).abs().max().item() <= 1e-5
    assert main(["pretrained", "style_monet", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    assert len(served.ranges) == 2  # the second call is served by the cache


def test_offline_is_one_line_with_the_url_and_the_manual_commands(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(HOST_VARIABLE, f"http://127.0.0.1:{port}/models")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["pretrained", "horse2zebra", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"http://127.0.0.1:{port}/models/horse2zebra.pth" in err
    assert "cyclestyle import-official horse2zebra.pth" in err
    assert main(["pretrained", "horse2giraffe"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "horse2giraffe" in err and "--list" in err


def test_a_missing_file_is_its_http_status(server, tmp_path):
    url, _ = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{url}/nothing.pth", tmp_path / "nothing.pth", progress=False)


REFERENCE_CUT = Path(__file__).parent / "fixtures" / "reference-cut"


def cut_archive(names: dict[str, bytes]) -> bytes:
    """CUT's archive layout (its README): checkpoints/NAME_pretrained/latest_net_G.pth, as tar packs it."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in names.items():
            info = tarfile.TarInfo(f"./checkpoints/{name}_pretrained/latest_net_G.pth")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_pretrained_cut_models_come_from_one_cached_archive_resumed_and_converted(server, tmp_path, monkeypatch,
                                                                                   capsys):
    from cyclestyle.interop.download import CUT_HOST_VARIABLE

    url, served = server
    cut = (REFERENCE_CUT / "cut_resnet_6blocks_ngf8_net_G.pth").read_bytes()
    cyclegan = (OFFICIAL / "resnet_6blocks_ngf8_net_G_A.pth").read_bytes()
    archive = cut_archive({"horse2zebra_cut": cut, "cat2dog_fastcut": cyclegan})
    served.files["/CUT/pretrained_models.tar"] = archive
    served.cut_at, served.cuts = len(archive) // 3, 1
    monkeypatch.setenv(CUT_HOST_VARIABLE, f"{url}/CUT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["pretrained", "horse2zebra_cut", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    out = tmp_path / "models" / "horse2zebra_cut.safetensors"
    assert f"cyclestyle translate --weights {out} --direction AtoB" in capsys.readouterr().out
    assert served.ranges == [None, f"bytes={len(archive) // 3}-"]  # the cut transfer resumed
    assert (tmp_path / "cache" / "cyclestyle" / "downloads" / "CUT_pretrained_models.tar").read_bytes() == archive
    io = load_file(str(REFERENCE_CUT / "cut_io.safetensors"))
    with torch.inference_mode():
        assert (load_generator(out)(io["input"]) - io["output"]).abs().max().item() <= 1e-5
    # another model of the archive: no request, the cached archive serves it
    assert main(["pretrained", "cat2dog_fastcut", "--output", str(tmp_path / "models"), "--quiet"]) == 0
    assert len(served.ranges) == 2 and (tmp_path / "models" / "cat2dog_fastcut.safetensors").is_file()
    capsys.readouterr()
    # a model the (mirror's) archive lacks: the cached archive is set aside, fetched again, and refused in one line
    assert main(["pretrained", "cityscapes_cut", "--quiet"]) == 1
    note, error = capsys.readouterr().err.strip().split("\n")
    assert "removed" in note and error.startswith("cyclestyle: error:")
    assert "holds no checkpoints/cityscapes_cut_pretrained/latest_net_G.pth" in error and len(served.ranges) == 3


def test_offline_cut_is_one_line_with_the_archive_url_and_the_commands(tmp_path, monkeypatch, capsys):
    from cyclestyle.interop.download import CUT_HOST_VARIABLE

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(CUT_HOST_VARIABLE, f"http://127.0.0.1:{port}/CUT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["pretrained", "horse2zebra_cut", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"http://127.0.0.1:{port}/CUT/pretrained_models.tar" in err
    assert ("tar -xf pretrained_models.tar checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth && "
            "cyclestyle import-official checkpoints/horse2zebra_cut_pretrained/latest_net_G.pth") in err


def test_the_list_shows_the_cut_models(capsys):
    assert main(["pretrained", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("horse2zebra_cut", "horse2zebra_fastcut", "cat2dog_cut", "cat2dog_fastcut", "cityscapes_cut",
                 "cityscapes_fastcut", "horse2zebra", "style_monet"):
        assert f"\n  {name}\n" in out + "\n"
