"""Style inputs and region masks: what is refused, and the sources each stage gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork.color import color_mode
from brushwork.errors import ConfigError, ImageError
from brushwork.objective import StyleSource
from brushwork.sources import StyleInputs, label_array, load_regions, load_style_inputs

CPU = torch.device("cpu")
CW, CH = 96, 64  # the content's (w, h)
MEAN = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


def save_labels(path: Path, labels: np.ndarray) -> Path:
    Image.fromarray(labels.astype(np.uint8)).save(path)  # mode L: gray values are labels
    return path


def top_left_labels() -> np.ndarray:
    """Label 1 in the top-left quarter (32x48 of 64x96), 0 elsewhere."""
    labels = np.zeros((CH, CW), dtype=np.uint8)
    labels[:32, :48] = 1
    return labels


def content_rgb(rainier: Path, h: int, w: int) -> torch.Tensor:
    img = Image.open(rainier).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None] / np.float32(255)
    return torch.from_numpy(arr.copy())


def np_style(path: Path, h: int, w: int) -> np.ndarray:
    """A style image as the network takes it at (h, w): Lanczos, /255, ImageNet-normalized."""
    img = Image.open(path).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    rgb = np.asarray(img, dtype=np.float64).transpose(2, 0, 1)[None] / 255.0
    return (rgb - MEAN) / STD


def region_of(src: StyleSource) -> np.ndarray:
    assert src.region is not None
    r = src.region.numpy()
    assert r.shape[:2] == (1, 1) and set(np.unique(r)) <= {0.0, 1.0}
    return r[0, 0].astype(bool)


def load(style: object, **kw: object) -> StyleInputs:
    args: dict[str, object] = dict(
        blend=None, mask=None, region_styles=None, content_size=(CW, CH), fit="stretch", scale=1.0
    )
    args.update(kw)
    return load_style_inputs(style, **args)  # type: ignore[arg-type]


# --- refusals ----------------------------------------------------------------------------


def test_blend_count_must_match_the_styles(autumn_oak: Path, starry: Path) -> None:
    with pytest.raises(ConfigError, match="^1 blend weights for 2 style images$"):
        load([autumn_oak, starry], blend=[1.0])
    with pytest.raises(ConfigError, match="3 blend weights for 1 style images"):
        load(autumn_oak, blend=[1.0, 2.0, 3.0])
    # Checked before anything is decoded: a missing file does not mask the count.
    with pytest.raises(ConfigError, match="2 blend weights for 1 style images"):
        load("/nonexistent/style.png", blend=[1.0, 1.0])
    with pytest.raises(ConfigError, match="at least one style image"):
        load([])
    inputs = load([autumn_oak, starry], blend=[3.0, 1.0])
    assert inputs.blend == (3.0, 1.0) and len(inputs.styles) == 2
    assert load([autumn_oak, starry]).blend == (1.0, 1.0)


def test_mask_must_have_the_content_size(tmp_path: Path, starry: Path) -> None:
    mask = save_labels(tmp_path / "mask.png", np.ones((40, 50)))
    with pytest.raises(ConfigError) as e:
        load_regions(mask, {1: starry}, (CW, CH))
    assert str(e.value) == (
        "the mask is 50x40 but the content image is 96x64; they must be the same size"
    )


def test_label_without_pixels_is_refused(tmp_path: Path, starry: Path, wave: Path) -> None:
    mask = save_labels(tmp_path / "mask.png", top_left_labels())
    with pytest.raises(ConfigError, match="^the mask has no pixels with label 2$"):
        load_regions(mask, {1: starry, 2: wave}, (CW, CH))


def test_region_styles_need_a_mask_and_a_mask_needs_region_styles(
    tmp_path: Path, autumn_oak: Path, starry: Path
) -> None:
    with pytest.raises(ConfigError, match="region styles need a mask image"):
        load_regions(None, {1: starry}, (CW, CH))
    with pytest.raises(ConfigError, match="region styles need a mask image"):
        load(autumn_oak, region_styles={1: starry})
    mask = save_labels(tmp_path / "mask.png", top_left_labels())
    with pytest.raises(ConfigError, match="a mask needs at least one region style"):
        load_regions(mask, {}, (CW, CH))
    assert load_regions(None, None, (CW, CH)) == []


def test_missing_mask_file_is_a_one_line_image_error(
    tmp_path: Path, autumn_oak: Path, starry: Path
) -> None:
    missing = tmp_path / "no-such-mask.png"
    for call in (
        lambda: load_regions(missing, {1: starry}, (CW, CH)),
        lambda: load(autumn_oak, mask=missing, region_styles={1: starry}),
    ):
        with pytest.raises(ImageError) as e:
            call()
        assert not isinstance(e.value, OSError)  # FileNotFoundError is an OSError
        msg = str(e.value)
        assert "\n" not in msg and str(missing) in msg and "does not exist" in msg


def test_corrupt_mask_file_is_an_image_error(tmp_path: Path, starry: Path) -> None:
    bad = tmp_path / "mask.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ImageError) as e:
        load_regions(bad, {1: starry}, (CW, CH))
    assert "\n" not in str(e.value)


def test_labels_are_palette_indices_or_gray_values(tmp_path: Path) -> None:
    idx = np.zeros((4, 6), dtype=np.uint8)
    idx[1:3, 2:5] = 2
    idx[0, 0] = 1
    pal = Image.new("P", (6, 4))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (253 * 3))
    pal.putdata(idx.ravel().tolist())
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(label_array(tmp_path / "p.png"), idx)  # indices, not colours
    gray = save_labels(tmp_path / "g.png", idx * 100)
    np.testing.assert_array_equal(label_array(gray), idx.astype(np.int64) * 100)
    assert label_array(gray).dtype == np.int64


# --- sources --------------------------------------------------------------------------


def test_without_regions_one_source_with_the_blend(
    rainier: Path, autumn_oak: Path, starry: Path
) -> None:
    inputs = load([autumn_oak, starry], blend=[2.0, 1.0])
    (src,) = inputs.sources(CH, CW, content_rgb(rainier, CH, CW), color_mode("none"), CPU)
    assert src.region is None and src.share == 1.0 and tuple(src.blend) == (2.0, 1.0)
    for img, path in zip(src.images, (autumn_oak, starry), strict=True):
        np.testing.assert_allclose(img.numpy(), np_style(path, CH, CW), atol=3e-6)


@pytest.mark.parametrize(("h", "w"), [(CH, CW), (CH // 2, CW // 2)])
def test_regions_get_their_style_and_the_rest_the_main_style(
    tmp_path: Path, rainier: Path, autumn_oak: Path, starry: Path, wave: Path, h: int, w: int
) -> None:
    labels = top_left_labels()
    mask = save_labels(tmp_path / "mask.png", labels)
    inputs = load([autumn_oak, wave], blend=[2.0, 1.0], mask=mask, region_styles={1: starry})
    sources = inputs.sources(h, w, content_rgb(rainier, h, w), color_mode("none"), CPU)
    assert len(sources) == 2
    region, rest = sources
    # The label's pixels at the stage's size: whole 2x2 blocks, so any nearest pick agrees.
    step = CH // h
    want = (labels == 1)[::step, ::step]
    assert want.shape == (h, w)
    np.testing.assert_array_equal(region_of(region), want)
    np.testing.assert_array_equal(region_of(rest), ~want)
    assert region.share == pytest.approx(0.25) and rest.share == pytest.approx(0.75)
    # The region takes its own style (one image, weight 1), the rest the main blend.
    assert tuple(region.blend) == (1.0,) and len(region.images) == 1
    np.testing.assert_allclose(region.images[0].numpy(), np_style(starry, h, w), atol=3e-6)
    assert tuple(rest.blend) == (2.0, 1.0) and len(rest.images) == 2
    np.testing.assert_allclose(rest.images[0].numpy(), np_style(autumn_oak, h, w), atol=3e-6)
    np.testing.assert_allclose(rest.images[1].numpy(), np_style(wave, h, w), atol=3e-6)


def test_region_covering_everything_leaves_no_rest(
    tmp_path: Path, rainier: Path, autumn_oak: Path, starry: Path
) -> None:
    mask = save_labels(tmp_path / "mask.png", np.full((CH, CW), 7))
    inputs = load(autumn_oak, mask=mask, region_styles={7: starry})
    (src,) = inputs.sources(CH, CW, content_rgb(rainier, CH, CW), color_mode("none"), CPU)
    assert region_of(src).all() and src.share == 1.0
    np.testing.assert_allclose(src.images[0].numpy(), np_style(starry, CH, CW), atol=3e-6)


def test_region_that_vanishes_at_a_small_stage_is_dropped(
    tmp_path: Path, rainier: Path, autumn_oak: Path, starry: Path
) -> None:
    labels = np.zeros((CH, CW), dtype=np.uint8)
    labels[1, 1] = 1  # one pixel: no 4x nearest downscale picks pixel 1 (it picks 0 or 2)
    mask = save_labels(tmp_path / "mask.png", labels)
    inputs = load(autumn_oak, mask=mask, region_styles={1: starry})
    full = inputs.sources(CH, CW, content_rgb(rainier, CH, CW), color_mode("none"), CPU)
    assert len(full) == 2 and region_of(full[0]).sum() == 1  # kept at full size
    small = inputs.sources(16, 24, content_rgb(rainier, 16, 24), color_mode("none"), CPU)
    assert len(small) == 1
    assert region_of(small[0]).all()  # the main style covers the whole stage
    assert all(region_of(s).any() for s in full + small)  # never an empty mask


def test_color_mode_prepares_the_style_images(rainier: Path, autumn_oak: Path) -> None:
    inputs = load(autumn_oak)
    content = content_rgb(rainier, CH, CW)
    (src,) = inputs.sources(CH, CW, content, color_mode("luminance"), CPU)
    rgb = src.images[0].double().numpy() * STD + MEAN
    # Luminance-only: the network sees grey style images.
    np.testing.assert_allclose(rgb[:, 0], rgb[:, 1], atol=1e-6)
    np.testing.assert_allclose(rgb[:, 0], rgb[:, 2], atol=1e-6)
