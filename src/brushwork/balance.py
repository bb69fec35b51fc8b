"""Loss weights: every default is resolved here, and only here.

Three things set a run's default (content, style, TV) weights:

1. the backbone's input space, which sets the scale of its features
   (:func:`calibrated_weights`);
2. the optimizer, since L-BFGS gets much closer to the optimum than the book's
   500 Adam steps (:data:`CONVERGED_CONTENT_FACTOR`);
3. the style loss, since the mean/covariance and sliced losses have other
   magnitudes than the Gram loss (:data:`MEANCOV_STYLE_FACTOR`,
   :data:`SLICED_STYLE_RATIO`).

Weights the user sets win. ``brushwork models`` prints what
:func:`default_loss_weights` gives, which is what a run uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three loss terms: total = content·Lc + style·Ls + tv·Ltv."""

    content: float
    style: float
    tv: float


#: The d2l book's weights, tuned on torchvision's normalized-input VGG-19.
BOOK_WEIGHTS = LossWeights(content=1.0, style=1e3, tv=10.0)

#: The Caffe VGG-16 sees 0..255 input rather than mean/std-normalized input, so
#: its features are about k times larger than the book's VGG-19 features
#: (k ≈ 255·0.226 ≈ 58 from the input scale alone). Content loss grows with k²
#: and Gram style loss with k⁴, so the book's balance is (1/k², 1e3/k⁴, 10); TV
#: acts on the image and keeps its weight. k = 70 was measured
#: (benchmarks/calibrate_vgg16.py, README "Calibration"): on the book's pair its
#: first stage matches the content loss of the book's published result.
CAFFE_FEATURE_SCALE = 70.0
CAFFE_WEIGHTS = LossWeights(
    content=1.0 / CAFFE_FEATURE_SCALE**2,
    style=1e3 / CAFFE_FEATURE_SCALE**4,
    tv=10.0,
)

#: The calibrated weights give the book's balance under the book's optimizer: 500
#: Adam steps of lr 0.01, which stop far from the optimum. L-BFGS gets close to it,
#: and there the same weights paint over the content (measured on the book's pair at
#: 512 px: the mountains dissolve). Its default content weight is 5x higher: of 1x,
#: 5x and 20x, 5x kept the subject recognizable on the book's pair while still
#: clearly painted; 20x left photos such as the astronaut almost untouched.
CONVERGED_CONTENT_FACTOR = {"adam": 1.0, "lbfgs": 5.0}

#: The meancov loss (squared errors of means and covariances) is about 1.2e4 times the
#: Gram MSE on the same VGG-16 features (measured on the book's pair at 384x256,
#: summed over the default style layers): covariances are not divided by c·h·w as
#: Gram entries are. This factor on the style weight starts both at the same
#: magnitude. Both scale with the 4th power of the features, so it carries over.
MEANCOV_STYLE_FACTOR = 8e-5

#: The sliced Wasserstein loss is a mean of squared feature differences (along
#: directions), so it grows with the square of the feature scale, as the content loss
#: does, not with the 4th power as the Gram loss does. Its raw weight is therefore set
#: relative to the content weight, which carries the same k² across input spaces. 1.4
#: starts it at the Gram term's magnitude on the book's pair (384 px, VGG-16: raw
#: sliced loss 1.54e6, raw Gram loss 1.06e7 over the five style layers).
SLICED_STYLE_RATIO = 1.4


def calibrated_weights(input_space: str) -> LossWeights:
    """The book's balance for a backbone fed in ``input_space``."""
    if input_space == "caffe-bgr-255":
        return CAFFE_WEIGHTS
    return BOOK_WEIGHTS


def default_loss_weights(input_space: str, optimizer: str, style_loss: str) -> LossWeights:
    """The weights a run uses when the user sets none."""
    base = calibrated_weights(input_space)
    if style_loss == "sliced":
        style = base.content * SLICED_STYLE_RATIO
    else:
        style = base.style * (MEANCOV_STYLE_FACTOR if style_loss == "meancov" else 1.0)
    return LossWeights(
        content=base.content * CONVERGED_CONTENT_FACTOR[optimizer], style=style, tv=base.tv
    )


#: The auto balance: every term is relative to its own target's energy
#: (objective.relative), so these weights are the same on every backbone and painting.
#: Measured in benchmarks/quality.py (README "Quality").
AUTO_STYLE_WEIGHT = 1.0
AUTO_TV_WEIGHT = 1e-3


def auto_loss_weights(strength: float) -> LossWeights:
    """Weights of the auto balance: content 1, style AUTO_STYLE_WEIGHT × strength."""
    return LossWeights(content=1.0, style=AUTO_STYLE_WEIGHT * strength, tv=AUTO_TV_WEIGHT)


def resolve_loss_weights(
    input_space: str,
    *,
    optimizer: str,
    style_loss: str,
    content_weight: float | None,
    style_weight: float | None,
    tv_weight: float | None,
    has_content: bool,
    balance: str = "book",
    strength: float = 1.0,
) -> LossWeights:
    """The run's weights: the user's where set, the defaults elsewhere; no content, weight 0."""
    if balance == "auto":
        default = auto_loss_weights(strength)
    else:
        default = default_loss_weights(input_space, optimizer, style_loss)
    return LossWeights(
        content=0.0
        if not has_content
        else default.content
        if content_weight is None
        else content_weight,
        style=default.style if style_weight is None else style_weight,
        tv=default.tv if tv_weight is None else tv_weight,
    )
