"""Videos and animated GIFs through `cyclestyle translate`, and the stable (temporal) norm.

The clips are made here with PyAV: a slow pan over a real photograph (scikit-image's bundled
`chelsea.png`, which the demo's dataset is also cut from) with an AAC sine as its sound. The
translator is the tiny CycleGAN run of `tests/fixtures/v0.2-run` (instance norm, ngf 4).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cyclestyle import cli
from cyclestyle.demo.data import load_photo
from cyclestyle.inference import video
from cyclestyle.inference.run import open_run
from cyclestyle.inference.temporal import TemporalInstanceNorm2d, flicker, reset_statistics, stable_generator
from cyclestyle.inference.tiling import plan_tiles, receptive_radius, tiled_translate
from cyclestyle.inference.translate import translate_image, translate_tensor

from .conftest import REPO

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread (conftest)

RUN = REPO / "tests" / "fixtures" / "v0.2-run"


@pytest.fixture(scope="module")
def generator() -> nn.Module:
    return open_run(RUN).generator("AtoB", "cpu")


def translate_cli(*args: str) -> int:
    return cli.main(["translate", "--weights", str(RUN), "--direction", "AtoB", *args])


# --------------------------------------------------------------------------------------------
# Scenes and clips


def pan(frames: int, width: int, height: int, speed: int = 2) -> list[np.ndarray]:
    """A window moving ``speed`` px a frame to the right across the photograph."""
    photo = np.asarray(load_photo("chelsea.png"))
    top = (photo.shape[0] - height) // 2
    return [np.ascontiguousarray(photo[top : top + height, speed * t : speed * t + width]) for t in range(frames)]


def still_noisy(frames: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """T×H×W×3 uint8: one crop of the photograph with shot and read noise drawn anew each frame."""
    crop = pan(1, width, height)[0].astype(np.float64)
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(0.1 * crop + 4.0)
    return np.stack([np.clip(np.round(crop + sigma * rng.standard_normal(crop.shape)), 0, 255).astype(np.uint8)
                     for _ in range(frames)])


def write_clip(path: Path, images: list[np.ndarray], fps: int = 12, audio: bool = True) -> None:
    """An H.264 clip of ``images`` at ``fps``, with ``len(images) / fps`` s of a 440 Hz AAC sine."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, img in enumerate(images):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            samples = 16000 * len(images) // fps
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start : start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def stream_facts(path: Path) -> tuple:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.average_rate, v.codec_context.width, v.codec_context.height, len(c.streams.audio)


# --------------------------------------------------------------------------------------------
# The stable norm


def test_stable_generator_shares_weights_and_leaves_the_original_alone(generator):
    x = torch.rand(3, 3, 40, 48) * 2 - 1
    before = translate_tensor(generator, x)
    stable = stable_generator(generator, 0.9)
    norms = [m for m in stable.modules() if isinstance(m, TemporalInstanceNorm2d)]
    assert norms and not any(isinstance(m, TemporalInstanceNorm2d) for m in generator.modules())
    assert all(p is q for p, q in zip(stable.parameters(), generator.parameters()))
    with torch.inference_mode():
        smoothed = translate_tensor(stable, x)
        assert torch.equal(translate_tensor(generator, x), before)
    # the first frame is normalised by its own statistics: translated as an image
    assert (smoothed[0] - before[0]).abs().max() < 1e-5
    assert (smoothed[1:] - before[1:]).abs().max() > 1e-3  # later ones are not


def test_a_batch_of_frames_equals_the_frames_one_by_one_and_reset_starts_anew(generator):
    x = torch.rand(5, 3, 40, 48) * 2 - 1
    stable = stable_generator(generator, 0.8)
    with torch.inference_mode():
        batched = torch.cat([translate_tensor(stable, b) for b in x.split(3)])
        reset_statistics(stable)
        single = torch.cat([translate_tensor(stable, f[None]) for f in x])
        reset_statistics(stable)
        again = translate_tensor(stable, x[:1])
    assert (batched - single).abs().max() < 1e-5
    assert (again - single[:1]).abs().max() < 1e-6


def test_tiled_stable_frames_equal_full_frame_stable_frames(generator):
    """The tiler passes each frame's whole-image statistics through the same moving average."""
    frames = torch.from_numpy(np.stack(pan(4, 160, 120, speed=6))).permute(0, 3, 1, 2).float() / 127.5 - 1
    stable = stable_generator(generator, 0.7)
    with torch.inference_mode():
        full = translate_tensor(stable, frames)
        reset_statistics(stable)
        tiled = tiled_translate(stable, frames, plan_tiles(generator, 96).tile)
    assert (tiled - full).abs().max() < 1e-4


def test_flicker_is_the_output_change_over_the_input_change():
    x = torch.zeros(3, 1, 2, 2)
    x[1] += 1
    x[2] += 3  # the input moves by 1, then 2: mean 1.5
    y = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 3.0), torch.full((1, 2, 2), 3.0)])  # 3, then 0
    assert flicker(x, y) == pytest.approx(1.5 / 1.5)
    with pytest.raises(ValueError, match="do not change"):
        flicker(torch.zeros(3, 1, 2, 2), y)


def _translated(generator, frames: np.ndarray) -> torch.Tensor:
    """T×C×H×W 8-bit translation of T×H×W×3 uint8 frames, batched by 4 as clips are."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.inference_mode():
        y = torch.cat([translate_tensor(generator, batch) for batch in x.split(4)])
    return ((y.clamp(-1, 1) + 1) * 127.5).round()


def test_stable_mode_takes_out_the_flicker_that_moving_statistics_make(generator):
    """A still photograph with a dark square crossing its bottom: the rows farther from the
    square than the receptive radius see no input change, yet per-frame statistics move them;
    smoothed statistics move them less, and held ones (smoothing 1) not at all. Measured."""
    frames = np.stack([pan(1, 128, 96)[0]] * 12)
    top = 96 - 24
    for t, frame in enumerate(frames):
        frame[top:, max(0, 10 * t - 24) : 10 * t] = 16
    far = slice(0, top - receptive_radius(generator))
    assert far.stop >= 24
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    outs = {a: _translated(stable_generator(generator, a) if a is not None else generator, frames)
            for a in (None, 0.9, 1.0)}
    change = {a: (y[1:, :, far] - y[:-1, :, far]).abs().mean().item() for a, y in outs.items()}
    assert change[None] > 0.02  # plain: the far rows move
    assert change[0.9] < 0.8 * change[None] and change[1.0] < 0.01 * change[None]
    assert flicker(x, outs[0.9]) < flicker(x, outs[None]) and flicker(x, outs[1.0]) < flicker(x, outs[0.9])


def test_stable_mode_adds_no_flicker_on_a_still_noisy_scene(generator):
    """Sensor noise is drawn anew each frame. Instance norm already takes out each frame's
    global shift of it, so smoothing the statistics cannot take out more: measured within 1%
    (docs/translating.md has the figures)."""
    frames = still_noisy(24, 96, 64)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    plain, stable = (flicker(x, _translated(g, frames)) for g in (generator, stable_generator(generator, 0.9)))
    assert plain > 1  # the translation amplifies the noise
    assert abs(stable - plain) < 0.01 * plain, (plain, stable)


# --------------------------------------------------------------------------------------------
# Clips through the command


def test_a_clip_translates_to_a_clip_of_the_same_frames_rate_size_and_sound(tmp_path, generator, monkeypatch,
                                                                           capsys):
    source = tmp_path / "pan.mp4"
    write_clip(source, pan(12, 64, 48))
    seen = _recorded_frames(monkeypatch)
    assert translate_cli("--output", str(tmp_path / "out"), str(source)) == 0
    out = tmp_path / "out" / "pan.mp4"
    assert stream_facts(out) == stream_facts(source) == (12, 64, 48, 1)
    assert audio_packets(out) == audio_packets(source) and len(audio_packets(source)) > 5  # copied, not re-encoded
    inputs, outputs = decoded(source), decoded(out)
    assert len(outputs) == len(inputs) == len(seen) == 12
    for frame, translated in zip(inputs, seen):  # each decoded frame's translation, in order, as an image's
        expected = np.asarray(translate_image(generator, Image.fromarray(frame)))
        assert np.abs(translated.astype(int) - expected).max() <= 1
    for k, got in enumerate(outputs):  # and that is what the clip shows, up to 4:2:0 chroma and H.264's loss
        errors = [np.abs(got.astype(int) - s.astype(int)).mean() for s in seen]
        chroma = av.VideoFrame.from_ndarray(seen[k], format="rgb24").reformat(format="yuv420p")
        psnr = 10 * np.log10(255**2 / np.square(got.astype(float) - chroma.to_ndarray(format="rgb24")).mean())
        assert errors[k] == min(errors) and psnr > 30, (k, psnr, errors)
    assert "translated 1, skipped 0, failed 0" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["pan.mp4"]  # no temporary left


@pytest.mark.parametrize("hd", [False, True])
def test_the_clip_is_tagged_with_the_colour_matrix_it_is_encoded_with(tmp_path, hd):
    """BT.709 in (as HD video is), BT.709 out; otherwise BT.601, said so: players guess an
    untagged clip's matrix by its size, and a wrong guess shifts every colour. Saturated colour
    bars through --style-strength 0 (the translation blended away: the input comes back)."""
    bars = np.zeros((48, 64, 3), np.uint8)
    for k, colour in enumerate([(230, 20, 20), (20, 210, 40), (30, 40, 220), (220, 200, 30)]):
        bars[:, 16 * k : 16 * (k + 1)] = colour
    matrix, other = ("itu709", "itu601") if hd else ("itu601", "itu709")
    source = tmp_path / "bars.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if hd:
            stream.codec_context.colorspace = stream.codec_context.color_primaries = 1
            stream.codec_context.color_trc = 1
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(bars, format="rgb24").reformat(format="yuv420p", dst_colorspace=matrix)
            frame.colorspace = 1 if hd else 2
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert translate_cli("--output", str(tmp_path / "out"), "--style-strength", "0", str(source)) == 0
    with av.open(str(tmp_path / "out" / "bars.mp4")) as c:
        tags = c.streams.video[0].codec_context
        assert (tags.colorspace, tags.color_range, tags.color_primaries) == ((1, 1, 1) if hd else (6, 1, 2))
        for frame in c.decode(video=0):  # decoded as tagged: the colours that went in
            shown = frame.to_ndarray(format="rgb24").astype(int)
            guessed = frame.reformat(format="rgb24", src_colorspace=other).to_ndarray().astype(int)
            error, wrong = (np.abs(a[:, 2:-2] - bars[:, 2:-2]).mean() for a in (shown, guessed))  # bar edges: 4:2:0
            assert error < 4 and wrong > 2.5 * error, (error, wrong)


def test_a_portrait_phone_clip_keeps_its_display_rotation(tmp_path):
    """Phones store a portrait clip sideways with a display rotation; the translation keeps it."""
    source = tmp_path / "phone.mp4"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)
        for i, img in enumerate(pan(3, 48, 32)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 10)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert translate_cli("--output", str(tmp_path / "out"), str(source)) == 0
    with av.open(str(tmp_path / "out" / "phone.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 3 and {(f.rotation, f.width, f.height) for f in frames} == {(90, 48, 32)}


def test_an_animated_gif_keeps_its_frames_and_delays_and_a_still_one_becomes_a_png(tmp_path, generator):
    src = tmp_path / "in"
    src.mkdir()
    images = [Image.fromarray(f) for f in pan(3, 40, 32, speed=5)]
    images[0].save(src / "clip.gif", save_all=True, append_images=images[1:], duration=[100, 200, 50], loop=0)
    images[0].save(src / "still.gif")
    assert translate_cli("--output", str(tmp_path / "out"), str(src)) == 0
    assert Image.open(tmp_path / "out" / "still.png").size == (40, 32)
    with Image.open(tmp_path / "out" / "clip.gif") as gif, Image.open(src / "clip.gif") as original:
        assert gif.n_frames == 3 and gif.size == (40, 32) and gif.info.get("loop") == 0
        for k in range(3):
            gif.seek(k)
            original.seek(k)
            assert gif.info["duration"] == original.info["duration"]
            expected = np.asarray(translate_image(generator, original.convert("RGB")), dtype=int)
            assert np.abs(np.asarray(gif.convert("RGB"), dtype=int) - expected).mean() < 4  # a 256-colour palette


def _recorded_frames(monkeypatch) -> list[np.ndarray]:
    """The translated frames as the encoder receives them (before H.264's loss)."""
    seen: list[np.ndarray] = []
    write = video._Encoder.write

    def recording(self, image, timing):
        seen.append(np.asarray(image))
        write(self, image, timing)

    monkeypatch.setattr(video._Encoder, "write", recording)
    return seen


@pytest.mark.parametrize("stable", [False, True])
def test_a_tiled_clip_equals_the_full_frame_clip(tmp_path, monkeypatch, stable):
    source = tmp_path / "pan.mkv"
    write_clip(source, pan(6, 160, 120, speed=6), audio=False)
    seen = _recorded_frames(monkeypatch)
    results = {}
    for tile in ("0", "96"):
        seen.clear()
        extra = ["--stable"] if stable else []
        assert translate_cli("--output", str(tmp_path / tile), "--tile", tile, "--batch-size", "4", *extra,
                             str(source)) == 0
        results[tile] = np.stack(seen).astype(np.int16)
    assert results["0"].shape == (6, 120, 160, 3)
    diff = np.abs(results["0"] - results["96"])
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # the image tolerance: a rounding flip at most


def test_stable_changes_frames_after_the_first_only(tmp_path, monkeypatch):
    source = tmp_path / "pan.mp4"
    write_clip(source, pan(5, 64, 48, speed=8), audio=False)
    seen = _recorded_frames(monkeypatch)
    assert translate_cli("--output", str(tmp_path / "plain"), str(source)) == 0
    plain = np.stack(seen).astype(int)
    seen.clear()
    assert translate_cli("--output", str(tmp_path / "stable"), "--stable", "--stable-smoothing", "0.8",
                         str(source)) == 0
    stable = np.stack(seen).astype(int)
    assert np.abs(stable[0] - plain[0]).max() <= 1
    assert np.abs(stable[1:] - plain[1:]).mean() > 0.1


def test_a_truncated_or_corrupt_clip_is_one_line_and_the_other_inputs_are_kept(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "good.mp4", pan(4, 32, 24), audio=False)
    whole = (src / "good.mp4").read_bytes()
    (src / "cut.mp4").write_bytes(whole[: len(whole) // 2])  # the index (moov) comes last: lost
    (src / "noise.mkv").write_bytes(np.random.default_rng(0).bytes(5000))
    write_clip(src / "short.mkv", pan(12, 32, 24), audio=False)
    data = (src / "short.mkv").read_bytes()
    (src / "short.mkv").write_bytes(data[: len(data) // 2])  # Matroska: decodes, then stops early
    Image.fromarray(pan(1, 32, 24)[0]).save(src / "photo.png")
    out = tmp_path / "out"
    assert translate_cli("--output", str(out), str(src)) == 1
    stdout, stderr = capsys.readouterr()
    lines = [line for line in stderr.splitlines() if "cannot translate" in line]
    assert len(lines) == 3 and all(line.startswith("cyclestyle: cannot translate ") for line in lines)
    assert any("cut.mp4" in line for line in lines) and any("noise.mkv" in line for line in lines)
    assert any("short.mkv" in line and "truncated" in line for line in lines)
    assert "Traceback" not in stderr and "translated 2, skipped 0, failed 3" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["good.mp4", "photo.png"]  # no half-written clip


def test_a_clip_is_never_written_over_its_input(tmp_path, capsys):
    source = tmp_path / "pan.mp4"
    write_clip(source, pan(3, 32, 24), audio=False)
    before = source.read_bytes()
    assert translate_cli("--output", str(tmp_path), "--overwrite", str(source)) == 1
    assert "is an input of this command" in capsys.readouterr().err
    assert source.read_bytes() == before


def test_without_pyav_a_video_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    source = tmp_path / "pan.mp4"
    write_clip(source, pan(3, 32, 24), audio=False)
    Image.fromarray(pan(1, 32, 24)[0]).save(tmp_path / "photo.png")
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # `import av` raises ImportError
    assert translate_cli("--output", str(tmp_path / "out"), str(source), str(tmp_path / "photo.png")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'cyclestyle: error: {video.INSTALL_HINT}' and 'pip install "cyclestyle[video]"' in err
    assert not (tmp_path / "out").exists()  # nothing written, not even the image


def test_bad_stable_smoothing_is_one_line_and_exit_2(tmp_path, capsys):
    assert translate_cli("--output", str(tmp_path), "--stable", "--stable-smoothing", "1.5", "x.mp4") == 2
    assert capsys.readouterr().err.strip() == ("cyclestyle: error: --stable-smoothing must be between 0 and 1, "
                                               "got 1.5")


@pytest.mark.slow
def test_the_program_translates_a_folder_of_clips_and_names_a_truncated_one(tmp_path):
    """The real program in its own process: a folder with a good clip, a truncated one and a GIF."""
    import subprocess

    from .conftest import cli as program

    src = tmp_path / "in"
    src.mkdir()
    write_clip(src / "pan.mov", pan(8, 48, 32))
    whole = (src / "pan.mov").read_bytes()
    (src / "cut.mov").write_bytes(whole[: len(whole) * 2 // 3])
    images = [Image.fromarray(f) for f in pan(2, 40, 32, speed=5)]
    images[0].save(src / "loop.gif", save_all=True, append_images=images[1:], duration=80, loop=0)
    done = subprocess.run(program("translate", "--weights", str(RUN), "--direction", "AtoB", "--stable",
                                  "--output", str(tmp_path / "out"), str(src)),
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1, done.stderr
    failures = [line for line in done.stderr.splitlines() if "cannot translate" in line]
    assert len(failures) == 1 and "cut.mov" in failures[0] and "Traceback" not in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["loop.gif", "pan.mov"]
    assert stream_facts(tmp_path / "out" / "pan.mov") == stream_facts(src / "pan.mov")
    assert audio_packets(tmp_path / "out" / "pan.mov") == audio_packets(src / "pan.mov")
