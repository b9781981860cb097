"""Translating videos and animated GIFs, frame after frame, streamed.

``translate_clip`` decodes a clip with PyAV (FFmpeg's libraries, shipped inside its wheel: no
``ffmpeg`` program needed), hands its frames in batches to a translator of images (the one
``translate`` uses for image files, so frames take the same full-frame, tiled and bf16 paths),
and encodes what comes back into a clip of the same container, size and frame timing (every
frame keeps its presentation time, so the frame rate, constant or variable, is the input's) and
display rotation (a phone's portrait clip is stored sideways with a rotation to show it upright:
the stored frames are translated and the rotation kept).
Audio streams are copied packet for packet (remuxed, not re-encoded). Only a batch of frames,
the encoder's look-ahead and the muxer's interleaving queue are held at any time, so memory does
not grow with the clip's length.

What is written, by the output's suffix (the input's): H.264 (libx264, CRF 18) in .mp4, .m4v,
.mov and .mkv; VP9 in .webm; MPEG-4 part 2 in .avi, converted from RGB with the input's colour
matrix (BT.709 or BT.601) and tagged with it; GIF with a palette made for each frame (FFmpeg's
palettegen/paletteuse) in .gif. The clip is written aside (``.NAME.PID.part``) and
renamed when complete, as images are (``data.save_image``): a clip that fails, or a killed
process, never leaves half a file under the real name.

PyAV is the ``video`` extra (``pip install "cyclestyle[video]"``): without it a video among the
inputs is one line (``VideoSupportMissing``) before anything is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..data import DataError, short_side_size

# suffix -> (FFmpeg container, video encoder)
CONTAINERS = {
    ".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9"), ".avi": ("avi", "mpeg4"),
    ".gif": ("gif", "gif"),
}
VIDEO_EXTENSIONS = tuple(suffix for suffix in CONTAINERS if suffix != ".gif")
"""Files translated as videos; a .gif is one when it has more than one frame (``is_clip``)."""

# FFmpeg's colour tags (AVColorSpace, AVColorRange, AVColorPrimaries)
_BT709, _UNSPECIFIED, _SMPTE170M, _LIMITED = 1, 2, 6, 1

INSTALL_HINT = 'translating videos needs PyAV, the "video" extra: pip install "cyclestyle[video]"'


class VideoError(DataError):
    """A clip that cannot be read, translated or written: one line naming it."""


class VideoSupportMissing(DataError):
    """PyAV is not installed."""


def import_av():
    """The ``av`` module, or ``VideoSupportMissing`` with the line that says how to install it."""
    try:
        import av
    except ImportError:
        raise VideoSupportMissing(INSTALL_HINT) from None
    return av


def is_clip(path: Path) -> bool:
    """Whether ``path`` is translated as a clip: a video file, or a GIF of more than one frame."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix != ".gif":
        return False
    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1)) > 1
    except Exception:
        return False  # an unreadable GIF is reported as an image


def _reason(error: BaseException) -> str:
    """FFmpeg's own words for what went wrong, without the errno and the path PyAV adds."""
    text = getattr(error, "strerror", None) or str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# --------------------------------------------------------------------------------------------
# Writing frames


class _Encoder:
    """The output's video stream: frames in (PIL images with their source frame's timing),
    packets out to the muxer."""

    def __init__(self, av, out, video, suffix: str, width: int, height: int, rotation: int = 0):
        self.av, self.out = av, out
        _, codec = CONTAINERS[suffix]
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        self.stream = out.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.time_base = video.time_base  # a hint: the muxer may choose its own
        if rotation and codec != "gif":  # a phone's portrait clip: stored sideways, shown upright
            self.stream.set_display_rotation(rotation)
        self.graph = None
        self._durations: dict[int, int] = {}
        if codec == "gif":
            self.stream.pix_fmt = "pal8"
            self.stream.codec_context.time_base = video.time_base
            self.graph = self._palette_graph(width, height, video.time_base)
        elif codec == "mpeg4":
            self.stream.pix_fmt = "yuv420p"
            self.stream.bit_rate = int(width * height * float(rate) * 0.5)  # about q 2 for natural video
        else:  # x264's and VP9's 4:2:0 needs even sides
            self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            self.stream.options = {"crf": "18"} if codec == "libx264" else {"crf": "24", "b": "0"}
        self.matrix = None if codec == "gif" else self._colours(video.codec_context)
        self.frames = 0

    def _colours(self, source) -> str:
        """RGB to YUV with the input's matrix (BT.709 for HD video, else BT.601), and the output
        tagged with it: an untagged clip is decoded with a guess, and players guess by size."""
        hd = source.colorspace == _BT709
        out = self.stream.codec_context
        out.colorspace = _BT709 if hd else _SMPTE170M
        out.color_range = _LIMITED  # what swscale writes to yuv420p and yuv444p
        if source.color_primaries != _UNSPECIFIED:
            out.color_primaries, out.color_trc = source.color_primaries, source.color_trc
        return "itu709" if hd else "itu601"

    def _palette_graph(self, width: int, height: int, time_base):
        """rgb24 -> pal8 with a palette made for each frame (as ``ffmpeg -vf palettegen,paletteuse``)."""
        graph = self.av.filter.Graph()
        source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=time_base)
        split = graph.add("split")
        palette = graph.add("palettegen", "stats_mode=single:reserve_transparent=0")
        use = graph.add("paletteuse", "new=1")
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(use, 0, 0)
        split.link_to(palette, 1, 0)
        palette.link_to(use, 0, 1)
        use.link_to(sink)
        graph.configure()
        return graph

    def write(self, image: Image.Image, timing) -> None:
        frame = self.av.VideoFrame.from_image(image if image.mode == "RGB" else image.convert("RGB"))
        if self.matrix is not None:
            frame = frame.reformat(format=self.stream.pix_fmt, dst_colorspace=self.matrix)
            frame.colorspace, frame.color_range = self.stream.codec_context.colorspace, _LIMITED
        frame.pts = timing.pts if timing.pts is not None else self.frames
        frame.time_base = timing.time_base if timing.pts is not None else 1 / self.stream.average_rate
        if timing.pts is not None and timing.duration:
            frame.duration = timing.duration  # a GIF's last frame shows for its own time
        self.frames += 1
        if self.graph is None:
            self._encode(frame)
        else:
            self._durations[frame.pts] = frame.duration  # the palette filters drop it
            self.graph.push(frame)
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                frame = self.graph.pull()
            except (self.av.BlockingIOError, self.av.EOFError):
                return
            duration = self._durations.pop(frame.pts, 0)
            for packet in self.stream.encode(frame):  # the GIF encoder: one packet a frame, no delay
                if duration and not packet.duration and packet.time_base == frame.time_base:
                    packet.duration = duration  # the last frame's delay, which nothing after it gives
                self.out.mux(packet)

    def _encode(self, frame) -> None:
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def close(self) -> None:
        if self.graph is not None:
            self.graph.push(None)
            self._drain()
        for packet in self.stream.encode(None):
            self.out.mux(packet)


# --------------------------------------------------------------------------------------------
# Reading frames


def _video_stream(container, source: Path):
    if not container.streams.video:
        raise VideoError(f"cannot translate {source}: it holds no video stream")
    return container.streams.video[0]


def _declared_frames(video) -> int:
    """How many frames the file says its video holds: its index's count (MP4, MOV, AVI, GIF), or
    its video's duration times its frame rate (Matroska and WebM keep a DURATION tag and no
    count); 0 when it says neither. The container's duration is not used: its audio may be longer."""
    if video.frames:
        return int(video.frames)
    rate = video.average_rate or video.guessed_rate
    seconds = float(video.duration * video.time_base) if video.duration else _tag_seconds(video.metadata.get("DURATION"))
    return int(seconds * float(rate)) if rate and seconds else 0


def _tag_seconds(tag: str | None) -> float:
    """'HH:MM:SS.fraction' (Matroska's DURATION tag) in seconds; 0 when absent or malformed."""
    try:
        hours, minutes, seconds = (tag or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _decoded(container, video, audio: dict, out) -> Iterator:
    """The clip's video frames in presentation order; its audio packets go straight to ``out``."""
    for packet in container.demux(video, *audio):
        if packet.stream is video:
            yield from packet.decode()
        elif packet.dts is not None:  # not a demuxer's end-of-stream marker
            packet.stream = audio[packet.stream]
            out.mux(packet)


def _batched(frames: Iterator, size: int) -> Iterator[list]:
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _rotation(av, source: Path) -> int:
    """The display rotation of the clip's first frame (degrees counter-clockwise), which phones
    record instead of turning the pixels; 0 when there is none or nothing decodes."""
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            return int(frame.rotation)
    return 0


def _image(frame, channels: int, size: tuple[int, int]) -> Image.Image:
    image = frame.to_image()  # rgb24
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image.convert("L") if channels == 1 else image


def _gif_complete(path: Path) -> bool:
    """Whether a GIF ends with its trailer byte (0x3B): a truncated one decodes its first frames
    without a word from FFmpeg, and its header declares no frame count."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\x3b"


# --------------------------------------------------------------------------------------------
# A clip


Translate = Callable[[list[Image.Image]], list[Image.Image]]


def translate_clip(source: Path, dst: Path, translate: Translate, *, channels: int = 3, batch_size: int = 4,
                   short_side: int | None = None, progress: bool = True) -> int:
    """Translate the clip ``source`` into ``dst`` (same container format) frame by frame and
    return the number of frames; see the module's notes.

    ``translate`` takes a list of consecutive frames (PIL images, "RGB", or "L" for ``channels``
    1) and returns their translations, in order; it gets at most ``batch_size`` at a time.
    ``short_side``: resize the frames (bicubic) to this short side first, as ``--size``. A file
    that cannot be decoded, holds no video or ends before the frames its header declares is a
    ``VideoError`` naming it; ``dst`` is then left as it was.
    """
    av = import_av()
    suffix = dst.suffix.lower()
    if suffix not in CONTAINERS:
        raise VideoError(f"cannot write {dst}: clips are written as {' '.join(CONTAINERS)}")
    if suffix == ".gif" and not _gif_complete(source):
        raise VideoError(f"cannot translate {source}: it ends before the GIF trailer (truncated?)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.part")
    try:
        with av.open(str(source)) as src:
            frames, declared = _translate_streams(av, src, tmp, suffix, translate, channels, batch_size, progress,
                                                  source, short_side)
        if frames == 0 or frames < declared - max(1, declared // 50):
            raise VideoError(f"cannot translate {source}: it ends after {frames} of the {declared} frames its "
                             "header declares (truncated?)")
        os.replace(tmp, dst)
        return frames
    except av.InvalidDataError as error:
        raise VideoError(f"cannot translate {source}: {_reason(error)} (a corrupt or truncated file?)") from None
    except av.FFmpegError as error:
        raise VideoError(f"cannot translate {source}: {_reason(error)}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _translate_streams(av, src, tmp: Path, suffix: str, translate: Translate, channels: int, batch_size: int,
                       progress: bool, source: Path, short_side: int | None) -> tuple[int, int]:
    """Decode, translate, encode and remux ``src`` into ``tmp``: (frames written, frames declared)."""
    video = _video_stream(src, source)
    declared = _declared_frames(video)
    width, height = video.codec_context.width, video.codec_context.height
    if short_side is not None:
        width, height = short_side_size(width, height, short_side, str(source))
    bar = tqdm(total=declared or None, unit="frame", desc=source.name, file=sys.stderr, leave=False,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        with av.open(str(tmp), "w", format=CONTAINERS[suffix][0]) as out:
            encoder = _Encoder(av, out, video, suffix, width, height, _rotation(av, source))
            audio = {} if suffix == ".gif" else {s: out.add_stream_from_template(s) for s in src.streams.audio}
            for batch in _batched(_decoded(src, video, audio, out), batch_size):
                for timing, image in zip(batch, translate([_image(f, channels, (width, height)) for f in batch])):
                    encoder.write(image, timing)
                bar.update(len(batch))
            encoder.close()
    finally:
        bar.close()
    return encoder.frames, declared
