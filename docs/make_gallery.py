"""Render the README gallery with brushwork's own runs (not shipped; needs ../shared/images).

Content photos ship with scikit-image (public domain); styles are the public-domain
paintings in ../shared/images/styles. Each picture is a JPEG strip of content | style |
result, kept under about 200 KB. Every row runs the library's defaults plus the one control
it shows.

    python docs/make_gallery.py [--only NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from brushwork import stylize

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "gallery"
STYLES = ROOT.parents[1] / "shared" / "images" / "styles"
SKIMAGE = Path(next(iter(importlib.util.find_spec("skimage").submodule_search_locations))) / "data"


def photo(name: str) -> Image.Image:
    return Image.open(SKIMAGE / name).convert("RGB")


def strip(tiles: list[tuple[str, Image.Image]], height: int = 256) -> Image.Image:
    scaled = [
        (label, im.resize((round(im.width * height / im.height), height), Image.LANCZOS))
        for label, im in tiles
    ]
    width = sum(im.width for _, im in scaled) + 6 * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, height + 22), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for label, im in scaled:
        canvas.paste(im, (x, 22))
        draw.text((x + 4, 5), label, fill=(40, 40, 40))
        x += im.width + 6
    return canvas


def save(name: str, img: Image.Image) -> None:
    OUT.mkdir(exist_ok=True)
    for quality in (88, 80, 70, 60):
        path = OUT / f"{name}.jpg"
        img.save(path, quality=quality, optimize=True)
        if path.stat().st_size <= 200_000:
            return


def save_files(name: str, folder: Path, tiles: list[tuple[str, str]], height: int = 300) -> None:
    """A strip of result files already made (``tiles``: label, file name in ``folder``)."""
    images = [(label, Image.open(folder / file).convert("RGB")) for label, file in tiles]
    save(name, strip(images, height))


def run(content: Any, style: Any, **kw: Any) -> tuple[Image.Image, float]:
    """The library's defaults plus the one control a row shows."""
    t = time.perf_counter()
    img = stylize(content, style, **kw)
    return img, time.perf_counter() - t


def halves_mask(img: Image.Image) -> Image.Image:
    labels = np.ones((img.height, img.width), dtype=np.uint8)
    labels[:, img.width // 2 :] = 2
    return Image.fromarray(labels, mode="L")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None)
    only = ap.parse_args().only
    starry, wave = STYLES / "starry_night.jpg", STYLES / "hokusai_great_wave.jpg"
    shipwreck = STYLES / "shipwreck.jpg"
    cat, coffee, astronaut = photo("chelsea.png"), photo("coffee.png"), photo("astronaut.png")
    times: dict[str, float] = {}

    def want(name: str) -> bool:
        return only is None or only == name

    if want("default"):
        out, times["default"] = run(cat, starry)
        rocket = photo("rocket.jpg")
        ship, _ = run(rocket, shipwreck)
        save(
            "default",
            strip(
                [
                    ("content", cat),
                    ("style", Image.open(starry)),
                    ("default", out),
                    ("content", rocket),
                    ("style", Image.open(shipwreck)),
                    ("default", ship),
                ]
            ),
        )
    if want("color"):
        plain, _ = run(coffee, wave)
        lum, times["luminance"] = run(coffee, wave, preserve_color="luminance")
        hist, times["histogram"] = run(coffee, wave, preserve_color="histogram")
        save(
            "color",
            strip(
                [
                    ("content", coffee),
                    ("style", Image.open(wave)),
                    ("none", plain),
                    ("luminance", lum),
                    ("histogram", hist),
                ]
            ),
        )
    if want("blend"):
        out, times["blend"] = run(astronaut, [starry, shipwreck], style_blend=(0.5, 0.5))
        save(
            "blend",
            strip(
                [
                    ("content", astronaut),
                    ("style 1", Image.open(starry)),
                    ("style 2", Image.open(shipwreck)),
                    ("0.5 / 0.5", out),
                ]
            ),
        )
    if want("mask"):
        c = cat
        mask = halves_mask(c)
        out, times["mask"] = run(c, starry, mask=mask, region_styles={1: starry, 2: wave})
        shown = Image.fromarray((np.asarray(mask) * 120).astype(np.uint8)).convert("RGB")
        save("mask", strip([("content", c), ("mask", shown), ("left: starry, right: wave", out)]))
    if want("loss"):
        gram, times["gram"] = run(coffee, starry)
        meancov, times["meancov"] = run(coffee, starry, style_loss="meancov")
        save(
            "loss",
            strip(
                [
                    ("content", coffee),
                    ("style", Image.open(starry)),
                    ("gram", gram),
                    ("meancov", meancov),
                ]
            ),
        )
    if want("scale"):
        small, _ = run(cat, starry, style_scale=0.5)
        large, times["scale"] = run(cat, starry, style_scale=2.0)
        save("scale", strip([("style scale 0.5", small), ("style scale 2.0", large)]))
    if want("texture"):
        out, times["texture"] = run(
            None, wave, canvas=(512, 256), size=512, iterations=400, optimizer="lbfgs"
        )
        save("texture", strip([("style", Image.open(wave)), ("texture", out)]))
    if want("pyramid"):
        p256, times["pyramid-256"] = run(cat, starry, size=256, scales=0)
        p1024, times["pyramid-1024"] = run(cat, starry, size=1024, scales=0)
        crop = p1024.resize((256, 171), Image.LANCZOS)
        save(
            "pyramid",
            strip(
                [
                    ("256 px", p256),
                    ("1024 px, shown at 256", crop),
                    ("1024 px, detail", p1024.crop((400, 150, 656, 406))),
                ]
            ),
        )
    print(json.dumps({k: round(v, 1) for k, v in times.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
