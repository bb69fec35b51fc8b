"""Colour utilities for colour preservation (Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer").

Every function takes RGB images in 0..1 as tensors of shape (b, 3, h, w)
(luminance as (b, 1, h, w)), float32 or float64, and is pure. Two modes of
colour preservation are built from them:

* luminance-only transfer: stylize ``luminance_as_rgb`` of the content with
  ``match_luminance``-ed style luminance, then ``combine_luminance_chroma`` the
  result with the content's chroma;
* colour histogram matching: ``transfer_mean_cov`` recolours the style image so
  its pixel mean and covariance are the content's, before stylizing.

:func:`color_mode` turns a ``preserve_color`` setting into one object with the
three hooks the engine calls: on the style image, on what the network sees,
and on the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import torch
from torch import Tensor

from brushwork.linalg import sym_pow
from brushwork.pixels import normalize, rgb01

# ITU-R BT.601 luma weights. The full-range (JPEG/JFIF) conversion derives every
# other coefficient from these two, so the published 0.168736, 0.331264, 0.418688,
# 0.081312 (forward) and 1.402, 0.344136, 0.714136, 1.772 (inverse) are their
# roundings; deriving instead of rounding is what makes the two directions exact
# inverses of each other.
KR = 0.299
KB = 0.114
KG = 1.0 - KR - KB  # 0.587
_CB_SCALE = 2.0 * (1.0 - KB)  # 1.772: Cb = (B - Y) / 1.772 + 0.5
_CR_SCALE = 2.0 * (1.0 - KR)  # 1.402: Cr = (R - Y) / 1.402 + 0.5
_ABS_COV_EPS = 1e-8  # a colour std of 1e-4: below 8-bit quantization noise


def _check_channels(x: Tensor, name: str, channels: tuple[int, ...]) -> None:
    if x.dim() != 4 or x.shape[1] not in channels:
        want = " or ".join(f"(b, {c}, h, w)" for c in channels)
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def luminance(x: Tensor) -> Tensor:
    """BT.601 luma of RGB, the Y of :func:`rgb_to_ycbcr`.

    Args:
        x: RGB (b, 3, h, w).

    Returns:
        (b, 1, h, w), Y = 0.299·R + 0.587·G + 0.114·B, in x's dtype.
    """
    _check_channels(x, "x", (3,))
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return KR * r + KG * g + KB * b


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """Full-range BT.601 (JPEG) RGB -> YCbCr.

    Args:
        x: RGB (b, 3, h, w) in 0..1.

    Returns:
        (b, 3, h, w) with channels (Y, Cb, Cr): Y in 0..1 and
        Cb = (B − Y)/1.772 + 0.5, Cr = (R − Y)/1.402 + 0.5, both in 0..1
        and 0.5 for greys.
    """
    y = luminance(x)
    cb = (x[:, 2:3] - y) / _CB_SCALE + 0.5
    cr = (x[:, 0:1] - y) / _CR_SCALE + 0.5
    return torch.cat([y, cb, cr], dim=1)


def ycbcr_to_rgb(y: Tensor) -> Tensor:
    """Full-range BT.601 (JPEG) YCbCr -> RGB, the exact inverse of :func:`rgb_to_ycbcr`.

    Args:
        y: (b, 3, h, w) with channels (Y, Cb, Cr), chroma centred at 0.5.

    Returns:
        RGB (b, 3, h, w): R = Y + 1.402·(Cr − 0.5), B = Y + 1.772·(Cb − 0.5),
        G = (Y − 0.299·R − 0.114·B)/0.587. Not clipped: a YCbCr triple need not
        map into the RGB cube.
    """
    _check_channels(y, "y", (3,))
    luma, cb, cr = y[:, 0:1], y[:, 1:2], y[:, 2:3]
    r = luma + _CR_SCALE * (cr - 0.5)
    b = luma + _CB_SCALE * (cb - 0.5)
    # Solving the luma equation for G inverts the forward map exactly, where the
    # published −0.344136·Cb −0.714136·Cr is only good to the sixth digit.
    g = (luma - KR * r - KB * b) / KG
    return torch.cat([r, g, b], dim=1)


def luminance_as_rgb(x: Tensor) -> Tensor:
    """The luminance copied into three channels: the grey image the network sees
    in luminance-only transfer.

    Args:
        x: RGB (b, 3, h, w), or luminance (b, 1, h, w) (e.g. the output of
            :func:`match_luminance`), which is copied as is.

    Returns:
        (b, 3, h, w), every channel equal to Y (a copy, not an expanded view,
        so callers may write into it).
    """
    _check_channels(x, "x", (1, 3))
    y = luminance(x) if x.shape[1] == 3 else x
    return y.repeat(1, 3, 1, 1)


def match_luminance(style_y: Tensor, content_y: Tensor, eps: float = 1e-4) -> Tensor:
    """Luminance histogram matching of Gatys et al. 2017: an affine map of the
    style's luminance so its mean and standard deviation are the content's.

    y_s' = σ_c/σ_s · (y_s − μ_s) + μ_c, with μ and σ (population std) over each
    image's pixels.

    Args:
        style_y: (b, 1, h, w) style luminance.
        content_y: (b, 1, h', w') or (1, 1, h', w') content luminance; the sizes
            need not match the style's.
        eps: floor on σ_s, so a flat style luminance maps to μ_c (within
            ~σ_c/eps times the float roundoff of its mean) instead of NaN.
            1e-4 is a quarter of an 8-bit grey level's quantization noise.

    Returns:
        (b, 1, h, w), not clipped: clipping would undo the match, and the
        network takes values slightly outside 0..1 without trouble.
    """
    dims = (1, 2, 3)
    mu_s = style_y.mean(dim=dims, keepdim=True)
    mu_c = content_y.mean(dim=dims, keepdim=True)
    sd_s = style_y.std(dim=dims, correction=0, keepdim=True)
    sd_c = content_y.std(dim=dims, correction=0, keepdim=True)
    return sd_c / sd_s.clamp_min(eps) * (style_y - mu_s) + mu_c


def combine_luminance_chroma(y_out: Tensor, content_rgb: Tensor) -> Tensor:
    """The final step of luminance-only transfer: the stylized luminance with the
    content's chroma (Cb, Cr), back in RGB and clipped to 0..1.

    Args:
        y_out: the stylized result, luminance (b, 1, h, w) or the 3-channel image
            the network produced (b, 3, h, w), whose BT.601 luminance is taken
            (its channels drift apart during optimization; for an exactly grey
            image that luminance is the grey value itself).
        content_rgb: content RGB (b, 3, h, w) or (1, 3, h, w), same h and w.

    Returns:
        RGB (b, 3, h, w) in 0..1.
    """
    _check_channels(y_out, "y_out", (1, 3))
    _check_channels(content_rgb, "content_rgb", (3,))
    if y_out.shape[-2:] != content_rgb.shape[-2:]:
        raise ValueError(
            f"y_out is {tuple(y_out.shape[-2:])} but content_rgb is "
            f"{tuple(content_rgb.shape[-2:])}: resize the content to the output first"
        )
    y = luminance(y_out) if y_out.shape[1] == 3 else y_out
    chroma = rgb_to_ycbcr(content_rgb)[:, 1:3].to(y.dtype)
    chroma = chroma.expand(y.shape[0], -1, -1, -1)
    return ycbcr_to_rgb(torch.cat([y, chroma], dim=1)).clamp(0.0, 1.0)


def _pixel_mean_cov(x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-image pixel colour mean (b, 3) and population covariance (b, 3, 3),
    over the pixels where ``mask`` (b or 1, 1, h, w; 0/1) is set, if given."""
    b, c, h, w = x.shape
    m = x.reshape(b, c, h * w)
    if mask is None:
        mean = m.mean(dim=2)
        centred = m - mean.unsqueeze(2)
        # Centring before the product avoids E[xxᵀ] − μμᵀ cancellation in float32.
        return mean, centred @ centred.transpose(1, 2) / (h * w)
    wts = mask.to(x.dtype).reshape(-1, 1, h * w)
    wts = wts / wts.sum(dim=2, keepdim=True).clamp_min(1.0)
    mean = (m * wts).sum(dim=2)
    centred = m - mean.unsqueeze(2)
    return mean, (centred * wts) @ centred.transpose(1, 2)


def _regularize(cov: Tensor, eps: float) -> Tensor:
    """cov + (eps·tr(cov)/3 + 1e-8)·I for (b, 3, 3) colour covariances."""
    mean_var = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)
    eye = torch.eye(3, dtype=cov.dtype, device=cov.device)
    return cov + (eps * mean_var + _ABS_COV_EPS)[:, None, None] * eye


def pooled_mean_cov(images: Sequence[Tensor], weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """Colour mean (1, 3) and covariance (1, 3, 3) of several images' pixels pooled,
    each image counting by its weight whatever its size (a palette of blended paintings).

    With weights wᵢ normalized to sum 1 and each image's own μᵢ, Σᵢ:
    μ = Σ wᵢ μᵢ and Σ = Σ wᵢ (Σᵢ + (μᵢ − μ)(μᵢ − μ)ᵀ), the mixture's moments.

    Args:
        images: RGB (1, 3, hᵢ, wᵢ) each, in 0..1; sizes may differ.
        weights: one non-negative weight per image, not all zero.

    Returns:
        (mean, cov) in float32 (float64 if the first image is float64).
    """
    if len(images) != len(weights) or not images:
        raise ValueError(f"{len(weights)} weights for {len(images)} images")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("the weights must not all be zero")
    dtype = torch.promote_types(images[0].dtype, torch.float32)
    for img in images:
        _check_channels(img, "images", (3,))
    stats = [_pixel_mean_cov(img.to(dtype)) for img in images]
    means = torch.cat([m for m, _ in stats])  # (n, 3)
    covs = torch.cat([c for _, c in stats])  # (n, 3, 3)
    w = torch.tensor(weights, dtype=dtype, device=means.device) / total
    mean = (w[:, None] * means).sum(0, keepdim=True)
    d = means - mean
    cov = (w[:, None, None] * (covs + d[:, :, None] * d[:, None, :])).sum(0, keepdim=True)
    return mean, cov


def match_mean_cov(
    source_rgb: Tensor,
    mean: Tensor,
    cov: Tensor,
    *,
    method: Literal["eig", "cholesky"] = "eig",
    eps: float = 1e-5,
    mask: Tensor | None = None,
) -> Tensor:
    """Recolour ``source_rgb`` so its pixel colour mean and 3×3 covariance are
    ``mean`` (b or 1, 3) and ``cov`` (b or 1, 3, 3); with ``mask`` (b or 1, 1, h, w;
    0/1), so that the masked pixels' are (the map is applied everywhere).

    x' = A (x − μ_s) + μ_t per pixel, with A Σ_s Aᵀ = Σ_t:

    * ``"eig"`` (the paper's choice, the 3-D colour matching of Image Analogies):
      A = Σ_t^{1/2} Σ_s^{−1/2}, symmetric square roots by eigendecomposition;
    * ``"cholesky"``: A = L_t L_s^{−1} with Σ = L Lᵀ.

    Each covariance Σ gets (eps·tr(Σ)/3 + 1e-8)·I added first, so a flat or grey
    (rank-deficient) image gives a finite A; the match is then exact up to a
    relative O(eps). The absolute 1e-8, a colour std of 1e-4 (a quarter of 8-bit
    quantization noise), only matters for a (nearly) flat image.

    Returns:
        (b, 3, h, w) in source_rgb's dtype, clipped to 0..1 (so the match is exact
        only where nothing clips). Computed in float32 (float64 for float64 input).
    """
    _check_channels(source_rgb, "source_rgb", (3,))
    dtype = torch.promote_types(source_rgb.dtype, torch.float32)
    src = source_rgb.to(dtype)
    mu_s, cov_s = _pixel_mean_cov(src, mask)
    mu_t = mean.to(device=src.device, dtype=dtype)
    cov_s = _regularize(cov_s, eps)
    cov_t = _regularize(cov.to(device=src.device, dtype=dtype), eps)
    if method == "eig":
        a = sym_pow(cov_t, 0.5) @ sym_pow(cov_s, -0.5)
    elif method == "cholesky":
        l_s = torch.linalg.cholesky(cov_s)
        l_t = torch.linalg.cholesky(cov_t)
        # A = L_t L_s⁻¹, i.e. Aᵀ solves L_sᵀ Aᵀ = L_tᵀ (triangular, no inverse formed).
        a = torch.linalg.solve_triangular(l_s.transpose(1, 2), l_t.transpose(1, 2), upper=True)
        a = a.transpose(1, 2)
    else:
        raise ValueError(f"unknown method {method!r} (choose from 'eig', 'cholesky')")
    b, c, h, w = src.shape
    centred = src.reshape(b, c, h * w) - mu_s.unsqueeze(2)
    out = a @ centred + mu_t.unsqueeze(2)
    return out.reshape(b, c, h, w).clamp(0.0, 1.0).to(source_rgb.dtype)


def transfer_mean_cov(
    source_rgb: Tensor,
    target_rgb: Tensor,
    *,
    method: Literal["eig", "cholesky"] = "eig",
    eps: float = 1e-5,
) -> Tensor:
    """Colour histogram matching of Gatys et al. 2017: recolour ``source_rgb``
    (the style) so its pixel colour mean and 3×3 covariance are ``target_rgb``'s
    (the content's); :func:`match_mean_cov` with the target's statistics.

    Args:
        source_rgb: RGB (b, 3, h, w) in 0..1.
        target_rgb: RGB (b, 3, h', w') or (1, 3, h', w'); sizes may differ.
        method: how the colour transform is built (see :func:`match_mean_cov`).
        eps: covariance regularization, relative to the mean channel variance.

    Returns:
        (b, 3, h, w) in source_rgb's dtype, clipped to 0..1.
    """
    _check_channels(target_rgb, "target_rgb", (3,))
    dtype = torch.promote_types(source_rgb.dtype, torch.float32)
    mu_t, cov_t = _pixel_mean_cov(target_rgb.to(dtype))
    return match_mean_cov(source_rgb, mu_t, cov_t, method=method, eps=eps)


class ColorMode(Protocol):
    """What a ``preserve_color`` setting changes, as three hooks.

    Images are RGB in 0..1, (1, 3, h, w), except ``network_view``'s, which
    works on the optimized, ImageNet-normalized tensor inside the graph.
    """

    def style_image(self, style: Tensor, content: Tensor) -> Tensor:
        """The style image whose statistics become the targets."""
        ...

    def network_view(self, x: Tensor) -> Tensor:
        """What the network sees of the normalized composite image x."""
        ...

    def output(self, result: Tensor, content: Tensor) -> Tensor:
        """The picture the user gets from the clipped result."""
        ...


class KeepStyleColors:
    """``none``: the book's transfer; the painting's colours come along."""

    def style_image(self, style: Tensor, content: Tensor) -> Tensor:
        return style

    def network_view(self, x: Tensor) -> Tensor:
        return x

    def output(self, result: Tensor, content: Tensor) -> Tensor:
        return result


class LuminanceOnly:
    """``luminance``: style and content matched on luminance; the output keeps the
    content's Cb/Cr (Gatys et al. 2017). The style's luminance mean and std are
    matched to the content's first, as the paper does."""

    def style_image(self, style: Tensor, content: Tensor) -> Tensor:
        y = match_luminance(luminance(style), luminance(content))
        return y.clamp(0, 1).expand(-1, 3, -1, -1)

    def network_view(self, x: Tensor) -> Tensor:
        return normalize(luminance_as_rgb(rgb01(x)))

    def output(self, result: Tensor, content: Tensor) -> Tensor:
        return combine_luminance_chroma(luminance(result), content)


class HistogramMatch:
    """``histogram``: the style is recoloured to the content's colour mean and
    covariance before anything else (Gatys et al. 2017)."""

    def style_image(self, style: Tensor, content: Tensor) -> Tensor:
        return transfer_mean_cov(style, content)

    def network_view(self, x: Tensor) -> Tensor:
        return x

    def output(self, result: Tensor, content: Tensor) -> Tensor:
        return result


COLOR_MODES: dict[str, ColorMode] = {
    "none": KeepStyleColors(),
    "luminance": LuminanceOnly(),
    "histogram": HistogramMatch(),
}


def color_mode(name: str) -> ColorMode:
    """The hooks of a ``preserve_color`` setting: none, luminance or histogram."""
    try:
        return COLOR_MODES[name]
    except KeyError:
        raise ValueError(
            f"unknown colour mode {name!r} (choose from {', '.join(COLOR_MODES)})"
        ) from None
