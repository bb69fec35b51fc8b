"""The studio's data directory (web/store.py), with real images."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from studio_helpers import png_record

from brushwork.errors import ImageError
from brushwork.web.store import Store, new_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def _publish(store: Store, image: Image.Image, finished: float, **entry: Any) -> str:
    rid = new_id()
    base = {"content": new_id(), "styles": [new_id()], "preset": None, "options": {"size": 32}}
    store.save_result(rid, image, {"seed": 0}, {**base, "finished": finished, **entry})
    return rid


def test_upload_is_decoded_for_real(store: Store, rainier: Path) -> None:
    data = rainier.read_bytes()
    meta = store.save_upload(data, "rainier.jpg", max_pixels=25_000_000)
    with Image.open(rainier) as img:
        assert (meta["width"], meta["height"]) == img.size
    assert meta["name"] == "rainier.jpg" and meta["bytes"] == len(data)
    assert store.upload_meta(meta["id"]) == meta
    assert store.upload_file(meta["id"]) is not None
    thumb = store.upload_file(meta["id"], ".thumb.jpg")
    assert thumb is not None and max(Image.open(thumb).size) <= 320


@pytest.mark.parametrize(
    ("cut", "words"),
    [
        (lambda data: data[: len(data) // 3], "truncated or corrupt"),
        (lambda data: b"GIF89a but not really" + data[100:200], "not an image"),
    ],
    ids=["truncated-jpeg", "garbage"],
)
def test_upload_that_does_not_decode_is_refused_and_not_kept(
    store: Store, rainier: Path, cut: Any, words: str
) -> None:
    with pytest.raises(ImageError) as e:
        store.save_upload(cut(rainier.read_bytes()), "holiday.jpg", max_pixels=25_000_000)
    assert words in str(e.value) and "'holiday.jpg'" in str(e.value)
    assert str(store.root) not in str(e.value)  # the client's name, never server paths
    assert list(store.uploads.iterdir()) == []


def test_upload_over_the_pixel_limit_is_refused(store: Store, rainier: Path) -> None:
    with pytest.raises(ImageError, match="over the limit"):
        store.save_upload(rainier.read_bytes(), "big.jpg", max_pixels=10_000)
    assert list(store.uploads.iterdir()) == []


def test_result_is_published_with_its_record(store: Store, rainier: Path) -> None:
    image = Image.open(rainier).convert("RGB").resize((48, 32))
    rid = _publish(store, image, 1.0, iterations_run=2)
    entry = store.result(rid)
    assert entry is not None and entry["id"] == rid
    assert (entry["width"], entry["height"], entry["record"]) == (48, 32, {"seed": 0})
    png = store.result_file(rid)
    assert png is not None and png_record(png.read_bytes()) == {"seed": 0}
    assert store.result_file(rid, ".thumb.jpg") is not None
    assert [e["id"] for e in store.gallery()] == [rid]


def test_result_that_fails_to_write_is_never_published(store: Store, rainier: Path) -> None:
    image = Image.open(rainier).convert("RGB").resize((48, 32))
    rid = new_id()
    (store.results / f"{rid}.png").mkdir()  # the image cannot be written in its place
    entry = {"content": new_id(), "styles": [], "preset": None, "options": {}, "finished": 1.0}
    with pytest.raises(OSError):
        store.save_result(rid, image, {}, entry)
    assert not (store.results / f"{rid}.json").exists()
    assert store.result(rid) is None and store.gallery() == []
    assert not [p for p in store.results.iterdir() if p.name.startswith(".")]


def test_crash_leftovers_never_show_and_are_cleaned_up(store: Store, rainier: Path) -> None:
    image = Image.open(rainier).convert("RGB").resize((48, 32))
    rid = _publish(store, image, 1.0)
    # An image whose entry was never written, and a temporary file of an atomic write.
    (store.results / f"{new_id()}.png").write_bytes(b"\x89PNG partial")
    (store.results / f".{new_id()}.json.abc.part").write_text("{")
    again = Store(store.root)
    assert [e["id"] for e in again.gallery()] == [rid]
    assert not [p for p in again.results.iterdir() if p.name.startswith(".")]


def test_gallery_is_newest_first(store: Store, rainier: Path) -> None:
    image = Image.open(rainier).convert("RGB").resize((48, 32))
    rids = [_publish(store, image, finished) for finished in (20.0, 30.0, 10.0)]
    assert [e["id"] for e in store.gallery()] == [rids[1], rids[0], rids[2]]
    assert [e["id"] for e in store.gallery(limit=2)] == [rids[1], rids[0]]


def _damage(store: Store, rid: str, how: str) -> None:
    path = store.results / f"{rid}.json"
    entry = json.loads(path.read_text())
    if how == "unreadable":
        path.unlink()
        path.mkdir()  # reading it fails (even as root, unlike a chmod)
        return
    text = {
        "finished-is-text": json.dumps({**entry, "finished": "yesterday"}),
        "finished-too-big": json.dumps({**entry, "finished": 10**400}),
        "finished-nan": json.dumps({**entry, "finished": float("nan")}),
        "a-list": json.dumps([entry]),
        "no-styles": json.dumps({k: v for k, v in entry.items() if k != "styles"}),
        "width-is-text": json.dumps({**entry, "width": "wide"}),
        "other-id": json.dumps({**entry, "id": new_id()}),
        "not-json": "{ half an entr",
        "not-utf8": "\udcff",
    }[how]
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


BROKEN = [
    "finished-is-text",
    "finished-too-big",
    "finished-nan",
    "a-list",
    "no-styles",
    "width-is-text",
    "other-id",
    "not-json",
    "not-utf8",
    "unreadable",
]


def test_broken_entries_are_skipped_and_logged(
    store: Store, rainier: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = Image.open(rainier).convert("RGB").resize((48, 32))
    good = _publish(store, image, 5.0)
    broken = {how: _publish(store, image, 9.0) for how in BROKEN}
    for how, rid in broken.items():
        _damage(store, rid, how)
    with caplog.at_level(logging.WARNING, logger="brushwork.web"):
        assert [e["id"] for e in store.gallery()] == [good]
    logged = caplog.text
    assert all(rid in logged for rid in broken.values()), logged
    assert all(store.result(rid) is None for rid in broken.values())
    assert store.result_file(broken["no-styles"]) is None
