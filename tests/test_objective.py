"""The objective of a stage against numpy recomputations on real VGG-16 features
of real images (fp32 on the CPU, small sizes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.backbones import VGGFeatures, build_backbone
from brushwork.balance import CAFFE_WEIGHTS, LossWeights
from brushwork.objective import (
    LossParts,
    MaskedMeanCovLoss,
    MaskedStyleLoss,
    Objective,
    StyleSource,
    Terms,
)
from brushwork.pixels import to_tensor

CPU = torch.device("cpu")
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYERS = ("conv4_3",)
LAYER_WEIGHTS = (1.0, 0.5, 2.0, 0.25, 1.5)
H, W = 48, 64  # multiples of 16: every layer's nearest-resized mask is exact


@pytest.fixture(scope="module")
def net() -> VGGFeatures:
    vgg, _ = build_backbone("vgg16", layers=STYLE_LAYERS + CONTENT_LAYERS)
    return vgg


def load(path: Path, w: int, h: int) -> torch.Tensor:
    img = Image.open(path).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    return to_tensor(img, CPU)


@pytest.fixture(scope="module")
def content(rainier: Path) -> torch.Tensor:
    return load(rainier, W, H)


@pytest.fixture(scope="module")
def oak(autumn_oak: Path) -> torch.Tensor:
    return load(autumn_oak, 64, 45)


@pytest.fixture(scope="module")
def starry(shared_images: Path) -> torch.Tensor:
    return load(shared_images / "styles" / "starry_night.jpg", 60, 48)


@pytest.fixture(scope="module")
def x(content: torch.Tensor) -> torch.Tensor:
    """A composite image away from the content: the content plus fixed noise."""
    g = torch.Generator().manual_seed(5)
    return content + 0.5 * torch.randn(content.shape, generator=g)


def make(
    net: VGGFeatures,
    content: torch.Tensor | None,
    styles: Sequence[StyleSource],
    *,
    weights: LossWeights = CAFFE_WEIGHTS,
    style_loss: str = "gram",
) -> Objective:
    return Objective(
        net,
        Terms(
            content=content,
            styles=styles,
            content_layers=CONTENT_LAYERS,
            style_layers=STYLE_LAYERS,
            style_layer_weights=LAYER_WEIGHTS,
            loss_weights=weights,
            style_loss=style_loss,
            prepare=lambda t: t,
            channels_last=False,
        ),
    )


# --- numpy references --------------------------------------------------------------------


def feats(net: VGGFeatures, img: torch.Tensor, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """Layer activations as float64 (c, h, w) arrays."""
    with torch.no_grad():
        out = net(img, layers)
    return {n: out[n][0].double().numpy() for n in layers}


def np_gram(f: np.ndarray) -> np.ndarray:
    c, h, w = f.shape
    m = f.reshape(c, h * w)
    return m @ m.T / (c * h * w)


def np_masked_gram(f: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(F∘m)(F∘m)ᵀ / (c·Σm)."""
    c = f.shape[0]
    m = (f * mask).reshape(c, -1)
    return m @ m.T / (c * mask.sum())


def np_mean_cov(f: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population covariance of the feature vectors of (the masked) pixels."""
    c = f.shape[0]
    px = f.reshape(c, -1) if mask is None else f[:, mask.astype(bool)]
    return px.mean(axis=1), np.cov(px, bias=True)


def np_tv(img: np.ndarray) -> float:
    dy = np.abs(np.diff(img, axis=2)).mean()
    dx = np.abs(np.diff(img, axis=3)).mean()
    return 0.5 * (dy + dx)


def block_mask() -> np.ndarray:
    """An L-shaped region of whole 16x16 blocks, 3 of the 12 blocks: a quarter."""
    blocks = np.zeros((H // 16, W // 16), dtype=bool)
    blocks[0, 0:2] = True
    blocks[1, 0] = True
    return np.kron(blocks, np.ones((16, 16), dtype=bool))


def as_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask.astype(np.float32))[None, None]


# --- the parts ---------------------------------------------------------------------------


def test_total_is_the_sum_of_weighted_parts(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor, x: torch.Tensor
) -> None:
    parts = make(net, content, [StyleSource([oak], [1.0])])(x)
    assert isinstance(parts, LossParts)
    c, s, t = (float(v) for v in (parts.content, parts.style, parts.tv))
    assert min(c, s, t) > 0.1  # all three count
    assert all(v.dtype == torch.float32 and v.dim() == 0 for v in parts)
    assert float(parts.total) == pytest.approx(c + s + t, rel=1e-6)
    # The TV part is the weighted book TV of x itself.
    assert t == pytest.approx(CAFFE_WEIGHTS.tv * np_tv(x.double().numpy()), rel=1e-5)


def test_content_term_matches_numpy_and_is_zero_at_the_content(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor, x: torch.Tensor
) -> None:
    obj = make(net, content, [StyleSource([oak], [1.0])])
    assert obj(content).content.item() == 0.0
    fx = feats(net, x, CONTENT_LAYERS)["conv4_3"]
    fc = feats(net, content, CONTENT_LAYERS)["conv4_3"]
    want = CAFFE_WEIGHTS.content * np.mean((fx - fc) ** 2)
    assert obj(x).content.item() == pytest.approx(want, rel=1e-4)


def test_no_content_or_zero_content_weight_drops_the_content_layers(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor, x: torch.Tensor
) -> None:
    w0 = LossWeights(content=0.0, style=CAFFE_WEIGHTS.style, tv=CAFFE_WEIGHTS.tv)
    for obj in (
        make(net, None, [StyleSource([oak], [1.0])]),
        make(net, content, [StyleSource([oak], [1.0])], weights=w0),
    ):
        assert obj.content_layers == () and obj.layers == STYLE_LAYERS
        assert obj(x).content.item() == 0.0


def test_style_term_matches_numpy_gram_mse(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor, x: torch.Tensor
) -> None:
    obj = make(net, content, [StyleSource([oak], [1.0])])
    fx = feats(net, x, STYLE_LAYERS)
    fs = feats(net, oak, STYLE_LAYERS)
    per_layer = [np.mean((np_gram(fx[n]) - np_gram(fs[n])) ** 2) for n in STYLE_LAYERS]
    want = CAFFE_WEIGHTS.style * float(np.dot(LAYER_WEIGHTS, per_layer))
    assert obj(x).style.item() == pytest.approx(want, rel=1e-4)
    # And at the style image itself (same size) the style term vanishes.
    at_style = make(net, None, [StyleSource([oak], [1.0])])(oak).style.item()
    assert at_style < 1e-6 * want


# --- blending --------------------------------------------------------------------------


def test_blended_targets_give_the_gradient_of_the_weighted_losses(
    net: VGGFeatures, oak: torch.Tensor, starry: torch.Tensor, x: torch.Tensor
) -> None:
    singles = [make(net, None, [StyleSource([s], [1.0])]) for s in (oak, starry)]
    single_losses, single_grads = [], []
    for obj in singles:
        xg = x.clone().requires_grad_()
        loss = obj(xg).style
        single_losses.append(loss.item())
        single_grads.append(torch.autograd.grad(loss, xg)[0])
    targets = [feats(net, s, STYLE_LAYERS) for s in (oak, starry)]

    for blend in [(0.5, 0.5), (1.0, 3.0)]:  # the second normalizes to (0.25, 0.75)
        b = np.array(blend) / sum(blend)
        blended = make(net, None, [StyleSource([oak, starry], list(blend))])
        xg = x.clone().requires_grad_()
        lb = blended(xg).style
        (grad_blend,) = torch.autograd.grad(lb, xg)
        grad_avg = b[0] * single_grads[0] + b[1] * single_grads[1]
        scale = grad_avg.abs().max().item()
        assert scale > 0
        assert (grad_blend - grad_avg).abs().max().item() < 1e-5 * scale, blend

        # The losses differ by Σ_l w_l·(Σᵢ bᵢ mean(Tᵢ²) − mean((Σᵢ bᵢTᵢ)²)), a constant.
        const = 0.0
        for n, wl in zip(STYLE_LAYERS, LAYER_WEIGHTS, strict=True):
            t = [np_gram(f[n]) for f in targets]
            mix = b[0] * t[0] + b[1] * t[1]
            const += wl * (b[0] * np.mean(t[0] ** 2) + b[1] * np.mean(t[1] ** 2) - np.mean(mix**2))
        const *= CAFFE_WEIGHTS.style
        assert const > 0
        ls = b[0] * single_losses[0] + b[1] * single_losses[1]
        assert ls - lb.item() == pytest.approx(const, rel=1e-4), blend


# --- regions ---------------------------------------------------------------------------


def test_masked_style_loss_matches_numpy(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor
) -> None:
    rng = np.random.default_rng(3)
    f = feats(net, content, ["conv2_1"])["conv2_1"]  # (128, 24, 32)
    mask = rng.random(f.shape[1:]) < 0.3  # scattered pixels
    target = np_gram(feats(net, oak, ["conv2_1"])["conv2_1"])
    loss = MaskedStyleLoss(torch.from_numpy(target)[None], as_tensor(mask))
    ft = torch.from_numpy(f).float()[None].requires_grad_()
    got = loss(ft)
    want = np.mean((np_masked_gram(f, mask) - target) ** 2)
    assert got.item() == pytest.approx(want, rel=1e-4)
    # Pixels outside the region do not affect the loss.
    (grad,) = torch.autograd.grad(got, ft)
    assert grad[0][:, ~mask].abs().max().item() == 0.0
    assert grad[0][:, mask].abs().max().item() > 0.0


def test_masked_mean_cov_loss_matches_numpy(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor
) -> None:
    rng = np.random.default_rng(4)
    f = feats(net, content, ["conv3_1"])["conv3_1"]  # (256, 12, 16)
    mask = rng.random(f.shape[1:]) < 0.4
    tm, tc = np_mean_cov(feats(net, oak, ["conv3_1"])["conv3_1"])
    loss = MaskedMeanCovLoss(
        torch.from_numpy(tm)[None], torch.from_numpy(tc)[None], as_tensor(mask)
    )
    ft = torch.from_numpy(f).float()[None].requires_grad_()
    got = loss(ft)
    mean, cov = np_mean_cov(f, mask)  # over exactly the masked pixels
    want = np.mean((mean - tm) ** 2) + np.mean((cov - tc) ** 2)
    assert got.item() == pytest.approx(want, rel=1e-4)
    (grad,) = torch.autograd.grad(got, ft)
    assert grad[0][:, ~mask].abs().max().item() == 0.0
    assert grad[0][:, mask].abs().max().item() > 0.0


def test_region_source_weight_is_its_area_share(net: VGGFeatures, oak: torch.Tensor) -> None:
    mask = block_mask()
    src = StyleSource([oak], [1.0], region=as_tensor(mask))
    assert src.share == pytest.approx(3 / 12)
    assert src.share == pytest.approx(mask.sum() / mask.size)
    assert StyleSource([oak], [1.0]).share == 1.0
    obj = make(net, None, [src])
    assert [(n, w) for n, w, _ in obj.style_losses] == [
        (n, pytest.approx(wl * 0.25)) for n, wl in zip(STYLE_LAYERS, LAYER_WEIGHTS, strict=True)
    ]


@pytest.mark.parametrize("style_loss", ["gram", "meancov"])
def test_region_objective_matches_numpy(
    net: VGGFeatures,
    content: torch.Tensor,
    oak: torch.Tensor,
    starry: torch.Tensor,
    x: torch.Tensor,
    style_loss: str,
) -> None:
    """Two regions: oak inside the L, starry night on the rest; each its own targets."""
    mask = block_mask()
    regions = [(oak, mask), (starry, ~mask)]
    sources = [StyleSource([s], [1.0], region=as_tensor(m)) for s, m in regions]
    got = make(net, content, sources, style_loss=style_loss)(x).style.item()

    fx = feats(net, x, STYLE_LAYERS)
    want = 0.0
    for style, m in regions:
        share = m.mean()
        fs = feats(net, style, STYLE_LAYERS)
        for n, wl in zip(STYLE_LAYERS, LAYER_WEIGHTS, strict=True):
            step = H // fx[n].shape[1]
            ml = m[::step, ::step]  # the region at the layer's size (whole blocks)
            assert ml.shape == fx[n].shape[1:]
            if style_loss == "gram":
                loss = np.mean((np_masked_gram(fx[n], ml) - np_gram(fs[n])) ** 2)
            else:
                mean, cov = np_mean_cov(fx[n], ml)
                tm, tc = np_mean_cov(fs[n])
                loss = np.mean((mean - tm) ** 2) + np.mean((cov - tc) ** 2)
            want += wl * share * loss
    want *= CAFFE_WEIGHTS.style
    assert got == pytest.approx(want, rel=1e-4)


# --- relative terms (the auto balance) ---------------------------------------------------


def test_relative_terms_are_errors_over_their_targets_energy(
    net: VGGFeatures, content: torch.Tensor, oak: torch.Tensor, x: torch.Tensor
) -> None:
    """style = Σ_l w_l ‖G_l − T_l‖² / ‖T_l‖², content = ‖F − F_c‖² / ‖F_c‖² (as means)."""
    weights = LossWeights(content=2.0, style=3.0, tv=0.0)
    obj = Objective(
        net,
        Terms(
            content=content,
            styles=[StyleSource([oak], [1.0])],
            content_layers=CONTENT_LAYERS,
            style_layers=STYLE_LAYERS,
            style_layer_weights=LAYER_WEIGHTS,
            loss_weights=weights,
            style_loss="gram",
            prepare=lambda t: t,
            channels_last=False,
            relative_losses=True,
        ),
    )
    fx, fs = feats(net, x, STYLE_LAYERS), feats(net, oak, STYLE_LAYERS)
    per_layer = [
        np.mean((np_gram(fx[n]) - np_gram(fs[n])) ** 2) / np.mean(np_gram(fs[n]) ** 2)
        for n in STYLE_LAYERS
    ]
    parts = obj(x)
    assert parts.style.item() == pytest.approx(3.0 * np.dot(LAYER_WEIGHTS, per_layer), rel=1e-4)
    cx, cc = feats(net, x, CONTENT_LAYERS), feats(net, content, CONTENT_LAYERS)
    n = CONTENT_LAYERS[0]
    want = np.mean((cx[n] - cc[n]) ** 2) / np.mean(cc[n] ** 2)
    assert parts.content.item() == pytest.approx(2.0 * want, rel=1e-4)
    # The same weights give the same balance whatever the feature scale: scaling the
    # targets' network input changes no relative term.
    assert obj(content).content.item() == pytest.approx(0.0, abs=1e-9)
