"""Reading and writing video with PyAV: odd pixel formats, variable rates, rotation, audio, cuts."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from brushwork.errors import BrushworkError
from brushwork.video.media import (
    VideoError,
    choose_encoder,
    encode_video,
    frame_files,
    probe_video,
    read_frames,
)
from brushwork.video.synth import pan, write_clip

SIZE = (96, 64)


@pytest.fixture(scope="module")
def frames(rainier: Path) -> list[np.ndarray]:
    photo = Image.open(rainier).convert("RGB").resize((300, 200), Image.Resampling.LANCZOS)
    return pan(photo, 8, SIZE, (2.0, 1.0), origin=(60.0, 50.0))


def save_pngs(tmp: Path, images: list[Image.Image]) -> list[Path]:
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp / f"out{i}.png")
        img.save(paths[-1])
    return paths


def matches(img: Image.Image | np.ndarray, frames: list[np.ndarray], index: int) -> bool:
    """``img`` is frame ``index`` after lossy coding: close to it, and closer than to any other."""
    errors = [np.abs(np.asarray(img, float) - f).mean() for f in frames]
    return bool(errors[index] < 8.0 and int(np.argmin(errors)) == index)


def decoded(path: Path) -> list[tuple[float, np.ndarray, int]]:
    with av.open(str(path)) as c:
        return [
            (float(f.time), f.to_ndarray(format="rgb24"), int(f.rotation))
            for f in c.decode(video=0)
        ]


def test_this_pyav_has_an_h264_encoder() -> None:
    name, note = choose_encoder()
    assert name in ("libx264", "h264", "libopenh264") and note is None


def test_variable_frame_rate_and_10_bit_422_survive_a_round_trip(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    tb = Fraction(1, 1000)
    pts = [0, 40, 120, 160, 300, 333]  # irregular gaps: 40 ms to 140 ms
    src = write_clip(
        tmp_path / "vfr.mkv", frames[:6], 25, pix_fmt="yuv422p10le", pts=pts, time_base=tb
    )
    info = probe_video(src)
    assert info.frames == 6 and info.time_base == tb and info.pts == tuple(pts)
    images = list(read_frames(info))
    assert [im.size for im in images] == [SIZE] * 6
    for i, im in enumerate(images):  # 10-bit 4:2:2 back to 8-bit RGB
        assert matches(im, frames, i)
    out = encode_video(tmp_path / "out.mp4", save_pngs(tmp_path, images), info)
    assert out.encoder in ("libx264", "h264") and out.frames == 6
    back = decoded(tmp_path / "out.mp4")
    np.testing.assert_allclose([t for t, _, _ in back], [p / 1000 for p in pts], atol=1e-3)


def test_grey_16_bit_frames_come_out_as_grey_rgb(tmp_path: Path, frames: list[np.ndarray]) -> None:
    src = write_clip(tmp_path / "grey.mkv", frames[:3], 8, codec="ffv1", pix_fmt="gray16le")
    images = list(read_frames(probe_video(src)))
    arr = np.asarray(images[1], float)
    assert (
        np.abs(arr[..., 0] - arr[..., 1]).max() <= 1
        and np.abs(arr[..., 0] - arr[..., 2]).max() <= 1
    )
    luma = frames[1] @ np.array([0.299, 0.587, 0.114])
    assert np.abs(arr[..., 0] - luma).mean() < 3.0
    assert arr.std() > 20  # a picture, not a flat grey


def test_rotation_is_applied_on_reading_and_kept_on_writing(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    src = write_clip(
        tmp_path / "rot.mp4", frames[:3], 8, codec="libx264", pix_fmt="yuv444p", rotation=90
    )
    info = probe_video(src)
    assert info.rotation == 90
    assert (info.width, info.height) == (SIZE[1], SIZE[0])  # upright: portrait
    images = list(read_frames(info))
    assert images[0].size == (SIZE[1], SIZE[0])
    # Upright = the stored frame turned 90° counter-clockwise, as players show it.
    assert matches(images[1], [np.rot90(f) for f in frames], 1)
    encode_video(tmp_path / "out.mp4", save_pngs(tmp_path, images), info)
    back = decoded(tmp_path / "out.mp4")
    assert [r for _, _, r in back] == [90, 90, 90]
    assert back[0][1].shape[:2] == (SIZE[1], SIZE[0])  # (h, w) as the source stored it
    assert matches(back[1][1], frames, 1)


def test_start_and_duration_select_frames_and_audio(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    src = write_clip(tmp_path / "a.mp4", frames, 8, audio="aac")  # 1 s, frames at k/8 s
    info = probe_video(src, start=0.25, duration=0.5)
    assert info.frames == 4 and info.audio
    assert info.start == pytest.approx(0.25) and info.end == pytest.approx(0.75)
    images = list(read_frames(info))
    assert matches(images[0], frames, 2) and matches(images[3], frames, 5)
    out = encode_video(tmp_path / "out.mp4", save_pngs(tmp_path, images), info)
    assert out.audio == "copied"
    with av.open(str(tmp_path / "out.mp4")) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"
        audio_seconds = sum(float(f.samples) / f.sample_rate for f in c.decode(audio=0))
    assert 0.4 < audio_seconds < 0.65  # the cut's 0.5 s (AAC works in 1024-sample frames)


def test_audio_the_container_cannot_hold_is_reencoded(
    tmp_path: Path, frames: list[np.ndarray]
) -> None:
    src = write_clip(tmp_path / "mulaw.avi", frames[:4], 8, codec="mpeg4", audio="pcm_mulaw")
    info = probe_video(src)
    images = list(read_frames(info))
    out = encode_video(tmp_path / "out.mp4", save_pngs(tmp_path, images), info)
    assert out.audio == "re-encoded pcm_mulaw to aac"
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264", "aac"]


def test_a_directory_of_frames_in_natural_order(tmp_path: Path, frames: list[np.ndarray]) -> None:
    d = tmp_path / "frames"
    d.mkdir()
    for name, i in (("frame1", 1), ("frame2", 2), ("frame10", 7)):  # frame10 after frame2
        Image.fromarray(frames[i]).save(d / f"{name}.png")
    (d / "notes.txt").write_text("not a frame")
    assert [p.name for p in frame_files(d)] == ["frame1.png", "frame2.png", "frame10.png"]
    info = probe_video(d, fps=12)  # type: ignore[arg-type]  # Python callers pass ints
    assert info.frames == 3 and info.fps == 12 and info.directory
    assert info.time_base == Fraction(1, 12)
    images = list(read_frames(info))
    np.testing.assert_array_equal(np.asarray(images[2]), frames[7])
    # Frames in, a video out: 12 fps, one frame every 1/12 s.
    encode_video(tmp_path / "out.mp4", save_pngs(tmp_path, images), info)
    back = decoded(tmp_path / "out.mp4")
    np.testing.assert_allclose([t for t, _, _ in back], [0, 1 / 12, 2 / 12], atol=1e-3)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].average_rate == 12


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_text("hello, not a film"), "not a video"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: None, "does not exist"),
    ],
)
def test_not_a_video(tmp_path: Path, make, needle: str) -> None:
    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(VideoError, match=needle):
        probe_video(path)


def test_audio_only_and_empty_parts_are_refused(tmp_path: Path, frames: list[np.ndarray]) -> None:
    m4a = tmp_path / "song.m4a"
    with av.open(str(m4a), "w") as out:
        a = out.add_stream("aac", rate=16000, layout="mono")
        tone = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000), np.float32), format="flt", layout="mono"
        )
        tone.sample_rate = 16000
        for packet in [*a.encode(tone), *a.encode(None)]:
            out.mux(packet)
    with pytest.raises(VideoError, match="audio-only"):
        probe_video(m4a)
    clip = write_clip(tmp_path / "a.mp4", frames[:4], 8)
    with pytest.raises(VideoError, match="no frames between 3 s"):
        probe_video(clip, start=3.0)
    empty_dir = tmp_path / "none"
    empty_dir.mkdir()
    with pytest.raises(VideoError, match="no frame images"):
        probe_video(empty_dir)
    with pytest.raises(BrushworkError, match="duration"):
        probe_video(clip, duration=0)
