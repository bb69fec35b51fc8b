"""The video driver: stylize a clip frame by frame with temporal consistency (Ruder et al. 2016).

Frame 1 gets a full stylization with the caller's config. Each later frame t:

1. DIS flow from t back to t−1 (and forward, for the consistency check);
2. starts from the previous output warped onto frame t (Ruder's "prevWarped"
   initialization), except where the flow cannot be trusted: disoccluded pixels
   start as frame 1 did (the photo, recoloured to the painting under the default
   init) and are repainted without a temporal constraint;
3. optimizes content + style + TV + ``temporal_weight`` × the masked MSE to
   the warped previous output (:mod:`brushwork.video.temporal`), in one stage at
   the full size with ``frame_iterations`` iterations: it starts near its answer.

``temporal_weight=0`` is plain per-frame stylization: every frame runs the full
config from ``config.init``, the baseline the flicker benchmark compares with.

Finished frames go to a frame store (``OUTPUT.frames/000001.png`` with its run
record in ``000001.png.json``), keyed by the settings, the input frame and the
previous output, so a rerun continues where the last one stopped and a stop
(``should_stop``) still leaves a playable video of the frames done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from brushwork import __version__
from brushwork.color import color_mode
from brushwork.config import Stage, StyleConfig, StyleOptions
from brushwork.engine import Network, load_network, recolor_to_styles, stylize
from brushwork.errors import BrushworkError, ConfigError
from brushwork.images import ImageInput, atomic_write, load_image, save_image, sidecar_path
from brushwork.pixels import fit_long_side, normalize, rgb_tensor
from brushwork.progress import Progress
from brushwork.sources import StyleInputs, config_style_inputs
from brushwork.video import DEFAULT_TEMPORAL_WEIGHT, LATER_FRACTION
from brushwork.video.flow import long_term_masks, pair_flow, to_gray, warp
from brushwork.video.media import (
    VIDEO_SUFFIXES,
    Encoded,
    VideoInfo,
    encode_video,
    probe_video,
    read_frames,
)
from brushwork.video.temporal import TemporalLoss

#: Frames back that long-term consistency ties each frame to (Ruder et al.: 1, 2, 4).
LONG_TERM = (1, 2, 4)


@dataclass(frozen=True)
class VideoProgress:
    """One record of a video run's progress stream (after every iteration and frame)."""

    frame: int  # 1-based index of the frame being worked on
    frames: int  # frames in the selected part
    frames_done: int  # frames finished (computed or reused), including this one if done
    iteration: int  # within this frame
    iterations: int  # this frame's planned iterations
    elapsed: float  # seconds since the run started
    eta: float | None  # seconds left, from the measured frame times; None until known
    frame_done: bool = False
    reused: bool = False  # this frame came from the store of an earlier run


VideoCallback = Callable[[VideoProgress], None]


@dataclass(frozen=True)
class VideoPlan:
    """Everything checked before any weight loads: the input, sizes, outputs, configs."""

    info: VideoInfo
    output: Path
    frames_dir: bool  # True: numbered PNG frames in ``output``; False: a video file
    store: Path  # where finished frames live
    width: int
    height: int
    first: StyleConfig  # frame 1 (and every frame at temporal weight 0)
    later: StyleConfig  # frames 2.. with the temporal term
    temporal_weight: float
    long_term: bool
    styles: tuple[Image.Image, ...]  # decoded style images
    key: str  # hash of every setting a stored frame depends on


@dataclass(frozen=True)
class VideoResult:
    """What a run did; ``stopped`` is None, "cancelled" or "nonfinite"."""

    output: Path
    frames: int  # frames written to the output
    frames_total: int
    reused: int
    stopped: str | None
    encoded: Encoded | None
    first_seconds: float | None  # the first frame's time (None when reused)
    later_seconds: tuple[float, ...]  # each computed later frame's time
    store: Path


def is_frames_output(output: str | os.PathLike[str]) -> bool:
    """``-o DIR/`` (a trailing slash) or an existing directory means PNG frames."""
    text = os.fspath(output)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def plan_video(
    source: str | os.PathLike[str],
    style: ImageInput | Sequence[ImageInput],
    output: str | os.PathLike[str],
    *,
    config: StyleConfig,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_iterations: int | None = None,
    long_term: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    fps: Fraction | None = None,
) -> VideoPlan:
    """Check the input, the output and the memory model; no weights load.

    ``style``: one or more style images (paths or PIL images), decoded here.

    Raises:
        BrushworkError: not a video, audio only, no frames in the part, an
        output that is an input, an unknown output type, a size the memory
        model refuses, bad settings.
    """
    from brushwork.devices import resolve_device, resolve_precision
    from brushwork.plan import check_config, plan_run

    if not (temporal_weight >= 0 and np.isfinite(temporal_weight)):
        raise ConfigError(f"temporal weight must be a finite number >= 0, got {temporal_weight}")
    if frame_iterations is not None and frame_iterations < 1:
        raise ConfigError(f"frame iterations must be >= 1, got {frame_iterations}")
    src = Path(source)
    frames_dir = is_frames_output(output)
    out = Path(output)
    style_list: list[ImageInput] = (
        list(style) if isinstance(style, list | tuple) else [style]  # type: ignore[list-item]
    )
    files = {
        f"style {i}": Path(s) for i, s in enumerate(style_list, 1) if not isinstance(s, Image.Image)
    }
    _check_not_input(out, {"input": src, **files})
    if not frames_dir and out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"output '{out}' has an unsupported extension (use {', '.join(VIDEO_SUFFIXES)}, "
            "or end it with '/' for a directory of PNG frames)"
        )
    check_config(config, n_styles=len(style_list))
    if config.content_budget:
        raise ConfigError(
            "--content-budget corrects the balance for each image; a video keeps one "
            "balance for all its frames (set --strength instead)"
        )
    device = resolve_device(config.device)
    styles = tuple(load_image(s, "style") for s in style_list)
    info = probe_video(src, start=start, duration=duration, fps=fps)
    # Off, not the device's default: a budget would correct the first frame alone.
    config = dataclasses.replace(config, content_budget=0.0)
    config = config.for_device(device.type, (info.width, info.height))
    last = config.resolved_stages()[-1]
    h, w = fit_long_side(info.width, info.height, last.size)
    if not frames_dir:  # H.264 in 4:2:0 needs even sides
        h, w = max(2, h - h % 2), max(2, w - w % 2)
    first = config
    if not config.stages:
        first = dataclasses.replace(config, size=max(h, w))
    its = frame_iterations or max(1, round(last.iterations * LATER_FRACTION))
    later = dataclasses.replace(
        config,
        stages=(Stage(max(h, w), its, last.lr_decay_every),),
        init="content",
        init_image=None,
    )
    dtype = resolve_precision(config.precision, device)
    for cfg in (first, later) if temporal_weight > 0 else (first,):
        plan_run(cfg, content_size=(w, h), device=device, dtype=dtype)
    store = out if frames_dir else out.with_name(out.name + ".frames")
    _check_writable(store)
    settings = {
        "brushwork": __version__,
        "config": config.to_dict(),
        "temporal_weight": temporal_weight,
        "frame_iterations": its,
        "long_term": long_term,
        "size": [w, h],
        "styles": [_sha(np.asarray(s)) for s in styles],
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return VideoPlan(
        info, out, frames_dir, store, w, h, first, later, temporal_weight, long_term, styles, key
    )


def _check_not_input(out: Path, inputs: Mapping[str, Path]) -> None:
    target = out.resolve()
    for what, path in inputs.items():
        if path.exists() and path.resolve() in (target, sidecar_path(target)):
            raise ConfigError(f"output '{out}' is the {what}; refusing to overwrite an input")


def _check_writable(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"'{directory}' is a file; the frames need a directory there")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"cannot write to '{directory}': {e.strerror}") from None


def frame_path(store: Path, index: int) -> Path:
    """The stored output of frame ``index`` (1-based)."""
    return store / f"{index:06d}.png"


def _sha(arr: NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _stored(store: Path, index: int, key: str, input_sha: str, prev_sha: str) -> Image.Image | None:
    """The stored frame if it was made with these settings, input and previous output."""
    path = frame_path(store, index)
    try:
        record = json.loads(sidecar_path(path).read_text())
        video = record["video"]
        if (video["key"], video["input_sha256"], video["previous_sha256"]) != (
            key,
            input_sha,
            prev_sha,
        ):
            return None
        return load_image(path, "stored frame")
    except (OSError, ValueError, KeyError, TypeError, BrushworkError):
        return None  # missing, or a damaged record or PNG: compute the frame again


@dataclass
class FrameHistory:
    """The last few frames: grey content (for flow) and float RGB outputs (for warping)."""

    gray: dict[int, NDArray[np.uint8]] = dataclasses.field(default_factory=dict)
    out: dict[int, NDArray[np.float32]] = dataclasses.field(default_factory=dict)

    def keep(self, index: int, gray: NDArray[np.uint8], out: NDArray[np.float32]) -> None:
        self.gray[index], self.out[index] = gray, out
        for k in [k for k in self.gray if k <= index - max(LONG_TERM)]:
            del self.gray[k], self.out[k]


def temporal_term(
    gray: NDArray[np.uint8],
    index: int,
    history: FrameHistory,
    *,
    long_term: bool,
    weight: float,
    device: torch.device,
    content: NDArray[np.float32] | None = None,
) -> tuple[Image.Image, TemporalLoss]:
    """The start image and the temporal loss of frame ``index``.

    The start is the previous output warped onto this frame; where the flow
    cannot be trusted (mask 0: disoccluded, entering the frame, motion
    boundaries) it is the ``content`` frame (h, w, 3) in 0..1, if given.
    """
    back = LONG_TERM if long_term else (1,)
    pairs, outs = [], []
    for j in back:
        if index - j in history.gray:
            pairs.append(pair_flow(gray, history.gray[index - j]))
            outs.append(history.out[index - j])
    warped = [warp(o, p.backward) for o, p in zip(outs, pairs, strict=True)]
    masks = long_term_masks([p.mask for p in pairs]) if long_term else [pairs[0].mask]
    targets = torch.from_numpy(np.stack(warped)).permute(0, 3, 1, 2).to(device)
    mask_t = torch.from_numpy(np.stack(masks))[:, None].to(device)
    loss = TemporalLoss(normalize(targets), mask_t, weight)
    first = warped[0]
    if content is not None:
        # Ruder starts disoccluded pixels from the warped image and lets the
        # optimization repaint them, but in a later frame's 20 iterations it does
        # not: behind a moving object the warp copies the object's colours, and
        # once those pixels are background again the temporal term keeps the
        # streak for good (seen in the demo). The photo there repaints cleanly.
        first = np.where(pairs[0].mask[..., None] > 0, first, content)
    start = Image.fromarray((np.clip(first, 0, 1) * 255 + 0.5).astype(np.uint8))
    return start, loss


def fill_image(content: Image.Image, inputs: StyleInputs, cfg: StyleConfig) -> NDArray[np.float32]:
    """Where the flow cannot be trusted, a later frame starts as frame 1 started:
    from the photo, recoloured to the paintings' palette (``inputs``, loaded once
    per video) under init "recolored" (the default), else as it is. (h, w, 3) in 0..1."""
    rgb = rgb_tensor(content, torch.device("cpu"))
    if cfg.init == "recolored":
        h, w = rgb.shape[-2:]
        mode = color_mode(cfg.preserve_color)
        rgb = recolor_to_styles(rgb, inputs.sources(h, w, rgb, mode, rgb.device))
    return rgb[0].permute(1, 2, 0).numpy().astype(np.float32)


def stylize_video(
    source: str | os.PathLike[str],
    style: ImageInput | Sequence[ImageInput],
    output: str | os.PathLike[str],
    *,
    config: StyleConfig | None = None,
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
    frame_iterations: int | None = None,
    long_term: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    fps: Fraction | None = None,
    network: Network | None = None,
    callback: VideoCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Unpack[StyleOptions],
) -> VideoResult:
    """Stylize the video ``source`` into ``output`` (a video file, or ``DIR/`` for PNG frames).

    ``config`` and ``options`` (StyleConfig fields, which override it) are the
    style settings, as for :func:`brushwork.stylize`.

    The method is the module's description; ``frame_iterations`` (default: two
    thirds of the last stage's iterations) is the later frames' budget,
    ``long_term`` ties each frame to frames 1, 2 and 4 back. ``start`` and
    ``duration`` (seconds) cut a part; ``fps`` is a frame directory's rate.
    ``callback`` receives a :class:`VideoProgress` after every iteration and
    every frame; ``should_stop`` is polled every iteration.

    Raises:
        BrushworkError: for anything the caller can fix, before weights load.
    """
    plan = plan_video(
        source,
        style,
        output,
        config=dataclasses.replace(config or StyleConfig(), **options),
        temporal_weight=temporal_weight,
        frame_iterations=frame_iterations,
        long_term=long_term,
        start=start,
        duration=duration,
        fps=fps,
    )
    return render(plan, network=network, callback=callback, should_stop=should_stop)


def render(
    plan: VideoPlan,
    *,
    network: Network | None = None,
    callback: VideoCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    inputs_record: Mapping[str, Any] | None = None,
) -> VideoResult:
    """Run a checked :class:`VideoPlan`: stylize its frames and write the output.

    Frames already in the store with matching records are reused. When
    ``should_stop`` returns True the current frame is abandoned, and the frames
    done so far are encoded (a playable, shorter video) or left as PNG files.

    Raises:
        BrushworkError: for anything the caller can fix.
    """
    from brushwork.devices import resolve_device

    styles = list(plan.styles)
    # The paintings for the fill of untrusted pixels, decoded and checked once per video.
    fill_inputs = config_style_inputs(plan.first, styles, content_size=(plan.width, plan.height))
    device = resolve_device(plan.first.device)
    if network is None:
        network = load_network(plan.first)
    n = plan.info.frames
    history = FrameHistory()
    t0 = time.perf_counter()
    timed: list[float] = []  # seconds of computed frames of the kind still to come
    first_seconds: float | None = None
    later_seconds: list[float] = []
    done = reused = 0
    prev_sha = ""
    stopped: str | None = None

    def eta(frame: int, frac: float) -> float | None:
        if not timed:
            return None
        per = sum(timed) / len(timed)
        return per * (n - frame) + per * (1.0 - frac)

    for index, frame in enumerate(read_frames(plan.info), start=1):
        if should_stop is not None and should_stop():
            stopped = "cancelled"
            break
        content = frame.resize((plan.width, plan.height), Image.Resampling.LANCZOS)
        content_arr = np.asarray(content)
        input_sha = _sha(content_arr)
        gray = to_gray(content_arr)
        old = _stored(plan.store, index, plan.key, input_sha, prev_sha)
        if old is not None:
            out_img = old
            reused += 1
        else:
            temporal = plan.temporal_weight > 0 and index > 1
            cfg = plan.later if temporal else plan.first
            start_img: Image.Image | None = None
            extra: TemporalLoss | None = None
            if temporal:
                start_img, extra = temporal_term(
                    gray,
                    index,
                    history,
                    long_term=plan.long_term,
                    weight=plan.temporal_weight,
                    device=device,
                    content=fill_image(content, fill_inputs, plan.first),
                )

            def on_progress(p: Progress, index: int = index, done: int = done) -> None:
                if callback is not None and not p.done:
                    frac = p.iteration / max(1, p.total_iterations)
                    callback(
                        VideoProgress(
                            frame=index,
                            frames=n,
                            frames_done=done,
                            iteration=p.iteration,
                            iterations=p.total_iterations,
                            elapsed=time.perf_counter() - t0,
                            eta=eta(index, frac),
                        )
                    )

            ts = time.perf_counter()
            out_img = stylize(
                content,
                styles,
                config=cfg,
                network=network,
                start=start_img,
                extra_loss=extra,
                callback=on_progress,
                should_stop=should_stop,
            )
            seconds = time.perf_counter() - ts
            record = dict(out_img.info["brushwork"])
            if record["stopped"] is not None:
                stopped = record["stopped"]
                break
            if out_img.size != (plan.width, plan.height):
                out_img = out_img.resize((plan.width, plan.height), Image.Resampling.LANCZOS)
            record["video"] = {
                "key": plan.key,
                "frame": index,
                "input_sha256": input_sha,
                "previous_sha256": prev_sha,
                "temporal_weight": plan.temporal_weight if temporal else 0.0,
                "seconds": round(seconds, 3),
            }
            save_image(out_img, frame_path(plan.store, index), record)
            if index == 1:
                first_seconds = seconds
            if temporal:
                later_seconds.append(seconds)
            # The ETA uses frames like the ones left: later frames once there are any.
            if plan.temporal_weight == 0 or temporal:
                timed.append(seconds)
        out_arr = np.asarray(out_img, dtype=np.float32) / 255.0
        prev_sha = _sha(np.asarray(out_img))
        history.keep(index, gray, out_arr)
        done += 1
        if callback is not None:
            callback(
                VideoProgress(
                    frame=index,
                    frames=n,
                    frames_done=done,
                    iteration=0,
                    iterations=0,
                    elapsed=time.perf_counter() - t0,
                    eta=eta(index, 1.0) if index < n else 0.0,
                    frame_done=True,
                    reused=old is not None,
                )
            )
    encoded = None
    if done and not plan.frames_dir:
        paths = [frame_path(plan.store, i) for i in range(1, done + 1)]
        encoded = encode_video(plan.output, paths, plan.info)
    result = VideoResult(
        output=plan.output,
        frames=done,
        frames_total=n,
        reused=reused,
        stopped=stopped,
        encoded=encoded,
        first_seconds=first_seconds,
        later_seconds=tuple(later_seconds),
        store=plan.store,
    )
    if done:
        _write_record(plan, result, inputs_record or {})
    return result


def _write_record(plan: VideoPlan, result: VideoResult, inputs: Mapping[str, Any]) -> None:
    """The video's run record beside it (``OUT.mp4.json``, or ``DIR/video.json``)."""
    info = plan.info
    record = {
        "brushwork": __version__,
        "config": plan.first.to_dict(),
        "later_frames": plan.later.to_dict() if plan.temporal_weight > 0 else None,
        "temporal_weight": plan.temporal_weight,
        "long_term": plan.long_term,
        "size": [plan.width, plan.height],
        "source": {
            "path": str(info.path),
            "start": info.start,
            "end": info.end,
            "fps": str(info.fps),
            "rotation": info.rotation,
        },
        "frames": result.frames,
        "frames_total": result.frames_total,
        "frames_reused": result.reused,
        "stopped": result.stopped,
        "encoder": None if result.encoded is None else result.encoded.encoder,
        "audio": None if result.encoded is None else result.encoded.audio,
        "first_frame_seconds": result.first_seconds,
        "later_frame_seconds": list(result.later_seconds),
        "frame_store": str(plan.store),
        "inputs": dict(inputs),
    }
    where = plan.output / "video.json" if plan.frames_dir else sidecar_path(plan.output)
    atomic_write(where, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
