"""The studio's data directory: uploads and the gallery of results.

Layout (every name is a server-made ID; nothing a client sends becomes a path)::

    uploads/<id>.orig        the uploaded bytes, kept only after they decoded
    uploads/<id>.thumb.jpg   a small preview for the page
    uploads/<id>.json        metadata, written last: its presence marks a complete upload
    results/<id>.png         the result with its run record as a PNG text chunk
    results/<id>.thumb.jpg
    results/<id>.json        gallery entry, written last: its presence publishes the result

Every file is written atomically (temporary file + rename), and readers only
look for ``<id>.json`` names, so a half-written result never shows up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from brushwork.errors import ImageError
from brushwork.images import atomic_write, encode_image, load_image

log = logging.getLogger("brushwork.web")

ID_RE = re.compile(r"^[0-9a-f]{32}$")
THUMB_SIDE = 320


def _number(v: object) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int past float's range
        return False


def _size(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _names(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


#: What the server and the page read of an entry, and what each value must be.
#: An entry on disk may be damaged or hand-edited: one that misses any of these
#: is treated as absent rather than breaking every listing it would appear in.
Checks = dict[str, Callable[[object], bool]]
UPLOAD_FIELDS: Checks = {
    "id": lambda v: isinstance(v, str),
    "name": lambda v: isinstance(v, str),
    "sha256": lambda v: isinstance(v, str),
    "width": _size,
    "height": _size,
}
RESULT_FIELDS: Checks = {
    "id": lambda v: isinstance(v, str),
    "finished": _number,
    "width": _size,
    "height": _size,
    "content": lambda v: isinstance(v, str),
    "styles": _names,
    "preset": lambda v: v is None or isinstance(v, str),
    "options": lambda v: isinstance(v, dict),
    "record": lambda v: isinstance(v, dict),
}


def new_id() -> str:
    return uuid.uuid4().hex


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def display_name(name: str | None) -> str:
    """A client's file name, for display and the run record only: no directories, no controls."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return clean[:100] or "upload"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def _thumbnail(img: Image.Image) -> bytes:
    small = img.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return encode_image(small, "JPEG")


class Store:
    """Uploads and results under one data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"
        self.results = root / "results"
        for d in (self.uploads, self.results):
            d.mkdir(parents=True, exist_ok=True)
            # Leftovers of a crash mid-write: temporary names never match an ID.
            for junk in d.glob(".*"):
                if junk.is_file():
                    junk.unlink(missing_ok=True)

    # -- uploads ---------------------------------------------------------------

    def save_upload(self, data: bytes, name: str, *, max_pixels: int) -> dict[str, Any]:
        """Decode ``data`` for real; keep it only if it is a usable image.

        Raises :class:`ImageError` with a message that names the client's file,
        never the server's paths.
        """
        uid = new_id()
        tmp = self.uploads / f".incoming-{uid}"
        tmp.write_bytes(data)
        try:
            try:
                img = load_image(tmp, "upload", max_pixels=max_pixels)
            except ImageError as e:
                raise ImageError(str(e).replace(f"upload '{tmp}'", f"'{name}'")) from None
            atomic_write(self.uploads / f"{uid}.thumb.jpg", _thumbnail(img))
            os.replace(tmp, self.uploads / f"{uid}.orig")
        finally:
            tmp.unlink(missing_ok=True)
        meta = {
            "id": uid,
            "name": name,
            "width": img.width,
            "height": img.height,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "created": time.time(),
        }
        _write_json(self.uploads / f"{uid}.json", meta)
        return meta

    def upload_meta(self, uid: object) -> dict[str, Any] | None:
        return _read_entry(self.uploads, uid, ".orig", UPLOAD_FIELDS)

    def upload_file(self, uid: object, suffix: str = ".orig") -> Path | None:
        if self.upload_meta(uid) is None:
            return None
        path = self.uploads / f"{uid}{suffix}"
        return path if path.is_file() else None

    # -- results ---------------------------------------------------------------

    def save_result(
        self, rid: str, image: Image.Image, record: dict[str, Any], entry: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the PNG (record embedded) and thumbnail, then publish the gallery entry."""
        if not valid_id(rid):
            raise ValueError(f"not a server-made id: {rid!r}")
        atomic_write(self.results / f"{rid}.png", encode_image(image, "PNG", record))
        atomic_write(self.results / f"{rid}.thumb.jpg", _thumbnail(image))
        full = {**entry, "id": rid, "width": image.width, "height": image.height, "record": record}
        _write_json(self.results / f"{rid}.json", full)
        return full

    def result(self, rid: object) -> dict[str, Any] | None:
        return _read_entry(self.results, rid, ".png", RESULT_FIELDS)

    def result_file(self, rid: object, suffix: str = ".png") -> Path | None:
        if self.result(rid) is None:
            return None
        path = self.results / f"{rid}{suffix}"
        return path if path.is_file() else None

    def gallery(self, limit: int = 200) -> list[dict[str, Any]]:
        """Published results, newest first; damaged entries are left out (and logged)."""
        entries = []
        for path in self.results.glob("*.json"):
            entry = self.result(path.stem)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: (float(e["finished"]), e["id"]), reverse=True)
        return entries[:limit]


def _read_entry(folder: Path, eid: object, payload: str, fields: Checks) -> dict[str, Any] | None:
    """The JSON entry for ``eid``, or None unless the ID is well-formed, the payload
    file exists and the entry has every one of ``fields`` (a damaged one is logged)."""
    if not valid_id(eid):
        return None
    path = folder / f"{eid}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as e:
        log.warning("skipping %s: unreadable (%s)", path, e)
        return None
    if not (folder / f"{eid}{payload}").is_file():
        return None
    if not isinstance(data, dict):
        log.warning("skipping %s: not a JSON object", path)
        return None
    bad = [name for name, ok in fields.items() if not ok(data.get(name))]
    if bad or data["id"] != eid:
        log.warning("skipping %s: missing or unusable %s", path, ", ".join(bad) or "id")
        return None
    return data
