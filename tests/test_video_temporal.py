"""The temporal loss: against numpy, a float64 gradcheck, and its effect inside stylize()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from brushwork import stylize
from brushwork.engine import load_network
from brushwork.pixels import normalize, rgb_tensor
from brushwork.video.temporal import TemporalLoss, temporal_loss


def numpy_temporal(x: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> float:
    """Σ_j Σ_p c_j(p) Σ_ch (x − ω_j)² / (3 Σ_j Σ_p c_j(p)), written out."""
    num = den = 0.0
    for j in range(targets.shape[0]):
        for ch in range(3):
            num += float((masks[j, 0] * (x[0, ch] - targets[j, ch]) ** 2).sum())
        den += 3 * float(masks[j, 0].sum())
    return num / den


def test_temporal_loss_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 3, 9, 11))
    targets = rng.normal(size=(3, 3, 9, 11))
    masks = (rng.random((3, 1, 9, 11)) < 0.6).astype(np.float64)
    ours = temporal_loss(torch.from_numpy(x), torch.from_numpy(targets), torch.from_numpy(masks))
    assert ours.dtype == torch.float64
    assert np.isclose(float(ours), numpy_temporal(x, targets, masks), rtol=1e-12, atol=0)


def test_masked_pixels_do_not_count_and_no_mask_costs_nothing() -> None:
    x = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    target[..., 0, 0] = 100.0
    mask[..., 0, 0] = 0.0
    assert float(temporal_loss(x, target, mask)) == 0.0
    assert float(temporal_loss(x + 1, target, torch.zeros(1, 1, 4, 4))) == 0.0
    # A uniform error of 2 costs 4 whatever the share of masked pixels.
    assert np.isclose(float(temporal_loss(x + 2, target, mask)), 4.0)


def test_temporal_loss_gradcheck_float64() -> None:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(1, 3, 5, 6))).requires_grad_(True)
    targets = torch.from_numpy(rng.normal(size=(2, 3, 5, 6)))
    masks = torch.from_numpy((rng.random((2, 1, 5, 6)) < 0.5).astype(np.float64))
    assert torch.autograd.gradcheck(lambda v: temporal_loss(v, targets, masks), (x,))


def test_module_weights_the_loss_and_keeps_buffers() -> None:
    rng = np.random.default_rng(2)
    targets = torch.from_numpy(rng.normal(size=(1, 3, 6, 6))).float()
    masks = torch.ones(1, 1, 6, 6)
    module = TemporalLoss(targets, masks, weight=7.5)
    x = torch.from_numpy(rng.normal(size=(1, 3, 6, 6))).float()
    assert np.isclose(float(module(x)), 7.5 * float(temporal_loss(x, targets, masks)), rtol=1e-6)
    assert {name for name, _ in module.named_buffers()} == {"targets", "masks"}


def test_the_term_pulls_stylize_towards_its_target(small_pair: tuple[Path, Path]) -> None:
    """Inside a real run: with the term, the result stays near the target where the
    mask trusts it, and is free where it does not."""
    content_path, style_path = small_pair
    content = Image.open(content_path).convert("RGB")
    style = Image.open(style_path).convert("RGB")
    cfg = {"size": 96, "scales": 1, "iterations": 12}
    network = load_network(size=96)
    # The target: a stylization of the same frame; the start: the photo.
    target_img = stylize(content, style, network=network, **cfg)
    target = normalize(rgb_tensor(target_img, torch.device("cpu")))
    mask = torch.ones(1, 1, *target.shape[-2:])
    mask[..., :, : target.shape[-1] // 2] = 0.0  # trust only the right half

    def distance(img: Image.Image) -> tuple[float, float]:
        a = np.asarray(img, np.float64)
        b = np.asarray(target_img, np.float64)
        half = a.shape[1] // 2
        return float(np.abs(a - b)[:, :half].mean()), float(np.abs(a - b)[:, half:].mean())

    seeded = {**cfg, "seed": 3, "init": "noise"}  # a different optimum than the target's
    free = stylize(content, style, network=network, **seeded)
    tied = stylize(
        content, style, network=network, extra_loss=TemporalLoss(target, mask, 50.0), **seeded
    )
    free_left, free_right = distance(free)
    tied_left, tied_right = distance(tied)
    assert tied_right < 0.5 * free_right  # pulled to the target where trusted
    assert tied_left > 0.7 * free_left  # left to the style where not


def test_long_term_targets_are_earlier_frames_warped_onto_this_one(rainier: Path) -> None:
    """With each "output" equal to its content frame, every warped target must
    reproduce the current frame where its mask trusts it; each pixel is trusted
    in at most one target (frames 1, 2 and 4 back)."""
    from brushwork.pixels import rgb01
    from brushwork.video.flow import to_gray
    from brushwork.video.run import FrameHistory, temporal_term
    from brushwork.video.synth import pan

    photo = Image.open(rainier).convert("RGB").resize((400, 267), Image.Resampling.LANCZOS)
    frames = pan(photo, 5, (128, 96), (2.5, 1.0), origin=(80.0, 60.0))
    history = FrameHistory()
    for t in range(4):
        history.keep(t + 1, to_gray(frames[t]), frames[t].astype(np.float32) / 255)
    start, loss = temporal_term(
        to_gray(frames[4]), 5, history, long_term=True, weight=1.0, device=torch.device("cpu")
    )
    assert loss.targets.shape == (3, 3, 96, 128) and loss.masks.shape == (3, 1, 96, 128)
    masks = loss.masks.numpy()
    assert masks.sum(0).max() <= 1.0
    assert masks[0].mean() > 0.85  # most pixels tie to the previous frame
    # In a monotone pan nothing hidden from t-1 was seen 2 or 4 frames back
    # (new pixels enter at the edge), so the longer targets are nearly empty.
    assert masks[1:].mean() < 0.03
    current = frames[4].astype(np.float64) / 255
    for j in range(3):
        target = rgb01(loss.targets[j : j + 1])[0].permute(1, 2, 0).numpy()
        m = masks[j, 0] > 0
        if m.sum() > 50:
            assert np.abs(target - current)[m].mean() < 0.03  # under 8 levels
    # The start image is the previous frame warped: close to the current frame inside.
    inner = np.abs(np.asarray(start, np.float64) / 255 - current)[8:-8, 8:-8]
    assert inner.mean() < 0.03
    # Short-term only: one target, the same as the long-term's first.
    _, short = temporal_term(
        to_gray(frames[4]), 5, history, long_term=False, weight=1.0, device=torch.device("cpu")
    )
    assert short.targets.shape[0] == 1
    torch.testing.assert_close(short.targets[0], loss.targets[0])


def test_untrusted_pixels_start_from_the_photo(rainier: Path, autumn_oak: Path) -> None:
    """Behind a moving object the warp would copy the object; those pixels start from
    the content frame instead, the trusted ones from the previous output warped."""
    from brushwork.video.flow import to_gray
    from brushwork.video.run import FrameHistory, temporal_term
    from brushwork.video.synth import moving_object

    photo = Image.open(rainier).convert("RGB").resize((300, 200), Image.Resampling.LANCZOS)
    sprite = Image.open(autumn_oak).convert("RGB")
    frames, _ = moving_object(
        photo, sprite, 2, (160, 112), box=(48, 48), start=(30, 32), step=(12, 0)
    )
    history = FrameHistory()
    painted = np.full((112, 160, 3), 0.25, np.float32)  # a flat "previous output"
    history.keep(1, to_gray(frames[0]), painted)
    content = frames[1].astype(np.float32) / 255
    start, loss = temporal_term(
        to_gray(frames[1]), 2, history, long_term=False, weight=1.0,
        device=torch.device("cpu"), content=content,
    )  # fmt: skip
    got = np.asarray(start, np.float32) / 255
    trusted = loss.masks[0, 0].numpy() > 0
    assert 0.02 < (~trusted).mean() < 0.3  # the uncovered strip and the entering edge
    np.testing.assert_allclose(got[trusted], 0.25, atol=1 / 255)
    np.testing.assert_allclose(got[~trusted], content[~trusted], atol=1 / 255)


def test_untrusted_pixels_start_as_frame_one_started(rainier: Path, starry: Path) -> None:
    """Frame 1 starts from the photo recoloured to the painting (the default), so
    pixels a later frame cannot take from the flow start from that too: from the
    plain photo they would be a patch of the photo's colours in a painted frame."""
    from brushwork.config import StyleConfig
    from brushwork.sources import config_style_inputs
    from brushwork.video.run import fill_image

    photo = Image.open(rainier).convert("RGB").resize((120, 80), Image.Resampling.LANCZOS)
    painting = Image.open(starry).convert("RGB")
    inputs = config_style_inputs(StyleConfig(), [painting], content_size=photo.size)
    plain = fill_image(photo, inputs, StyleConfig(init="content"))
    np.testing.assert_allclose(plain, np.asarray(photo, np.float32) / 255, atol=1e-6)
    fill = fill_image(photo, inputs, StyleConfig())
    assert fill.shape == (80, 120, 3) and fill.dtype == np.float32
    target = np.asarray(painting.resize((120, 83)), np.float32).reshape(-1, 3).mean(0) / 255
    photo_mean = plain.reshape(-1, 3).mean(0)
    assert np.abs(photo_mean - target).max() > 0.1
    assert np.abs(fill.reshape(-1, 3).mean(0) - target).max() < 0.02
    # It is the same start frame 1 gets: stylize with one tiny Adam step returns it.
    start = stylize(photo, painting, size=120, scales=1, iterations=1, optimizer="adam", lr=1e-5)
    np.testing.assert_allclose(np.asarray(start, np.float32) / 255, fill, atol=2 / 255)


def test_a_later_frame_converges_from_its_painted_start(rainier: Path, starry: Path) -> None:
    """A later frame starts from the painted frame before it, with pixels at the
    pixel bounds, and L-BFGS must descend from there. Fed the full gradient, it
    kept pushing those pixels against the clamp and diverged: on this 256 px pan
    the loss went from 0.38 to 9.3 (at 512 px from 0.33 to 40, into noise)."""
    import dataclasses

    from brushwork.config import Stage, StyleConfig
    from brushwork.video.flow import to_gray
    from brushwork.video.run import FrameHistory, temporal_term
    from brushwork.video.synth import pan

    photo = Image.open(rainier).convert("RGB")
    photo = photo.resize((358, round(358 * photo.height / photo.width)), Image.Resampling.LANCZOS)
    frames = pan(photo, 2, (256, 171), (2.56, 0.85), origin=(photo.width * 0.05, 24.0))
    cfg = StyleConfig(size=256)
    net = load_network(cfg)
    first = stylize(Image.fromarray(frames[0]), starry, config=cfg, network=net)
    history = FrameHistory()
    history.keep(1, to_gray(frames[0]), np.asarray(first, np.float32) / 255)
    start, loss = temporal_term(
        to_gray(frames[1]), 2, history, long_term=False, weight=20.0,
        device=torch.device("cpu"), content=frames[1].astype(np.float32) / 255,
    )  # fmt: skip
    later = dataclasses.replace(cfg, stages=(Stage(256, 20, 200),))
    totals: list[float] = []
    stylize(
        Image.fromarray(frames[1]), starry, config=later, network=net, start=start,
        extra_loss=loss, callback=lambda p: totals.append(p.total_loss),
    )  # fmt: skip
    assert totals[-1] < 0.9 * totals[0], totals
    assert totals[-1] <= 1.01 * min(totals), totals  # still descending at the end
