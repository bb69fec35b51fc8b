"""Reading and writing video with PyAV (FFmpeg's libraries in a wheel; no system FFmpeg).

Input: any file PyAV decodes, or a directory of numbered frames. Frames come
out as upright 8-bit RGB PIL images: odd pixel formats (10-bit, 4:2:2, grey,
palette) are converted by FFmpeg's swscale, and the rotation a phone records in
the display matrix is applied, so the network sees the picture as it is shown.
Timestamps are kept per frame, so a variable frame rate survives.

Output: an H.264 MP4 (or .mov/.mkv) with the source's timestamps, its rotation
metadata (frames are turned back to their stored orientation) and its audio
track (packets copied, or re-encoded to AAC when the container cannot hold
them), written to a temporary file and renamed into place.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from brushwork.errors import ConfigError, ImageError

#: Extensions of the video containers we write; anything else given to -o is refused.
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
#: Frame files read from an input directory.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Frame rate of a directory of frames when none is given.
DEFAULT_DIR_FPS = Fraction(25)
#: H.264 encoders in order of preference; MPEG-4 part 2 is the last resort.
H264_ENCODERS = ("libx264", "h264", "libopenh264", "h264_videotoolbox")


class VideoError(ImageError):
    """The input is not a usable video (missing, not a video, audio only, no frames)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the selected part of an input holds; frame sizes are upright."""

    path: Path
    width: int
    height: int
    rotation: int  # degrees counter-clockwise the player turns the stored frames
    fps: Fraction  # average frame rate (the writer's nominal rate)
    time_base: Fraction
    pts: tuple[int, ...]  # each selected frame's timestamp, in time_base units
    first_index: int  # index of the first selected frame among all decoded frames
    start: float  # seconds from the stream's start to the first selected frame
    end: float  # seconds from the stream's start to the end of the last selected frame
    audio: bool
    directory: bool

    @property
    def frames(self) -> int:
        return len(self.pts)


def _natural_key(path: Path) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def frame_files(directory: Path) -> list[Path]:
    """Image files of a frame directory in natural order (frame2 before frame10)."""
    files = [
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=_natural_key)


def probe_video(
    path: Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    fps: Fraction | None = None,
) -> VideoInfo:
    """Decode the input once to find its frames, timestamps and streams.

    ``start`` and ``duration`` (seconds) select a part; ``fps`` sets a frame
    directory's rate (files carry their own).

    Raises:
        VideoError: missing, unreadable, audio-only, or no frames in the part.
    """
    if start < 0 or (duration is not None and duration <= 0):
        raise ConfigError("start must be >= 0 seconds and duration > 0 seconds")
    if not path.exists():
        raise VideoError(f"input '{path}' does not exist")
    if path.is_dir():
        return _probe_directory(path, start, duration, Fraction(fps or DEFAULT_DIR_FPS))
    if path.stat().st_size == 0:
        raise VideoError(f"input '{path}' is empty (0 bytes)")
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise VideoError(f"input '{path}' is not a video file PyAV can read") from None
    with container:
        if not container.streams.video:
            if container.streams.audio:
                raise VideoError(f"input '{path}' is an audio-only file: it has no video stream")
            raise VideoError(f"input '{path}' has no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or fps or DEFAULT_DIR_FPS
        origin = stream.start_time or 0
        stamps: list[int] = []
        rotation = 0
        width = height = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i == 0:
                    rotation = int(round(getattr(frame, "rotation", 0) or 0))
                    width, height = frame.width, frame.height
                pts = frame.pts
                if pts is None:  # raw streams: stamp frames by the nominal rate
                    pts = origin + round(i / (rate * time_base))
                stamps.append(int(pts))
        except av.error.FFmpegError as e:
            if not stamps:
                raise VideoError(f"input '{path}' could not be decoded ({e})") from None
        audio = bool(container.streams.audio)
    if not stamps:
        raise VideoError(f"input '{path}' has no video frames")
    if rotation % 180:
        width, height = height, width
    times = [float((p - origin) * time_base) for p in stamps]
    return _select(
        path, times, stamps, start, duration, width, height, rotation, Fraction(rate),
        Fraction(time_base), audio, directory=False,
    )  # fmt: skip


def _probe_directory(path: Path, start: float, duration: float | None, fps: Fraction) -> VideoInfo:
    files = frame_files(path)
    if not files:
        raise VideoError(
            f"input directory '{path}' has no frame images ({', '.join(FRAME_SUFFIXES)})"
        )
    from brushwork.images import load_image

    first = load_image(files[0], "frame")
    time_base = Fraction(1) / fps
    times = [i / float(fps) for i in range(len(files))]
    return _select(
        path, times, list(range(len(files))), start, duration, first.width, first.height, 0,
        fps, time_base, audio=False, directory=True,
    )  # fmt: skip


def _select(
    path: Path,
    times: list[float],
    stamps: list[int],
    start: float,
    duration: float | None,
    width: int,
    height: int,
    rotation: int,
    fps: Fraction,
    time_base: Fraction,
    audio: bool,
    *,
    directory: bool,
) -> VideoInfo:
    # Decoders may return frames out of presentation order only for broken
    # files; sort by time so that the output's timestamps rise.
    order = sorted(range(len(times)), key=lambda i: times[i])
    stop = float("inf") if duration is None else start + duration
    chosen = [i for i in order if start - 1e-9 <= times[i] < stop - 1e-9]
    if not chosen:
        length = times[order[-1]] + float(1 / fps)
        raise VideoError(
            f"input '{path}' has no frames between {start:g} s and "
            f"{'the end' if duration is None else f'{stop:g} s'} (it lasts {length:.3g} s)"
        )
    last = chosen[-1]
    later = [times[i] for i in order if times[i] > times[last]]
    end = later[0] if later else times[last] + float(1 / fps)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        time_base=time_base,
        pts=tuple(stamps[i] for i in chosen),
        first_index=order.index(chosen[0]),
        start=times[chosen[0]],
        end=min(end, stop),
        audio=audio,
        directory=directory,
    )


def upright(arr: np.ndarray[Any, Any], rotation: int) -> np.ndarray[Any, Any]:
    """Turn a stored frame (h, w, c) as a player shows it (``rotation`` degrees CCW)."""
    return np.ascontiguousarray(np.rot90(arr, k=(rotation // 90) % 4))


def stored(arr: np.ndarray[Any, Any], rotation: int) -> np.ndarray[Any, Any]:
    """The inverse of :func:`upright`: back to the orientation the file stores."""
    return np.ascontiguousarray(np.rot90(arr, k=-(rotation // 90) % 4))


def read_frames(info: VideoInfo) -> Iterator[Image.Image]:
    """The selected frames, upright RGB, in presentation order."""
    if info.directory:
        from brushwork.images import load_image

        files = frame_files(info.path)
        for i in range(info.first_index, info.first_index + info.frames):
            yield load_image(files[i], "frame").resize((info.width, info.height))
        return
    import av

    wanted = set(info.pts)
    with av.open(str(info.path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        origin = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate or DEFAULT_DIR_FPS
        frames: dict[int, Image.Image] = {}
        order = iter(info.pts)
        nxt: int | None = next(order)
        try:
            for i, frame in enumerate(container.decode(stream)):
                pts = frame.pts
                if pts is None:
                    pts = origin + round(i / (rate * time_base))
                if pts not in wanted:
                    continue
                arr = frame.to_ndarray(format="rgb24")
                frames[int(pts)] = Image.fromarray(upright(arr, info.rotation))
                while nxt in frames:
                    yield frames.pop(nxt)
                    nxt = next(order, None)
                    if nxt is None:
                        return
        except av.error.FFmpegError:
            return  # a damaged tail: the probe saw the same frames it could decode


def choose_encoder() -> tuple[str, str | None]:
    """The best video encoder this PyAV build has, and a note when it is not H.264."""
    import av

    for name in H264_ENCODERS:
        try:
            av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        return name, None
    try:
        av.Codec("mpeg4", "w")
    except (av.error.FFmpegError, ValueError):
        raise ConfigError(
            "this PyAV build has no H.264 or MPEG-4 encoder; write PNG frames instead "
            "(an output ending in '/')"
        ) from None
    return "mpeg4", "this PyAV build has no H.264 encoder; wrote MPEG-4 part 2 video instead"


@dataclass(frozen=True)
class Encoded:
    """What :func:`encode_video` wrote."""

    path: Path
    frames: int
    encoder: str
    audio: str  # "copied", "re-encoded to aac", "none", or why it was dropped
    notes: tuple[str, ...]


def encode_video(
    output: Path, frames: Sequence[Path], info: VideoInfo, *, crf: int = 18
) -> Encoded:
    """Encode the stylized frame files (upright PNGs) into ``output``, atomically.

    Frame i gets the source's timestamp of selected frame i (shifted so the
    part starts at 0), so variable frame rates and the source's pacing are kept.
    The audio of the same time span is copied.
    """
    import av

    if not frames:
        raise ValueError("no frames to encode")
    encoder, note = choose_encoder()
    notes = [note] if note else []
    first = Image.open(frames[0])
    w, h = first.size
    if info.rotation % 180:
        w, h = h, w
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=".part" + output.suffix, dir=output.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    audio_note = "none"
    try:
        with av.open(str(tmp), "w", format=_muxer(output)) as out:
            vs: Any = out.add_stream(encoder, rate=info.fps)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            vs.time_base = info.time_base
            vs.codec_context.time_base = info.time_base
            if encoder in ("libx264", "h264"):
                vs.options = {"crf": str(crf), "preset": "medium"}
            else:
                vs.bit_rate = max(1_000_000, 8 * w * h)
            if info.rotation % 360:
                vs.set_display_rotation(info.rotation)
            audio = _AudioCopy(out, info.path) if info.audio and not info.directory else None
            base = info.pts[0]
            for i, path in enumerate(frames):
                with Image.open(path) as img:
                    arr = stored(np.asarray(img.convert("RGB")), info.rotation)
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame.pts = info.pts[i] - base
                frame.time_base = info.time_base
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if audio is not None:
                audio_note = audio.write(out, info.start, _frame_end(info, len(frames)))
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if audio_note not in ("none", "copied"):
        notes.append(f"audio: {audio_note}")
    return Encoded(output, len(frames), encoder, audio_note, tuple(notes))


def _muxer(output: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(output.suffix.lower(), "mp4")


def _frame_end(info: VideoInfo, n: int) -> float:
    """Seconds (from the stream's start) where the first ``n`` selected frames end."""
    if n >= info.frames:
        return info.end
    return info.start + float((info.pts[n] - info.pts[0]) * info.time_base)


class _AudioCopy:
    """The source's first audio track, added to ``out`` before anything is muxed
    (a container writes its header at the first packet, so every stream must
    exist by then); :meth:`write` then copies the span the frames cover."""

    def __init__(self, out: Any, path: Path) -> None:
        import av

        self.src = av.open(str(path))
        self.a_in = self.src.streams.audio[0]
        ctx = self.a_in.codec_context
        self.reencode = ctx.name not in out.supported_codecs
        if self.reencode:
            self.rate = ctx.sample_rate or 48000
            self.layout = "mono" if ctx.channels == 1 else "stereo"
            self.a_out = out.add_stream("aac", rate=self.rate, layout=self.layout)
        else:
            self.a_out = out.add_stream_from_template(self.a_in)
        self.note = f"re-encoded {ctx.name} to aac" if self.reencode else "copied"

    def write(self, out: Any, start: float, end: float) -> str:
        try:
            if self.reencode:
                self._reencode(out, start, end)
            else:
                self._remux(out, start, end)
        finally:
            self.src.close()
        return self.note

    def _remux(self, out: Any, start: float, end: float) -> None:
        tb = self.a_in.time_base or Fraction(1, self.a_in.codec_context.sample_rate or 48000)
        origin = self.a_in.start_time or 0
        offset = origin + round(start / tb)
        for packet in self.src.demux(self.a_in):
            if packet.pts is None or packet.size == 0:
                continue
            t = float((packet.pts - origin) * tb)
            if t < start - 1e-9 or t >= end - 1e-9:
                continue
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = self.a_out
            out.mux(packet)

    def _reencode(self, out: Any, start: float, end: float) -> None:
        import av

        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        tb = self.a_in.time_base or Fraction(1, self.rate)
        origin = self.a_in.start_time or 0
        for frame in self.src.decode(self.a_in):
            if frame.pts is None:
                continue
            t = float((frame.pts - origin) * tb)
            if t < start - 1e-9 or t >= end - 1e-9:
                continue
            frame.pts = None  # the encoder stamps samples itself, from 0
            for f in resampler.resample(frame):
                for packet in self.a_out.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in self.a_out.encode(f):
                out.mux(packet)
        for packet in self.a_out.encode():
            out.mux(packet)
