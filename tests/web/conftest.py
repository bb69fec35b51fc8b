"""Fixtures for the studio tests: generated images, an app factory, a gate.

Jobs are real (real VGG-16 weights from the default cache) and tiny: 64 px and
a handful of iterations, well under a second each on a 2-core CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from studio_helpers import MakeClient, content_image, png_bytes, style_image

from brushwork.web.app import create_app


@pytest.fixture(scope="session")
def content_png() -> bytes:
    return png_bytes(content_image())


@pytest.fixture(scope="session")
def style_png() -> bytes:
    return png_bytes(style_image())


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """Build apps on ``tmp_path/data`` (or a given dir); all are shut down after the test."""
    opened: list[TestClient] = []

    def make(data_dir: Path | None = None, **kw: Any) -> TestClient:
        kw.setdefault("preview_interval", 0.0)
        kw.setdefault("poll_interval", 0.02)
        client = TestClient(create_app(data_dir or tmp_path / "data", **kw))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def gate() -> threading.Event:
    return threading.Event()
