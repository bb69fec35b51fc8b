"""Each control of the engine shows its effect with a number (real weights, real paintings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import Progress, stylize
from brushwork.backbones import build_backbone
from brushwork.cli import main
from brushwork.color import rgb_to_ycbcr
from brushwork.config import StyleConfig, pyramid_sizes
from brushwork.images import load_image
from brushwork.losses import gram_matrix
from brushwork.pixels import style_size, to_tensor

from .conftest import rgb_array

LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


@pytest.fixture(scope="module")
def vgg():
    net, _ = build_backbone("vgg16", layers=LAYERS)
    return net


def grams(net, img: Image.Image, mask: np.ndarray | None = None) -> list[torch.Tensor]:
    x = to_tensor(img, torch.device("cpu"))
    with torch.no_grad():
        feats = net(x, LAYERS)
    out = []
    for n in LAYERS:
        f = feats[n]
        if mask is not None:
            m = torch.from_numpy(mask.astype(np.float32))[None, None]
            m = torch.nn.functional.interpolate(m, size=f.shape[-2:], mode="nearest")
            f = f * m
            out.append(gram_matrix(f) * (m.numel() / max(float(m.sum()), 1.0)))
        else:
            out.append(gram_matrix(f))
    return out


def gram_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum(((x - y) ** 2).mean() for x, y in zip(a, b, strict=True)))


def test_pyramid_sizes_rise_by_sqrt2() -> None:
    assert pyramid_sizes(512, 128, 0) == [128, 181, 256, 362, 512]
    assert pyramid_sizes(512, 128, 3) == [128, 256, 512]
    assert pyramid_sizes(512, 128, 1) == [512]


def test_pyramid_runs_each_scale_from_the_previous(rainier: Path, starry: Path) -> None:
    records: list[Progress] = []
    img = stylize(
        rainier, starry, size=90, min_size=45, scales=0, iterations=3, callback=records.append
    )
    shapes = [(r.stage, r.width) for r in records if not r.done and r.stage_iteration == 1]
    assert shapes == [(0, 45), (1, 64), (2, 90)]
    assert img.size == (90, 60)


def test_style_is_never_upscaled_and_style_scale_sets_its_size() -> None:
    small = Image.new("RGB", (100, 50))
    cfg = StyleConfig()
    # Its own pixels at most:
    assert style_size(small, 600, 900, fit=cfg.style_fit, scale=1.0, min_side=16) == (50, 100)
    big = Image.new("RGB", (2000, 1000))
    h1, w1 = style_size(big, 400, 400, fit=cfg.style_fit, scale=cfg.style_scale, min_side=16)
    h2, w2 = style_size(big, 400, 400, fit="area", scale=0.5, min_side=16)
    assert (h1 * w1) == pytest.approx(400 * 400, rel=0.02)
    assert abs(h2 - h1 / 2) <= 1 and abs(w2 - w1 / 2) <= 1


def test_style_scale_matches_the_style_at_that_scale(rainier: Path, starry: Path, vgg) -> None:
    """Each result's feature statistics are closer to the style seen at its own scale."""
    style = Image.open(starry).convert("RGB")
    results, targets = {}, {}
    for scale in (0.5, 2.0):
        img = stylize(rainier, starry, size=128, iterations=40, style_scale=scale)
        h, w = style_size(style, img.height, img.width, fit="area", scale=scale, min_side=16)
        results[scale] = grams(vgg, img)
        targets[scale] = grams(vgg, style.resize((w, h), Image.LANCZOS))
    assert gram_distance(results[0.5], targets[0.5]) < gram_distance(results[0.5], targets[2.0])
    assert gram_distance(results[2.0], targets[2.0]) < gram_distance(results[2.0], targets[0.5])


def test_lbfgs_beats_adam_at_equal_iterations(rainier: Path, starry: Path) -> None:
    def totals(optimizer: str) -> list[float]:
        records: list[Progress] = []
        stylize(
            rainier,
            starry,
            size=64,
            iterations=15,
            optimizer=optimizer,
            content_weight=2e-4,
            callback=records.append,
        )
        return [r.total_loss for r in records if not r.done]

    lbfgs, adam = totals("lbfgs"), totals("adam")
    assert len(lbfgs) == 15
    assert lbfgs[-1] < 0.25 * lbfgs[0]
    assert lbfgs[-1] < 0.5 * adam[-1]


def test_luminance_mode_keeps_content_chroma(rainier: Path, starry: Path) -> None:
    img = stylize(rainier, starry, size=96, iterations=30, preserve_color="luminance")
    content = Image.open(rainier).convert("RGB").resize(img.size, Image.LANCZOS)

    def cbcr(i: Image.Image) -> torch.Tensor:
        x = torch.from_numpy(rgb_array(i)).permute(2, 0, 1)[None]
        return rgb_to_ycbcr(x)[:, 1:]

    diff = (cbcr(img) - cbcr(content)).abs().amax(dim=1)[0]
    out = rgb_array(img)
    # Where the new luminance needs no clipping, chroma is the content's up to 8-bit rounding.
    unclipped = torch.from_numpy(((out > 2 / 255) & (out < 253 / 255)).all(axis=2))
    assert unclipped.float().mean() > 0.8
    assert diff[unclipped].max() < 0.01, diff[unclipped].max()
    assert diff.mean() < 0.01
    y_change = (rgb_array(img).mean(axis=2) - rgb_array(content).mean(axis=2)).__abs__().mean()
    assert y_change > 0.02  # while the luminance was repainted


def test_histogram_mode_keeps_content_colours(rainier: Path, starry: Path) -> None:
    kw = dict(size=96, iterations=40)
    content = rgb_array(Image.open(rainier).convert("RGB").resize((96, 64), Image.LANCZOS))
    plain = rgb_array(stylize(rainier, starry, **kw))
    kept = rgb_array(stylize(rainier, starry, preserve_color="histogram", **kw))
    d_plain = np.abs(plain.mean(axis=(0, 1)) - content.mean(axis=(0, 1))).sum()
    d_kept = np.abs(kept.mean(axis=(0, 1)) - content.mean(axis=(0, 1))).sum()
    assert d_kept < 0.5 * d_plain, (d_kept, d_plain)


def test_blend_one_zero_equals_first_style_alone(rainier: Path, starry: Path, wave: Path) -> None:
    kw = dict(size=48, iterations=5, seed=3)
    alone = np.asarray(stylize(rainier, starry, **kw))
    blended = np.asarray(stylize(rainier, [starry, wave], style_blend=(1.0, 0.0), **kw))
    np.testing.assert_array_equal(alone, blended)
    mixed = np.asarray(stylize(rainier, [starry, wave], style_blend=(0.5, 0.5), **kw))
    assert np.abs(mixed.astype(int) - alone).mean() > 0.5


def test_blend_weights_are_normalized(rainier: Path, starry: Path, wave: Path) -> None:
    kw = dict(size=48, iterations=4, seed=3)
    a = np.asarray(stylize(rainier, [starry, wave], style_blend=(0.7, 0.3), **kw))
    b = np.asarray(stylize(rainier, [starry, wave], style_blend=(7.0, 3.0), **kw))
    np.testing.assert_array_equal(a, b)


def test_mask_regions_get_their_own_style(
    tmp_path: Path, rainier: Path, starry: Path, wave: Path, vgg
) -> None:
    content = Image.open(rainier).convert("RGB").resize((128, 64), Image.LANCZOS)
    labels = np.zeros((64, 128), dtype=np.uint8)
    labels[:, :64] = 1
    labels[:, 64:] = 2
    mask = Image.fromarray(labels, mode="L")
    out = stylize(
        content,
        starry,
        size=128,
        iterations=80,
        mask=mask,
        region_styles={1: starry, 2: wave},
        init="noise",
        content_weight=0.0,
    )
    g_starry = grams(vgg, Image.open(starry).convert("RGB").resize((128, 80)))
    g_wave = grams(vgg, Image.open(wave).convert("RGB").resize((128, 70)))
    left = grams(vgg, out, labels == 1)
    right = grams(vgg, out, labels == 2)
    assert gram_distance(left, g_starry) < gram_distance(left, g_wave)
    assert gram_distance(right, g_wave) < gram_distance(right, g_starry)
    # And the two halves differ from each other in their own right.
    assert gram_distance(left, right) > 0.2 * gram_distance(g_starry, g_wave)


def test_init_modes(rainier: Path, starry: Path, tmp_path: Path) -> None:
    first: dict[str, float] = {}
    for init in ("content", "recolored", "noise", "style-stats"):
        recs: list[Progress] = []
        stylize(rainier, starry, size=48, iterations=1, init=init, callback=recs.append)
        first[init] = recs[0].content_loss
    assert first["content"] == 0.0 < first["style-stats"] and first["noise"] > 0.0
    # Recolouring moves the content layer, but far less than starting from noise.
    assert 0.0 < first["recolored"] < 0.5 * min(first["noise"], first["style-stats"])
    start = tmp_path / "start.png"
    Image.new("RGB", (30, 20), (255, 0, 0)).save(start)
    # One tiny Adam step: the result is still the init image, to rounding.
    img = stylize(
        rainier, starry, size=48, iterations=1, init_image=str(start), optimizer="adam", lr=1e-5
    )
    assert np.abs(np.asarray(img)[5, 5].astype(int) - [255, 0, 0]).max() <= 1


def test_noise_init_same_seed_same_output(rainier: Path, starry: Path) -> None:
    a = np.asarray(stylize(rainier, starry, size=40, iterations=3, init="noise", seed=9))
    b = np.asarray(stylize(rainier, starry, size=40, iterations=3, init="noise", seed=9))
    c = np.asarray(stylize(rainier, starry, size=40, iterations=3, init="noise", seed=10))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 1


def test_style_layer_weights_and_pooling(rainier: Path, starry: Path) -> None:
    def first_style(**kw) -> float:
        recs: list[Progress] = []
        stylize(rainier, starry, size=64, iterations=1, callback=recs.append, **kw)
        return recs[0].style_loss

    only_first = first_style(style_layer_weights=(1, 0, 0, 0, 0))
    assert only_first == pytest.approx(first_style(style_layers=("conv1_1",)), rel=1e-6)
    assert first_style(style_layer_weights=(2, 0, 0, 0, 0)) == pytest.approx(2 * only_first)
    avg = first_style(pooling="avg")
    assert abs(avg - first_style()) > 0.01 * avg  # avg pooling changes deeper features


def test_meancov_style_loss_drops(rainier: Path, starry: Path) -> None:
    recs: list[Progress] = []
    stylize(rainier, starry, size=96, iterations=40, style_loss="meancov", callback=recs.append)
    steps = [r for r in recs if not r.done]
    assert steps[-1].style_loss < 0.5 * steps[0].style_loss


def test_tol_stops_a_scale_early(rainier: Path, starry: Path) -> None:
    recs: list[Progress] = []
    img = stylize(
        rainier, starry, size=48, iterations=400, tol=0.02, tol_window=10, callback=recs.append
    )
    steps = [r for r in recs if not r.done]
    assert steps[-1].converged and len(steps) < 400
    assert img.info["brushwork"]["iterations_run"] == len(steps)
    old, new = steps[-11].total_loss, steps[-1].total_loss
    assert abs(old - new) <= 0.02 * abs(old)


def test_texture_synthesis(tmp_path: Path, starry: Path, capsys) -> None:
    out = tmp_path / "tex.png"
    code = main(
        ["texture", str(starry), "-o", str(out), "--size", "80x48", "--iterations", "40", "-q"]
    )
    assert code == 0, capsys.readouterr().err
    img = Image.open(out)
    assert img.size == (80, 48)
    import json

    record = json.loads(img.text["brushwork"])
    assert record["resolved"]["content_weight"] == 0.0
    recs: list[Progress] = []
    stylize(None, starry, canvas=(80, 48), size=80, iterations=40, callback=recs.append)
    assert recs[-2].style_loss < 0.5 * recs[0].style_loss


def test_impossible_combinations_exit_2(tmp_path: Path, small_pair, capsys, starry: Path) -> None:
    content, style = small_pair
    mask = tmp_path / "mask.png"
    Image.new("L", (10, 10), 1).save(mask)
    out = str(tmp_path / "o.png")
    cases = [
        (["--mask", str(mask), "--region-style", f"1={starry}"], "same size"),
        (["--style-blend", "1,2,3"], "3 blend weights for 1 style"),
        (["--style-layer-weights", "1,2"], "2 style layer weights for 5"),
        (["--region-style", f"1={starry}"], "need a mask image"),
        (["--init-image", "nowhere.png"], "nowhere.png"),
        (["--precision", "fp16", "--device", "cpu"], "fp16 is for GPUs"),
    ]
    for extra, needle in cases:
        code = main(["stylize", str(content), str(style), "-o", out, "-q", *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and "Traceback" not in err, (extra, err)


def test_strength_paints_more_on_every_painting(rainier: Path, starry: Path, wave: Path) -> None:
    """--balance auto --strength: higher strength closes more of the style gap and moves
    further from the photo, with each painting (the quality metric, brushwork.quality)."""
    from brushwork.quality import QualityMeter

    meter = QualityMeter()
    content = load_image(rainier)
    for painting in (starry, wave):
        style = load_image(painting)
        q = {
            s: meter.score(
                stylize(content, style, size=96, iterations=40, balance="auto", strength=s),
                content,
                style,
            )
            for s in (0.1, 1.0, 10.0)
        }
        gaps = [q[s].gap_closed for s in (0.1, 1.0, 10.0)]
        moved = [q[s].content_distance for s in (0.1, 1.0, 10.0)]
        assert gaps == sorted(gaps) and gaps[-1] > gaps[0] + 0.1, gaps
        assert moved == sorted(moved), moved


def pixel_stats(img: Image.Image, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Colour mean (3,) and population covariance (3, 3) of an image's pixels in 0..1."""
    px = np.asarray(img.convert("RGB"), float).reshape(-1, 3) / 255
    if mask is not None:
        px = px[mask.reshape(-1)]
    return px.mean(axis=0), np.cov(px.T, bias=True)


def test_recolored_init_starts_in_the_paintings_colours(rainier: Path, starry: Path) -> None:
    # One tiny Adam step: the output is the start image, to rounding.
    kw = dict(size=96, iterations=1, optimizer="adam", lr=1e-5)
    start = stylize(rainier, starry, init="recolored", **kw)
    photo = stylize(rainier, starry, init="content", **kw)
    painting = Image.open(starry).convert("RGB").resize((96, 76), Image.LANCZOS)
    mu_s, cov_s = pixel_stats(painting)
    mu_p, cov_p = pixel_stats(photo)
    mu_0, cov_0 = pixel_stats(start)
    # The photo is far from the painting's colours; the start is on them, up to
    # clipping and 8-bit rounding.
    assert np.abs(mu_p - mu_s).max() > 0.1
    assert np.abs(mu_0 - mu_s).max() < 0.02
    assert np.abs(cov_0 - cov_s).max() < 0.2 * np.abs(cov_p - cov_s).max()
    # Its structure is the photo's: the luminance follows the photo's closely.
    y0, yp = (np.asarray(i.convert("L"), float).ravel() for i in (start, photo))
    assert np.corrcoef(y0, yp)[0, 1] > 0.9


def test_recolored_init_follows_each_regions_painting(
    rainier: Path, starry: Path, wave: Path
) -> None:
    content = Image.open(rainier).convert("RGB").resize((128, 64), Image.LANCZOS)
    labels = np.zeros((64, 128), dtype=np.uint8)
    labels[:, :64] = 1
    labels[:, 64:] = 2
    start = stylize(
        content,
        starry,
        size=128,
        iterations=1,
        optimizer="adam",
        lr=1e-5,
        mask=Image.fromarray(labels, mode="L"),
        region_styles={1: starry, 2: wave},
    )
    for label, painting in ((1, starry), (2, wave)):
        img = Image.open(painting).convert("RGB")
        mu_s, _ = pixel_stats(img.resize((128, round(128 * img.height / img.width))))
        mu_0, _ = pixel_stats(start, labels == label)
        assert np.abs(mu_0 - mu_s).max() < 0.02, label
