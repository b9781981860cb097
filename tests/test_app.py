"""The web app without a browser: an uploaded image is translated exactly as `cyclestyle translate`
translates the file, the page offers each translator and direction, the folder `push` builds is a
Gradio Space whose app.py builds that page from the folder, and `serve` without the [app] extra is
the line that installs it (tests/test_app_browser.py drives the page in Chromium)."""

from __future__ import annotations

import runpy
import socket
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import cyclestyle
from cyclestyle.app import GRADIO_VERSION, INSTALL
from cyclestyle.app.translators import Options, directions_of, open_translators, translate_upload
from cyclestyle.cli import main
from cyclestyle.data import DataError
from cyclestyle.export.hub import build_hub_folder
from cyclestyle.inference.files import translate_files
from cyclestyle.inference.run import open_run

from .conftest import REPO

RUN = REPO / "tests" / "fixtures" / "v0.2-run"  # a tiny CycleGAN run (ngf 4, one residual block)


def photo(path: Path, size=(52, 40), alpha: bool = False) -> Path:
    """A smooth colour image with texture, of a size that is no multiple of 4 (padding and cropping)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    rng = np.random.default_rng(3)
    rgb = np.stack([np.sin(6 * x + 1), np.cos(5 * y), np.sin(4 * (x + y))], -1) * 0.4 + 0.5
    rgb = np.clip(rgb + rng.normal(0, 0.05, rgb.shape), 0, 1)
    channels = [rgb, (x[..., None] * 0.9 + 0.1)] if alpha else [rgb]
    Image.fromarray((np.concatenate(channels, -1) * 255).round().astype(np.uint8)).save(path)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_serve_without_the_app_extra_is_the_install_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError, as when not installed
    assert main(["serve", str(RUN)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("cyclestyle: error:") and INSTALL in err


def test_serve_refuses_a_port_out_of_range_before_anything(capsys):
    assert main(["serve", str(RUN), "--port", "70000"]) == 2
    assert "--port must be between 1 and 65535, got 70000" in capsys.readouterr().err


def test_serve_on_a_taken_port_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(RUN), "--port", str(port), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"cyclestyle: error: cannot serve on 127.0.0.1:{port}: the port is in use (--port picks another)"


@pytest.mark.parametrize("options, direction", [
    (Options(), "AtoB"),
    (Options(tile=112, overlap=32, style_strength=0.6, preserve_color=True), "BtoA"),  # tiled
    (Options(tile=0, style_strength=0.3), "AtoB"),
])
@pytest.mark.parametrize("alpha", [False, True])
def test_an_uploaded_image_is_translated_exactly_as_translate_translates_the_file(tmp_path, options, direction,
                                                                                  alpha):
    source = photo(tmp_path / "in.png", size=(170, 130), alpha=alpha)
    offered = open_translators([RUN])["v0.2-run"]
    result = translate_upload(offered, direction, source, options, tmp_path / "app", device="cpu")
    tally = translate_files(RUN, [source], tmp_path / "cli", direction=direction, tile=options.tile,
                            overlap=options.overlap, style_strength=options.style_strength,
                            preserve_color=options.preserve_color, device="cpu", progress=False)
    assert tally.translated == 1 and result.file.suffix == ".png"
    ours, theirs = pixels(result.file), pixels(tmp_path / "cli" / "in.png")
    assert ours.shape == theirs.shape == ((130, 170, 4) if alpha else (130, 170, 3))
    assert np.array_equal(ours, theirs)
    assert not np.array_equal(ours[..., :3], pixels(source)[..., :3])  # it did translate
    assert "v0.2-run" in result.note and "170×130 px" in result.note


def test_an_uploaded_clip_is_translated_as_translate_translates_it_plain_and_stable(tmp_path):
    from .test_video import audio_packets, decoded, pan, write_clip

    source = tmp_path / "pan.mp4"
    write_clip(source, pan(6, 64, 48))
    offered = open_translators([RUN])["v0.2-run"]
    frames = {}
    for stable in (False, True):
        result = translate_upload(offered, "AtoB", source, Options(stable=stable), tmp_path / f"app-{stable}", "cpu")
        cli = tmp_path / f"cli-{stable}"
        assert translate_files(RUN, [source], cli, direction="AtoB", stable=stable, device="cpu",
                               progress=False).translated == 1
        assert result.file.name == "pan-AtoB.mp4" and "6 frames" in result.note
        frames[stable] = decoded(result.file)
        assert len(frames[stable]) == 6 and frames[stable][0].shape == (48, 64, 3)
        # the same translation, encoded: equal up to float noise, which the lossy encoder may spread
        assert np.abs(np.stack(frames[stable]).astype(int) - np.stack(decoded(cli / "pan.mp4"))).mean() < 2
        assert audio_packets(result.file) == audio_packets(source)
    # the run has instance norm: smoothing its statistics across frames changes what is translated
    assert np.abs(np.stack(frames[False]).astype(int) - np.stack(frames[True])).mean() > 2


def test_the_options_are_checked_as_translate_checks_them(tmp_path):
    offered = open_translators([RUN])["v0.2-run"]
    source = photo(tmp_path / "in.png")
    for options, message in ((Options(tile=-1), "tile must be at least 0, got -1"),
                             (Options(style_strength=1.5), "between 0 and 1, got 1.5")):
        with pytest.raises(ValueError, match=message):
            translate_upload(offered, "AtoB", source, options, tmp_path / "out", device="cpu")
    big = photo(tmp_path / "big.png", size=(170, 130))
    note = translate_upload(offered, "AtoB", big, Options(tile=16), tmp_path / "out", device="cpu").note
    assert "tile 16 px leaves no room for a core between two 28 px overlaps; using 96" in note  # said on the page
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        translate_upload(offered, "AtoB", tmp_path / "broken.png", Options(), tmp_path / "out", device="cpu")


def test_each_run_is_offered_with_its_directions_and_a_lone_file_as_one_translator():
    offered = open_translators([RUN, RUN / "G_B.safetensors", RUN])
    assert list(offered) == ["v0.2-run", "G_B.safetensors", "v0.2-run (3)"]
    assert offered["v0.2-run"].directions == {"A → B": "AtoB", "B → A": "BtoA"}
    assert offered["G_B.safetensors"].directions == {"G_B.safetensors": "AtoB"}  # the file, whichever way it goes
    assert directions_of(open_run(RUN / "checkpoints" / "step-2")) == {"A → B": "AtoB", "B → A": "BtoA"}
    assert list(open_translators([RUN], names=["monet"])) == ["monet"]
    assert list(open_translators([RUN / "checkpoints" / "step-2"])) == ["v0.2-run/step-2"]


def component(app, elem_id: str):
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def event(app, name: str):
    return next(f.fn for f in app.fns.values() if f.name == name)


def test_the_page_offers_the_translators_and_switches_directions_with_them():
    from cyclestyle.app.web import build_app

    app = build_app(open_translators([RUN, RUN / "G_B.safetensors"]), device="cpu")
    assert [value for _, value in component(app, "translator").choices] == ["v0.2-run", "G_B.safetensors"]
    assert [value for _, value in component(app, "direction").choices] == ["A → B", "B → A"]
    assert [value for _, value in event(app, "pick")("G_B.safetensors").choices] == ["G_B.safetensors"]
    assert {"source", "tile", "overlap", "strength", "preserve-color", "translate", "result", "download"} <= {
        getattr(b, "elem_id", None) for b in app.blocks.values()}


def test_the_pushed_folder_is_a_gradio_space_whose_app_builds_the_page_from_the_folder(tmp_path):
    folder = build_hub_folder(open_run(RUN), tmp_path / "hub", "me/tiny")
    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and header["sdk_version"] == GRADIO_VERSION
    assert header["library_name"] == "cyclestyle" and header["license"] == "mit"
    # The web app's extra and the Video tab's, by the names pyproject.toml gives them
    assert (folder / "requirements.txt").read_text() == f"cyclestyle[app,video]=={cyclestyle.__version__}\n"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert f"gradio=={GRADIO_VERSION}" in extras["app"]  # the Space runs the Gradio the extra pins
    assert any(pin.startswith("av==") for pin in extras["video"])  # PyAV, which the Video tab needs
    assert 'pip install "cyclestyle[app,video]"' in (folder / "app.py").read_text()
    assert "`cyclestyle[app,video]==" in card  # the model card says what the Space installs

    namespace = runpy.run_path(str(folder / "app.py"), run_name="space")  # imported, as the Space does: not launched
    app = namespace["demo"]
    assert [value for _, value in component(app, "translator").choices] == ["me/tiny"]
    source = photo(tmp_path / "in.png")
    shown, download, note = event(app, "run")(str(source), "me/tiny", "B → A", "", "", 1.0, False)  # the defaults
    assert download.interactive and Path(download.value["path"]).read_bytes() == Path(shown).read_bytes()
    translate_files(RUN, [source], tmp_path / "cli", direction="BtoA", device="cpu", progress=False)
    assert np.array_equal(pixels(Path(shown)), pixels(tmp_path / "cli" / "in.png"))
    assert "me/tiny, B → A: 52×40 px" in note
    import gradio

    with pytest.raises(gradio.Error, match="tile must be a whole number of pixels, got '12px'"):
        event(app, "run")(str(source), "me/tiny", "B → A", "12px", "", 1.0, False)


def test_push_space_uploads_the_same_folder_to_a_gradio_space(tmp_path, monkeypatch, capsys):
    """No hub here: HfApi's calls are recorded, with what the folder held when it was uploaded."""
    import huggingface_hub

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create", repo_id, kwargs.get("repo_type"), kwargs.get("space_sdk")))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, **kwargs):
        calls.append(("upload", repo_id, repo_type, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert main(["push", "--weights", str(RUN), "--repo-id", "me/tiny", "--space", "me/tiny-app"]) == 0
    files = ["AtoB", "BtoA", "README.md", "app.py", "config.json", "config.yaml", "requirements.txt"]
    assert calls == [("create", "me/tiny", "model", None), ("upload", "me/tiny", "model", files),
                     ("create", "me/tiny-app", "space", "gradio"), ("upload", "me/tiny-app", "space", files)]
    assert "pushed to the Space https://huggingface.co/me/tiny-app" in capsys.readouterr().out
