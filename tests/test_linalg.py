"""Matrix views without copies, and symmetric matrix powers against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brushwork.linalg import matrix_view, sym_pow


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(4242)


def shares_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_matrix_view_of_contiguous_is_channels_by_pixels(rng: np.random.Generator) -> None:
    arr = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    x = torch.from_numpy(arr.copy())
    m, pixels_by_channels = matrix_view(x)
    assert pixels_by_channels is False
    assert m.shape == (2, 5, 12)
    assert shares_storage(m, x) and m.data_ptr() == x.data_ptr()
    np.testing.assert_array_equal(m.numpy(), arr.reshape(2, 5, 12))
    m[1, 3, 7] = 99.0  # a view: writes reach x (pixel 7 = row 2, column 1)
    assert x[1, 3, 2, 1].item() == 99.0


def test_matrix_view_of_channels_last_is_pixels_by_channels(rng: np.random.Generator) -> None:
    arr = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    x = torch.from_numpy(arr.copy()).contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous()
    m, pixels_by_channels = matrix_view(x)
    assert pixels_by_channels is True
    assert m.shape == (2, 12, 5)
    assert shares_storage(m, x) and m.data_ptr() == x.data_ptr()
    assert m.is_contiguous()  # rows are pixels, laid out as they are in memory
    np.testing.assert_array_equal(m.numpy(), arr.transpose(0, 2, 3, 1).reshape(2, 12, 5))
    m[0, 5, 2] = -7.0  # pixel 5 = row 1, column 2
    assert x[0, 2, 1, 2].item() == -7.0


def test_matrix_view_single_channel_and_single_pixel() -> None:
    x = torch.arange(12.0).view(1, 1, 3, 4).contiguous(memory_format=torch.channels_last)
    m, flag = matrix_view(x)  # one channel: both layouts coincide
    assert flag is False and m.shape == (1, 1, 12) and shares_storage(m, x)
    y = torch.arange(6.0).view(2, 3, 1, 1).contiguous(memory_format=torch.channels_last)
    m, flag = matrix_view(y)
    assert flag is False and m.shape == (2, 3, 1) and shares_storage(m, y)


# --- sym_pow -----------------------------------------------------------------------------


def np_sym_pow(a: np.ndarray, p: float) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * w**p) @ v.T


def random_spd(rng: np.random.Generator, n: int) -> np.ndarray:
    b = rng.normal(size=(n, 2 * n))
    return b @ b.T / (2 * n) + 0.1 * np.eye(n)


@pytest.mark.parametrize("p", [0.5, -0.5, 2.0])
def test_sym_pow_matches_numpy_on_spd(rng: np.random.Generator, p: float) -> None:
    for n in (3, 8, 64):
        a = random_spd(rng, n)
        got = sym_pow(torch.from_numpy(a), p).numpy()
        ref = np_sym_pow(a, p)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_sym_pow_identities(rng: np.random.Generator) -> None:
    a = random_spd(rng, 16)
    t = torch.from_numpy(a)
    root, inv_root = sym_pow(t, 0.5).numpy(), sym_pow(t, -0.5).numpy()
    np.testing.assert_allclose(root @ root, a, atol=1e-12)
    np.testing.assert_allclose(inv_root @ a @ inv_root, np.eye(16), atol=1e-11)
    np.testing.assert_allclose(sym_pow(t, 2.0).numpy(), a @ a, atol=1e-12)
    np.testing.assert_allclose(sym_pow(t, 1.0).numpy(), a, atol=1e-13)
    np.testing.assert_allclose(sym_pow(t, 0.0).numpy(), np.eye(16), atol=1e-13)


def test_sym_pow_batched_and_symmetrized(rng: np.random.Generator) -> None:
    mats = np.stack([random_spd(rng, 5) for _ in range(3)])
    got = sym_pow(torch.from_numpy(mats), 0.5).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], np_sym_pow(mats[i], 0.5), rtol=1e-10, atol=1e-13)
    # Only the symmetric part counts: an antisymmetric perturbation changes nothing.
    skew = rng.normal(size=(5, 5))
    skew = skew - skew.T
    a = mats[0]
    got_skewed = sym_pow(torch.from_numpy(a + 0.3 * skew), 0.5).numpy()
    np.testing.assert_allclose(got_skewed, np_sym_pow(a, 0.5), rtol=1e-10, atol=1e-13)


def test_sym_pow_float32(rng: np.random.Generator) -> None:
    a = random_spd(rng, 32)
    got = sym_pow(torch.from_numpy(a).float(), 0.5)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), np_sym_pow(a, 0.5), rtol=0, atol=2e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sym_pow_on_singular_psd_stays_finite(rng: np.random.Generator, dtype: torch.dtype) -> None:
    n, rank = 12, 5
    b = rng.normal(size=(n, rank))
    a = b @ b.T  # PSD with 7 zero eigenvalues, which roundoff makes ±1e-16-ish
    w = np.linalg.eigvalsh(a)
    assert np.sum(np.abs(w) < 1e-12) == n - rank
    t = torch.from_numpy(a).to(dtype)
    root = sym_pow(t, 0.5)
    assert bool(torch.isfinite(root).all())
    # The root of the clamped spectrum: the zero eigenvalues stay zero.
    wv, v = np.linalg.eigh(a)
    ref = (v * np.sqrt(np.clip(wv, 0, None))) @ v.T
    tol = 1e-7 if dtype == torch.float64 else 2e-3
    np.testing.assert_allclose(root.double().numpy(), ref, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(
        (root @ root).double().numpy(),
        a,
        atol=(1e-12 if dtype == torch.float64 else 1e-4) * np.abs(a).max(),
    )
    inv_root = sym_pow(t, -0.5)
    assert bool(torch.isfinite(inv_root).all())
    # Bounded by the documented floor: no eigenvalue below the dtype's smallest normal.
    assert inv_root.abs().max().item() <= n * torch.finfo(dtype).tiny ** -0.5
    # Clearly negative eigenvalues (not PSD at all) are floored too and stay finite.
    nudged = t - 1e-3 * torch.eye(n, dtype=dtype) * float(np.abs(a).max())
    assert bool(torch.isfinite(sym_pow(nudged, -0.5)).all())
