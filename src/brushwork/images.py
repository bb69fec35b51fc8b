"""Reading user images robustly and writing results atomically.

Inputs are decoded for real (never trusted by name), EXIF-rotated, and
converted to 8-bit RGB from whatever mode they come in. Outputs go to a
temporary file in the destination directory and are renamed into place, so a
crash or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from brushwork.errors import ConfigError, ImageError

#: Largest input accepted, in pixels (80 MP). Checked from the header before
#: decoding, so a decompression bomb never allocates its pixels.
MAX_PIXELS = 80_000_000

#: Output formats by file extension.
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
#: Above this many pixels PNG is written at zlib level 1: level 6 (Pillow's
#: default) takes minutes on a 45 Mpx print for a file only ~10 % smaller.
FAST_PNG_PIXELS = 4_000_000

ImageInput = str | os.PathLike[str] | Image.Image


def load_image(
    source: ImageInput, what: str = "image", *, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Open ``source`` (a path or PIL image) as an 8-bit RGB image.

    Raises :class:`ImageError` naming the file and the problem.
    """
    if isinstance(source, Image.Image):
        return to_rgb(source)
    path = Path(source)
    label = f"{what} '{path}'"
    if not path.exists():
        raise ImageError(f"{label} does not exist")
    if path.is_dir():
        raise ImageError(f"{label} is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{label} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces PIL's DecompressionBombWarning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{label} has {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}"
                )
            img.load()
            return to_rgb(img)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{label} is too large to decode safely (decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{label} is truncated or corrupt ({e})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, honouring EXIF orientation.

    * 16-bit and 32-bit integer grayscale are rescaled, not clipped (PIL's own
      ``convert`` clips 16-bit values above 255 to white).
    * Transparency is composited over white rather than dropped to black.
    * CMYK and palette images go through PIL's conversions.
    """
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F":
            top = 1.0 if arr.size and float(arr.max()) <= 1.0 else 255.0
        else:
            peak = float(arr.max()) if arr.size else 0.0
            top = 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode != "RGB":
        return img.convert("RGB")
    return img.copy() if img.readonly else img


def output_format(path: Path) -> str:
    """The PIL format for ``path``'s extension, or :class:`ConfigError`."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"output '{path}' has an unsupported extension (use {', '.join(sorted(FORMATS))})"
        )
    return fmt


#: Past this factor the front-ends say that the photo is enlarged: a print at 1.5× its
#: pixels is what --size is for, but a thumbnail at 8× is painted blur, and the user
#: should know why.
UPSCALE_NOTE = 2.0


def enlargement_note(
    photo: tuple[int, int],
    output: tuple[int, int],
    *,
    what: str = "content photo",
    size_option: str = "--size",
) -> str | None:
    """One sentence when ``output``'s long side is over UPSCALE_NOTE × the ``photo``'s
    (both width, height), else None; ``size_option`` is how the caller's user sets the
    size. The CLI, batch, video and the studio each show it after the run (after: a run
    refused for its size says only why); the library never prints.
    """
    factor = max(output) / max(*photo, 1)
    if factor <= UPSCALE_NOTE:
        return None
    return (
        f"the {what} is {photo[0]}x{photo[1]} px and is enlarged {factor:.1f}x to "
        f"{max(output)} px; the result holds no more of its detail than that "
        f"({size_option} {max(photo)} keeps its own size)"
    )


def sidecar_path(path: Path) -> Path:
    """``out.png`` -> ``out.png.json``: the run record beside the image."""
    return path.with_name(path.name + ".json")


def check_output(path: Path, inputs: Mapping[str, ImageInput]) -> None:
    """Refuse outputs that would overwrite an input or cannot be written; create the directory.

    Called before a run starts, so that a long run never ends in an unwritable path.
    """
    # A directory first: "out" that is a folder is the user's mistake, not an extension's.
    if path.is_dir():
        raise ConfigError(f"output '{path}' is a directory; give a file name such as out.png")
    output_format(path)
    for what, src in inputs.items():
        if isinstance(src, Image.Image):
            continue
        p = Path(src)
        if p.exists() and p.resolve() in (path.resolve(), sidecar_path(path).resolve()):
            raise ConfigError(
                f"output '{path}' is the {what} image; refusing to overwrite an input"
            )
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"output directory '{parent}' is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create output directory '{parent}': {e.strerror}") from None
    # A real write, not os.access: root passes access() everywhere, and places
    # like /proc or a read-only mount refuse only when a file is created.
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"cannot write to output directory '{parent}': {e.strerror}") from None


def encode_image(
    img: Image.Image,
    fmt: str,
    record: Mapping[str, Any] | None = None,
    *,
    dpi: float | None = None,
) -> bytes:
    """Encode ``img``; PNG gets the run record as a ``brushwork`` text chunk.

    ``dpi`` is written into the file's resolution field (PNG pHYs, JPEG JFIF,
    TIFF, WebP has none) so that print software sizes the picture. TIFF is
    written with lossless Deflate compression.
    """
    buf = io.BytesIO()
    extra: dict[str, Any] = {} if dpi is None else {"dpi": (dpi, dpi)}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        if record is not None:
            info.add_text("brushwork", json.dumps(record, sort_keys=True))
        level = 1 if img.width * img.height > FAST_PNG_PIXELS else 6
        img.save(buf, format="PNG", pnginfo=info, compress_level=level, **extra)
    elif fmt == "TIFF":
        img.save(buf, format="TIFF", compression="tiff_adobe_deflate", **extra)
    elif fmt == "JPEG":
        img.save(buf, format="JPEG", quality=95, **extra)
    else:
        img.save(buf, format=fmt, quality=95)
    return buf.getvalue()


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes via a temporary file in the same directory, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_image(
    img: Image.Image,
    path: Path,
    record: Mapping[str, Any] | None = None,
    *,
    dpi: float | None = None,
) -> None:
    """Save ``img`` atomically in the format of ``path``'s extension, plus a JSON sidecar."""
    fmt = output_format(path)
    atomic_write(path, encode_image(img, fmt, record, dpi=dpi))
    if record is not None:
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        atomic_write(sidecar_path(path), text.encode())
