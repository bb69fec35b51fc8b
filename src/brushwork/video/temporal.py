"""The temporal loss of Ruder, Dosovitskiy & Brox (2016): stay close to the warped past.

For frame t with earlier outputs warped onto its grid, ω_j (k, 3, h, w), and
their consistency weights c_j (k, 1, h, w):

    L_temporal(x) = Σ_j Σ_p c_j(p) ‖x(p) − ω_j(p)‖² / (3 · Σ_j Σ_p c_j(p))

with x and ω in the engine's ImageNet-normalized space. k = 1 is the paper's
short-term loss (eq. 3, Ruder's 1/D Σ c (x − ω)², D the number of pixel
values); k > 1 with the long-term weights of :func:`brushwork.video.flow.long_term_masks`
is its long-term loss (eq. 6).

Why this normalization: the engine's default balance ("auto") divides content
and style by their targets' energies, so those terms are relative errors,
O(1) at the start of a run. In the normalized space one unit is one ImageNet
standard deviation of pixel values (about 0.23 of the 0..1 range), so the mean
squared difference above is a relative error too: about 1 between unrelated
natural images, 0 for a perfect match. Dividing by the weight of the trusted
pixels, not by the frame's size, makes the term mean the same whether 5 % or
50 % of a frame was disoccluded and at any resolution; the per-pixel
push-back stays what it is. So one ``temporal_weight`` suits every clip.
"""

from __future__ import annotations

from torch import Tensor, nn


def temporal_loss(x: Tensor, targets: Tensor, masks: Tensor) -> Tensor:
    """Masked mean squared distance of ``x`` to warped earlier outputs.

    Args:
        x: (1, 3, h, w) the image being optimized (normalized space).
        targets: (k, 3, h, w) warped earlier outputs, same space.
        masks: (k, 1, h, w) weights c_j ≥ 0 (0 = disoccluded or on a motion boundary).

    Returns:
        Σ c (x − ω)² / (3 Σ c), a scalar in x's dtype; 0 when every weight is 0.
    """
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1:] != targets.shape[1:]:
        raise ValueError(f"x {tuple(x.shape)} does not match targets {tuple(targets.shape)}")
    if masks.shape != (targets.shape[0], 1, *targets.shape[2:]):
        raise ValueError(f"masks {tuple(masks.shape)} do not match targets {tuple(targets.shape)}")
    weight = masks.to(x.dtype)
    total = weight.sum() * x.shape[1]
    sq = (weight * (x - targets.to(x.dtype)) ** 2).sum()
    return sq / total.clamp_min(1.0)


class TemporalLoss(nn.Module):
    """``weight`` × :func:`temporal_loss` with the targets and masks held in buffers.

    An ``extra_loss`` for :func:`brushwork.stylize`: called with the normalized
    image (1, 3, h, w), returns a weighted fp32 scalar.
    """

    targets: Tensor
    masks: Tensor

    def __init__(self, targets: Tensor, masks: Tensor, weight: float) -> None:
        super().__init__()
        self.register_buffer("targets", targets.detach().float())
        self.register_buffer("masks", masks.detach().float())
        self.weight = float(weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.weight * temporal_loss(x.float(), self.targets, self.masks)
