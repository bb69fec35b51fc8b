"""POST /api/jobs (web/app.py) refuses, at submit time, every job that cannot run.

Each refusal is a 400 with a message naming what is wrong, and nothing is
queued: a job the worker cannot finish would hold the only worker, and one that
fails later tells the user less than a refusal now.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from studio_helpers import TINY, H, upload


@pytest.fixture
def uploads(client: TestClient, content_png: bytes, style_png: bytes) -> tuple[str, str]:
    return upload(client, content_png)["id"], upload(client, style_png)["id"]


def post_raw(client: TestClient, body: bytes) -> Any:
    """Post bytes as they are: Python's json module writes NaN and huge ints, JSON has no limit."""
    return client.post("/api/jobs", content=body, headers={**H, "content-type": "application/json"})


def job_body(content: str, style: str, options: str) -> bytes:
    """A job whose options object is given as raw JSON text."""
    return f'{{"content": "{content}", "styles": ["{style}"], "options": {options}}}'.encode()


def assert_refused(client: TestClient, r: Any, *words: str) -> None:
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert isinstance(message, str) and message, r.text
    for word in words:
        assert word in message, (word, message)
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was queued


ABSURD: dict[str, tuple[str, tuple[str, ...]]] = {
    "lr-nan": ('{"lr": NaN}', ("lr",)),
    "style-weight-infinite": ('{"style_weight": Infinity}', ("style weight",)),
    "tv-weight-negative": ('{"tv_weight": -1}', ("tv weight",)),
    "scales-million": ('{"scales": 1000000}', ("scales",)),
    "zero-iterations-many-scales": ('{"iterations": 0, "scales": 1000}', ()),
    "iterations-zero": ('{"iterations": 0}', ("iterations",)),
    "iterations-billion": ('{"iterations": 1000000000}', ("iterations",)),
    "lr-400-digits": ('{"lr": ' + "9" * 400 + "}", ("lr",)),
    "seed-2**70": (f'{{"seed": {2**70}}}', ("seed",)),
    "unknown-layer": ('{"style_layers": ["conv9_9"]}', ("conv9_9",)),
    "fp16-on-cpu": ('{"device": "cpu", "precision": "fp16"}', ("fp16",)),
    "blend-count": ('{"style_blend": [1, 1, 1]}', ("blend",)),
}


@pytest.mark.parametrize("case", list(ABSURD))
def test_jobs_that_cannot_run_are_refused_at_submit(
    client: TestClient, uploads: tuple[str, str], case: str
) -> None:
    options, words = ABSURD[case]
    r = post_raw(client, job_body(*uploads, options))
    assert_refused(client, r, *words)


HUGE = "1" + "0" * 399  # a 400-digit integer: valid JSON, past float's range


@pytest.mark.parametrize(
    "options",
    [
        {"lr": HUGE},
        {"iterations": HUGE},
        {"size": HUGE},
        {"seed": HUGE},
        {"tv_weight": "-" + HUGE},
        {"style_blend": f"[{HUGE}]"},
        {"style_layer_weights": f"[1, {HUGE}]"},
    ],
    ids=lambda o: next(iter(o)),
)
def test_a_huge_number_anywhere_is_a_400_not_a_500(
    client: TestClient, uploads: tuple[str, str], options: dict[str, str]
) -> None:
    raw = "{" + ", ".join(f'"{k}": {v}' for k, v in {**TINY, **options}.items()) + "}"
    assert_refused(client, post_raw(client, job_body(*uploads, raw)))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000 + b"]" * 30_000,  # valid JSON nested deeper than Python's recursion limit
        b'{"content": "\xff\xfe"}',  # not UTF-8
        b'{"content": ' + HUGE.encode() + b', "styles": [' + HUGE.encode() + b"]}",
        b'{"content": NaN, "styles": [Infinity]}',
        b'{"content": "x", "styles": ["y"], "preset": ' + HUGE.encode() + b"}",
        b'{"content": "x", "styles": ["y"], "options": {"' + b"s" * 10_000 + b'": 1}}',
    ],
    ids=["nested", "not-utf8", "huge-ids", "nan-ids", "huge-preset", "long-option-name"],
)
def test_odd_request_bodies_are_400s(client: TestClient, body: bytes) -> None:
    assert_refused(client, post_raw(client, body))


def test_a_sane_job_is_still_accepted(client: TestClient, uploads: tuple[str, str]) -> None:
    r = post_raw(client, job_body(*uploads, json.dumps(TINY)))
    assert r.status_code == 201, r.text
