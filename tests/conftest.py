"""Shared fixtures. Tests use the real VGG-16 weights and real images."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Keep the weights cache and torch's hub cache out of the user's home, once per
# test session (the VGG-16 conversion then runs once, for real, from the ONNX file).
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="brushwork-test-home-"))
os.environ["BRUSHWORK_HOME"] = str(_SESSION_HOME)
os.environ["TORCH_HOME"] = str(_SESSION_HOME / "torch")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture(scope="session")
def shared_images() -> Path:
    """The project's shared real images (../shared/images; CI has them too)."""
    if not (SHARED / "d2l" / "rainier.jpg").is_file():
        pytest.fail(f"the shared test images are missing: expected them in {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def rainier(shared_images: Path) -> Path:
    return shared_images / "d2l" / "rainier.jpg"


@pytest.fixture(scope="session")
def autumn_oak(shared_images: Path) -> Path:
    return shared_images / "d2l" / "autumn_oak.jpg"


@pytest.fixture(scope="session")
def starry(shared_images: Path) -> Path:
    return shared_images / "styles" / "starry_night.jpg"


@pytest.fixture(scope="session")
def wave(shared_images: Path) -> Path:
    return shared_images / "styles" / "hokusai_great_wave.jpg"


@pytest.fixture
def small_pair(tmp_path: Path, rainier: Path, autumn_oak: Path) -> tuple[Path, Path]:
    """Small copies of the book's pair (fast to decode in CLI tests)."""
    c, s = tmp_path / "content.png", tmp_path / "style.png"
    Image.open(rainier).convert("RGB").resize((96, 64)).save(c)
    Image.open(autumn_oak).convert("RGB").resize((96, 67)).save(s)
    return c, s


@pytest.fixture
def folders(tmp_path: Path, rainier: Path, autumn_oak: Path, starry: Path) -> tuple[Path, Path]:
    """contents/ (two small photos and a text file) and styles/ (one painting), for the
    batch tests, local and on Ray."""
    contents, styles = tmp_path / "contents", tmp_path / "styles"
    contents.mkdir()
    styles.mkdir()
    Image.open(rainier).convert("RGB").resize((96, 64)).save(contents / "rainier.png")
    Image.open(autumn_oak).convert("RGB").resize((96, 67)).save(contents / "oak.jpg")
    Image.open(starry).convert("RGB").resize((96, 76)).save(styles / "starry.png")
    (contents / "notes.txt").write_text("not an image: folders list image files only")
    return contents, styles


def rgb_array(path: Path | Image.Image) -> np.ndarray:
    img = path if isinstance(path, Image.Image) else Image.open(path)
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
