"""Mean/covariance style losses against numpy (np.cov) and scipy (sqrtm), the
closed form of W2 for commuting covariances, and float64 gradchecks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from brushwork.losses import StyleLoss
from brushwork.meancov import (
    W2_REL_EPS,
    MeanCovLoss,
    feature_mean_cov,
    mean_cov_loss,
    wasserstein2_loss,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(31337)


def np_mean_cov(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b, c, h, w = x.shape
    m = x.reshape(b, c, h * w)
    return m.mean(axis=2), np.stack([np.cov(m[i], bias=True) for i in range(b)])


def np_w2(x: np.ndarray, t: np.ndarray, rel_eps: float) -> float:
    """W2²/c between Gaussian fits with ε·I added to both covariances, via
    scipy's Schur-method sqrtm; averaged over the batch."""
    mu, cov = np_mean_cov(x)
    mu_t, cov_t = np_mean_cov(t)
    c = x.shape[1]
    out = []
    for i in range(x.shape[0]):
        eps = rel_eps * np.trace(cov_t[i]) / c
        s = cov[i] + eps * np.eye(c)
        s_t = cov_t[i] + eps * np.eye(c)
        r = np.real(scipy.linalg.sqrtm(s_t))
        cross = np.real(scipy.linalg.sqrtm(r @ s @ r))
        d = np.sum((mu[i] - mu_t[i]) ** 2) + np.trace(s) + np.trace(s_t) - 2 * np.trace(cross)
        out.append(d / c)
    return float(np.mean(out))


def relu_features(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """ReLU of channel-correlated noise: non-negative, many exact zeros."""
    c = shape[1]
    mix = rng.normal(size=(c, c)) / np.sqrt(c) + np.eye(c)
    x = np.einsum("kl,blhw->bkhw", mix, rng.normal(size=shape)) + 0.3
    return np.maximum(x, 0.0)


# --- statistics ----------------------------------------------------------------


@pytest.mark.parametrize("channels_last", [False, True])
def test_feature_mean_cov_matches_numpy(rng: np.random.Generator, channels_last: bool) -> None:
    x = rng.normal(loc=2.0, size=(2, 5, 7, 3))
    t = torch.from_numpy(x).float()
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    mean, cov = feature_mean_cov(t)
    assert mean.dtype == cov.dtype == torch.float32
    assert mean.shape == (2, 5) and cov.shape == (2, 5, 5)
    want_mean, want_cov = np_mean_cov(x)
    np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cov.numpy(), want_cov, rtol=1e-5, atol=1e-5)


def test_feature_mean_cov_bf16_channels_last_in_float32(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.normal(loc=3.0, size=(1, 8, 6, 6))).to(torch.bfloat16)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    mean, cov = feature_mean_cov(x)
    assert mean.dtype == cov.dtype == torch.float32
    # Against numpy on the same (bf16-rounded) values: no bf16 arithmetic inside.
    want_mean, want_cov = np_mean_cov(x.detach().double().numpy())
    np.testing.assert_allclose(mean.detach().numpy(), want_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cov.detach().numpy(), want_cov, rtol=1e-5, atol=1e-5)
    (mean.sum() + cov.sum()).backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_feature_mean_cov_centres_before_multiplying() -> None:
    # Mean 1e4, spread 1: E[xxᵀ] − μμᵀ would lose every digit in float32.
    x = 1e4 + torch.tensor([[-1.0, 1.0, -1.0, 1.0], [1.0, 1.0, -1.0, -1.0]]).reshape(1, 2, 2, 2)
    _, cov = feature_mean_cov(x)
    torch.testing.assert_close(cov, torch.eye(2).unsqueeze(0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels_last", [False, True])
def test_feature_mean_cov_gradcheck(rng: np.random.Generator, channels_last: bool) -> None:
    x = torch.from_numpy(rng.normal(size=(2, 3, 4, 3)))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    assert torch.autograd.gradcheck(feature_mean_cov, (x,))
    # Each output alone, too (the backward gets a zero for the other one).
    assert torch.autograd.gradcheck(lambda f: feature_mean_cov(f)[0], (x,))
    assert torch.autograd.gradcheck(lambda f: feature_mean_cov(f)[1], (x,))


# --- the squared-error loss ----------------------------------------------------


def test_mean_cov_loss_matches_numpy(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2, 6, 5, 4))
    t = rng.normal(loc=0.5, scale=2.0, size=(2, 6, 3, 7))
    mu, cov = np_mean_cov(x)
    mu_t, cov_t = np_mean_cov(t)
    want = np.mean((mu - mu_t) ** 2) + np.mean((cov - cov_t) ** 2)
    tm, tc = (torch.from_numpy(a) for a in (mu_t, cov_t))
    got = mean_cov_loss(torch.from_numpy(x), tm, tc).item()
    assert got == pytest.approx(want, rel=1e-12)


def test_mean_cov_loss_gradcheck(rng: np.random.Generator) -> None:
    x = torch.from_numpy(rng.normal(size=(2, 4, 3, 5))).requires_grad_()
    tm, tc = feature_mean_cov(torch.from_numpy(rng.normal(size=(2, 4, 3, 5))))
    assert torch.autograd.gradcheck(lambda f: mean_cov_loss(f, tm, tc), (x,))


# --- the W2 loss ---------------------------------------------------------------


@pytest.mark.parametrize("rel_eps", [0.0, W2_REL_EPS, 0.1])
def test_w2_matches_scipy(rng: np.random.Generator, rel_eps: float) -> None:
    x = relu_features(rng, (2, 6, 5, 5))
    t = relu_features(rng, (2, 6, 4, 7)) * 1.5
    tm, tc = feature_mean_cov(torch.from_numpy(t))
    got = wasserstein2_loss(torch.from_numpy(x), tm, tc, rel_eps=rel_eps).item()
    assert got == pytest.approx(np_w2(x, t, rel_eps), rel=1e-9)


def test_w2_closed_form_for_diagonal_covariances() -> None:
    # Independent channels: W2² = ‖μ − μ_t‖² + Σ_k (σ_k − σ_t,k)².
    mean = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    sd = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    mean_t = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    sd_t = torch.tensor([[3.0, 1.0, 0.5]], dtype=torch.float64)
    # Features with exactly these moments: μ + σ·(orthogonal ±1 patterns), so
    # the channels are uncorrelated (rows of a 4×4 Hadamard matrix).
    signs = torch.tensor(
        [[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]],
        dtype=torch.float64,
    )
    x = (mean[..., None] + sd[..., None] * signs).reshape(1, 3, 2, 2)
    torch.testing.assert_close(feature_mean_cov(x)[1], torch.diag_embed(sd**2))
    got = wasserstein2_loss(x, mean_t, torch.diag_embed(sd_t**2), rel_eps=0.0).item()
    want = (((mean - mean_t) ** 2).sum() + ((sd - sd_t) ** 2).sum()).item() / 3
    assert got == pytest.approx(want, rel=1e-12)


def test_w2_zero_at_target_positive_elsewhere(rng: np.random.Generator) -> None:
    t = torch.from_numpy(relu_features(rng, (1, 16, 8, 8))).float()
    x = torch.from_numpy(relu_features(rng, (1, 16, 8, 8))).float()
    tm, tc = feature_mean_cov(t)
    at_target = wasserstein2_loss(t, tm, tc).item()
    elsewhere = wasserstein2_loss(x, tm, tc).item()
    assert abs(at_target) < 1e-9 * elsewhere
    assert elsewhere > 1e-3


def test_w2_gradcheck(rng: np.random.Generator) -> None:
    x = torch.from_numpy(relu_features(rng, (2, 4, 3, 4))).requires_grad_()
    tm, tc = feature_mean_cov(torch.from_numpy(relu_features(rng, (2, 4, 3, 4))))
    assert torch.autograd.gradcheck(lambda f: wasserstein2_loss(f, tm, tc), (x,))


def test_w2_gradcheck_degenerate_target(rng: np.random.Generator) -> None:
    # Repeated channels (repeated eigenvalues), a dead channel (zero variance)
    # and fewer pixels than channels (singular): where eigh's vector gradient
    # divides by 0 and √λ has an infinite slope without the ε regularization.
    t = relu_features(rng, (1, 6, 2, 2))
    t[:, 1] = t[:, 0]
    t[:, 3] = 0.0
    tm, tc = feature_mean_cov(torch.from_numpy(t))
    x = torch.from_numpy(relu_features(rng, (1, 6, 2, 2)))
    x[:, 2] = x[:, 4]  # the current features are singular too
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda f: wasserstein2_loss(f, tm, tc), (x,))
    loss = wasserstein2_loss(x, tm, tc)
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_w2_float32_gradient_matches_float64(rng: np.random.Generator) -> None:
    # More channels than pixels (as conv5_1 on a small image): singular Σ, and a
    # spread of scales. The c×c algebra must not run in float32 for this to hold.
    x = relu_features(rng, (1, 96, 8, 8)) * rng.uniform(0.1, 100, size=(1, 96, 1, 1))
    t = relu_features(rng, (1, 96, 8, 8)) * rng.uniform(0.1, 100, size=(1, 96, 1, 1))
    grads = []
    for dtype in (torch.float32, torch.float64):
        tm, tc = feature_mean_cov(torch.from_numpy(t).to(dtype))
        f = torch.from_numpy(x).to(dtype).requires_grad_()
        wasserstein2_loss(f, tm, tc).backward()
        assert f.grad is not None
        grads.append(f.grad.double())
    err = ((grads[0] - grads[1]).norm() / grads[1].norm()).item()
    assert err < 1e-4, err


# --- the module ----------------------------------------------------------------


@pytest.mark.parametrize("metric", ["mse", "w2"])
def test_module_matches_functions(rng: np.random.Generator, metric: str) -> None:
    t = torch.from_numpy(relu_features(rng, (1, 8, 6, 6))).float()
    x = torch.from_numpy(relu_features(rng, (1, 8, 6, 6))).float()
    loss = MeanCovLoss.from_features(t, metric)  # type: ignore[arg-type]
    tm, tc = feature_mean_cov(t)
    fn = mean_cov_loss if metric == "mse" else wasserstein2_loss
    torch.testing.assert_close(loss(x), fn(x, tm, tc))
    assert loss(x).dtype == torch.float32 and loss(x).item() > 0
    assert abs(loss(t).item()) < 1e-6 * loss(x).item()
    names = set(dict(loss.named_buffers()))
    assert {"target_mean", "target_cov"} <= names
    assert loss.target_mean.dtype == loss.target_cov.dtype == torch.float32
    assert not any(p.requires_grad for p in loss.buffers())


def test_module_targets_are_detached_copies(rng: np.random.Generator) -> None:
    t = torch.from_numpy(relu_features(rng, (1, 4, 5, 5))).float().requires_grad_()
    loss = MeanCovLoss.from_features(t)
    assert not loss.target_mean.requires_grad and not loss.target_cov.requires_grad
    with torch.no_grad():
        t.mul_(2.0)  # changing the source afterwards does not move the target
    torch.testing.assert_close(loss.target_mean, feature_mean_cov(t.detach() / 2)[0])


def test_module_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="metric"):
        MeanCovLoss(torch.zeros(1, 2), torch.zeros(1, 2, 2), "kl")  # type: ignore[arg-type]


def test_module_mirrors_style_loss_interface(rng: np.random.Generator) -> None:
    t = torch.from_numpy(relu_features(rng, (1, 8, 6, 6))).float()
    x = torch.from_numpy(relu_features(rng, (1, 8, 6, 6))).float()
    x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last).requires_grad_()
    for loss in (StyleLoss.from_features(t), MeanCovLoss.from_features(t, "w2")):
        value = loss(x)
        assert value.dim() == 0 and value.dtype == torch.float32
        value.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        x.grad = None
