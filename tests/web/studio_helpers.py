"""Helpers shared by the studio tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, PngImagePlugin
from starlette.testclient import TestClient

from brushwork.web.app import CSRF_HEADER

H = {CSRF_HEADER: "1"}
TINY: dict[str, Any] = {"size": 64, "iterations": 3}

#: ``make_client(data_dir=None, **create_app_options)`` (the fixture of that name).
MakeClient = Callable[..., TestClient]


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_record(data: bytes) -> dict[str, Any]:
    """The run record in a PNG's ``brushwork`` text chunk (fails if it is not a PNG)."""
    with Image.open(io.BytesIO(data)) as img:
        assert isinstance(img, PngImagePlugin.PngImageFile), img.format
        return dict(json.loads(img.text["brushwork"]))


def content_image(w: int = 80, h: int = 64) -> Image.Image:
    """A smooth gradient with a disc: something with edges for the content loss."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = (x / w * 255).astype(np.uint8)
    g = (y / h * 255).astype(np.uint8)
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2, 230, 40).astype(np.uint8)
    return Image.fromarray(np.stack([r, g, b], axis=-1))


def style_image(size: int = 48) -> Image.Image:
    """Diagonal stripes with noise: a texture for the style loss."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size]
    stripes = ((x + y) // 6 % 2 * 180 + 40).astype(np.uint8)
    noise = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(np.stack([stripes, stripes // 2, 255 - stripes], axis=-1) + noise)


def upload(client: TestClient, data: bytes, name: str = "image.png") -> dict[str, Any]:
    r = client.post("/api/uploads", params={"name": name}, content=data, headers=H)
    assert r.status_code == 201, r.text
    return dict(r.json())


def submit(client: TestClient, content: str, style: str, **options: Any) -> Any:
    body = {"content": content, "styles": [style], "preset": None, "options": {**TINY, **options}}
    return client.post("/api/jobs", json=body, headers=H)


def wait_for(
    client: TestClient, jid: str, done: Callable[[dict[str, Any]], bool], timeout: float = 90.0
) -> dict[str, Any]:
    """Poll the job until ``done(state)``; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/api/jobs/{jid}").json()
        if done(state):
            return dict(state)
        assert time.monotonic() < deadline, f"job {jid} stuck: {state['status']}"
        time.sleep(0.02)


def finished(state: dict[str, Any]) -> bool:
    return state["status"] in ("done", "cancelled", "failed")


@contextlib.contextmanager
def running_server(data_dir: Path, *args: str, timeout: float = 120.0) -> Iterator[Server]:
    """``python -m brushwork.web --port 0 ...`` as a real process; yields once it printed its URL.

    The process is stopped (SIGTERM, then SIGKILL) however the test ends.
    """
    cmd = [sys.executable, "-m", "brushwork.web", "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []
    # Reader threads: a pipe nobody drains would block the server once it fills.
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, lines.put), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, stderr.append), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        first = _first_line(proc, lines, stderr, timeout)
        match = re.search(r"http://\S+", first)
        assert match, first
        yield Server(proc, match.group(0).rstrip("/"), first, stderr, pumps)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _first_line(
    proc: subprocess.Popen[str], lines: queue.Queue[str], stderr: list[str], timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}): {stderr}") from None
    raise AssertionError(f"the server printed no URL in {timeout:.0f} s: {stderr}")


def _pump(stream: IO[str] | None, sink: Callable[[str], None]) -> None:
    for line in stream or ():
        sink(line)


@dataclasses.dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    banner: str
    stderr: list[str]
    pumps: list[threading.Thread]

    def request(
        self, path: str, body: bytes | None = None, host: str | None = None, **headers: str
    ) -> tuple[int, bytes]:
        """Status and body of one request (POST when there is a body, with the studio header)."""
        if body is not None:
            headers = {**H, "content-type": "application/octet-stream", **headers}
        if host is not None:
            headers["host"] = host
        req = urllib.request.Request(self.url + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post_json(self, path: str, data: Any) -> Any:
        status, body = self.request(
            path, json.dumps(data).encode(), **{"content-type": "application/json"}
        )
        assert status == 201, body
        return json.loads(body)

    def interrupt(self, timeout: float = 120.0) -> tuple[int, str]:
        """Ctrl-C (SIGINT); the exit status and everything the server wrote to stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        for t in self.pumps:
            t.join(timeout=30)
        return code, "".join(self.stderr)
