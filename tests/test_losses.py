"""Each loss against a direct numpy implementation, and a float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brushwork.losses import (
    ContentLoss,
    StyleLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    style_loss,
    tv_loss,
)


def np_gram(x: np.ndarray) -> np.ndarray:
    b, c, h, w = x.shape
    out = np.empty((b, c, c))
    for i in range(b):
        m = x[i].reshape(c, h * w)
        out[i] = m @ m.T / (c * h * w)
    return out


def np_tv(x: np.ndarray) -> float:
    dy = np.abs(x[:, :, 1:, :] - x[:, :, :-1, :]).mean()
    dx = np.abs(x[:, :, :, 1:] - x[:, :, :, :-1]).mean()
    return float(0.5 * (dy + dx))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_matches_numpy(rng: np.random.Generator, channels_last: bool) -> None:
    x = rng.normal(size=(2, 5, 7, 3))
    t = torch.from_numpy(x).float()
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(gram_matrix(t).numpy(), np_gram(x), rtol=1e-5, atol=1e-6)


def test_gram_normalization_by_c_h_w() -> None:
    # All-ones features: every Gram entry is h*w / (c*h*w) = 1/c.
    g = gram_matrix(torch.ones(1, 4, 3, 5))
    np.testing.assert_allclose(g.numpy(), np.full((1, 4, 4), 0.25), rtol=1e-6)


def test_content_loss_matches_numpy(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=(1, 6, 4, 5)), rng.normal(size=(1, 6, 4, 5))
    got = content_loss(torch.from_numpy(a), torch.from_numpy(b)).item()
    assert got == pytest.approx(float(np.mean((a - b) ** 2)), rel=1e-12)


def test_style_loss_matches_numpy(rng: np.random.Generator) -> None:
    a, s = rng.normal(size=(1, 6, 4, 5)), rng.normal(size=(1, 6, 3, 7))
    target = torch.from_numpy(np_gram(s))
    got = style_loss(torch.from_numpy(a), target).item()
    assert got == pytest.approx(float(np.mean((np_gram(a) - np_gram(s)) ** 2)), rel=1e-10)


def test_tv_loss_matches_numpy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1, 3, 9, 11))
    assert tv_loss(torch.from_numpy(x)).item() == pytest.approx(np_tv(x), rel=1e-12)


def test_tv_of_constant_is_zero_and_of_step_is_known() -> None:
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    assert tv_loss(x).item() == 0.0
    x[..., 2:] = 1.0  # one vertical edge: |dx| is 1 in one of 3 columns, dy is 0
    assert tv_loss(x).item() == pytest.approx(0.5 * (0 + 1 / 3))


@pytest.mark.parametrize("channels_last", [False, True])
def test_gram_gradcheck_float64(channels_last: bool) -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (x,))


def test_gram_backward_keeps_channels_last_layout() -> None:
    x = torch.randn(1, 8, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    gram_matrix(x).sum().backward()
    assert x.grad is not None and x.grad.is_contiguous(memory_format=torch.channels_last)


def test_style_and_content_gradcheck_float64() -> None:
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    g = torch.randn(1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda y: content_loss(y, t), (x,))
    assert torch.autograd.gradcheck(lambda y: style_loss(y, g), (x,))


def test_tv_gradcheck_float64() -> None:
    # Offsets keep neighbouring pixels apart so |.| is differentiable at every point.
    x = (torch.arange(20, dtype=torch.float64).view(1, 1, 4, 5) * 0.37 % 1.3).requires_grad_(True)
    assert torch.autograd.gradcheck(tv_loss, (x,))


def test_modules_hold_targets_in_buffers(rng: np.random.Generator) -> None:
    f = torch.from_numpy(rng.normal(size=(1, 4, 3, 3))).float()
    c = ContentLoss(f)
    s = StyleLoss.from_features(f)
    assert "target" in dict(c.named_buffers()) and "target" in dict(s.named_buffers())
    assert c(f).item() == 0.0 and s(f).item() == pytest.approx(0.0, abs=1e-12)
    assert TVLoss()(f).item() == pytest.approx(np_tv(f.double().numpy()), rel=1e-6)


def test_bf16_gram_close_to_fp32(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.normal(size=(1, 64, 32, 32))).float().relu()
    g32 = gram_matrix(x)
    g16 = gram_matrix(x.bfloat16().contiguous(memory_format=torch.channels_last))
    assert g16.dtype == torch.float32
    rel = (g16 - g32).norm() / g32.norm()
    assert rel.item() < 1e-2
