"""Inputs in every common mode are converted properly; outputs are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.errors import ConfigError, ImageError
from brushwork.images import (
    check_output,
    enlargement_note,
    load_image,
    save_image,
    sidecar_path,
)


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)  # left half red
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=95)
    out = load_image(path)
    assert out.size == (20, 40)  # displayed portrait
    top = np.asarray(out)[:20].mean(axis=(0, 1))
    assert top[0] > 200 and top[2] < 60  # the red half is now on top


def test_grayscale_palette_rgba_cmyk(tmp_path: Path) -> None:
    gray = tmp_path / "g.png"
    Image.new("L", (8, 8), 128).save(gray)
    assert np.asarray(load_image(gray))[0, 0].tolist() == [128, 128, 128]

    pal = tmp_path / "p.gif"
    Image.new("RGB", (8, 8), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE).save(pal)
    np.testing.assert_allclose(np.asarray(load_image(pal))[0, 0], [10, 200, 30], atol=8)

    rgba = tmp_path / "a.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(rgba)  # fully transparent black
    assert np.asarray(load_image(rgba))[0, 0].tolist() == [255, 255, 255]  # over white

    cmyk = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    r, g, b = np.asarray(load_image(cmyk))[0, 0].tolist()
    assert r > 200 and g < 60 and b < 60


def test_16bit_grayscale_is_rescaled_not_clipped(tmp_path: Path) -> None:
    arr = np.full((8, 8), 32768, dtype=np.uint16)  # mid-gray in 16 bits
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    value = np.asarray(load_image(path))[0, 0, 0]
    assert abs(int(value) - 128) <= 1  # PIL's plain convert would give 255


def test_tiny_image_is_usable(tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (50, 60, 70)).save(path)
    assert load_image(path).size == (1, 1)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    with pytest.raises(ImageError, match="over the limit"):
        load_image(path, max_pixels=10_000)


def test_output_must_not_be_an_input(tmp_path: Path) -> None:
    c = tmp_path / "c.png"
    Image.new("RGB", (4, 4)).save(c)
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        check_output(tmp_path / "." / "c.png", {"content": c})
    with pytest.raises(ConfigError, match="unsupported extension"):
        check_output(tmp_path / "out.gif", {"content": c})


def test_save_is_atomic_and_writes_record(tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    record = {"seed": 3, "weights_sha256": "abc"}
    save_image(Image.new("RGB", (4, 4), (1, 2, 3)), out, record)
    assert json.loads(Image.open(out).text["brushwork"]) == record
    assert json.loads(sidecar_path(out).read_text()) == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png", "o.png.json"]  # no temp files
    for ext in (".jpg", ".webp"):
        save_image(Image.new("RGB", (4, 4)), tmp_path / f"o{ext}", record)
        assert Image.open(tmp_path / f"o{ext}").format in ("JPEG", "WEBP")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".tiff"])
def test_print_formats_carry_the_dpi(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    out = tmp_path / f"print{ext}"
    save_image(img, out, {"seed": 1}, dpi=300)
    back = Image.open(out)
    assert back.size == (40, 30)
    assert tuple(round(float(d)) for d in back.info["dpi"]) == (300, 300)
    if ext != ".jpg":  # lossless: the very pixels
        np.testing.assert_array_equal(np.asarray(back.convert("RGB")), np.asarray(img))
    assert json.loads(sidecar_path(out).read_text()) == {"seed": 1}


def test_enlargement_is_noted_past_twice_the_photos_long_side() -> None:
    # The long sides are compared, whichever way the photo is turned: 96 px to 200 is
    # 2.08x, to 192 exactly 2x (not noted), and a print at 1.5x is what --size is for.
    note = enlargement_note((64, 96), (134, 200))
    assert note is not None and "64x96 px and is enlarged 2.1x to 200 px" in note
    assert "(--size 96 keeps its own size)" in note
    assert enlargement_note((96, 64), (192, 128)) is None
    assert enlargement_note((3000, 2000), (4500, 3000)) is None
    studio = enlargement_note((96, 64), (512, 341), size_option="Size")
    assert studio is not None and "5.3x to 512 px" in studio and "(Size 96 keeps" in studio
