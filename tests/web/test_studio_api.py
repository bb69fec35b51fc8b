"""The studio's HTTP API (web/app.py), through Starlette's TestClient, with real tiny jobs."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from studio_helpers import (
    TINY,
    H,
    MakeClient,
    content_image,
    finished,
    png_bytes,
    png_record,
    submit,
    upload,
    wait_for,
)

from brushwork.config import StyleConfig
from brushwork.web.app import create_app


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse a Server-Sent Events body into the JSON of its ``state`` events."""
    out = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if "event: state" in lines:
            data = "".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
            out.append(json.loads(data))
    return out


def test_options_follow_style_config(client: Any) -> None:
    body = client.get("/api/options").json()
    fields = {f["name"]: f for f in body["fields"]}
    config_names = {f.name for f in dataclasses.fields(StyleConfig)}
    assert set(fields) <= config_names
    assert {"size", "iterations", "content_weight", "style_weight", "tv_weight"} <= set(fields)
    assert fields["model"]["kind"] == "select" and "vgg16" in fields["model"]["choices"]
    assert fields["size"]["kind"] == "int" and fields["size"]["primary"]
    assert fields["style_weight"]["nullable"] and fields["style_weight"]["kind"] == "float"
    assert fields["channels_last"]["kind"] == "bool"
    assert "weights" not in fields  # a file path: never settable from a browser
    assert "stages" not in fields
    assert body["presets"]["d2l"]["stages"][0]["size"] == 225
    assert all(
        f["kind"] in {"select", "int", "float", "slider", "bool", "list", "floats"}
        for f in fields.values()
    )
    assert body["limits"]["max_styles"] >= 2


def test_upload_and_run_tiny_job(client: Any, content_png: bytes, style_png: bytes) -> None:
    c = upload(client, content_png, "photo.png")
    s = upload(client, style_png, "painting.png")
    assert (c["width"], c["height"]) == (80, 64)
    assert client.get(f"/api/uploads/{c['id']}/thumb").headers["content-type"] == "image/jpeg"

    r = submit(client, c["id"], s["id"], iterations=4, style_weight=2000.0)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] in ("queued", "running")

    # The event stream ends with the job: every iteration's losses arrive, in order.
    events = sse_events(client.get(f"/api/jobs/{job['id']}/events").text)
    final = events[-1]
    assert final["status"] == "done", final
    points = [p for e in events for p in e["points"]]
    assert [p[0] for p in points] == [1, 2, 3, 4]
    assert all(v is not None and v >= 0 for p in points for v in p[1:])
    assert final["progress"]["total_iterations"] == 4
    assert final["progress"]["eta"] == 0
    assert final["preview_version"] >= 4  # preview_interval=0: a frame per iteration

    entry = client.get(f"/api/results/{job['id']}").json()
    assert entry["options"] == {**TINY, "iterations": 4, "style_weight": 2000.0}
    assert (entry["width"], entry["height"]) == (64, 51)
    r = client.get(f"/api/results/{job['id']}/image", params={"download": "1"})
    assert r.headers["content-type"] == "image/png"
    assert "attachment" in r.headers["content-disposition"]
    record = png_record(r.content)
    assert record["config"]["size"] == 64 and record["config"]["style_weight"] == 2000.0
    assert record["inputs"]["content"] == "photo.png"
    assert record["inputs"]["style_sha256"] == s["sha256"]
    assert record["iterations_run"] == 4
    gallery = client.get("/api/results").json()["results"]
    assert [g["id"] for g in gallery] == [job["id"]]


def test_blend_of_two_styles(client: Any, content_png: bytes, style_png: bytes) -> None:
    c = upload(client, content_png)["id"]
    s1 = upload(client, style_png, "stripes.png")
    s2 = upload(client, png_bytes(content_image(40, 40)), "disc.png")
    body = {
        "content": c,
        "styles": [s1["id"], s2["id"]],
        "options": {**TINY, "style_blend": [0.75, 0.25]},
    }
    r = client.post("/api/jobs", json=body, headers=H)
    assert r.status_code == 201, r.text
    assert wait_for(client, r.json()["id"], finished)["status"] == "done"
    entry = client.get(f"/api/results/{r.json()['id']}").json()
    assert entry["styles"] == [s1["id"], s2["id"]]
    assert entry["record"]["config"]["style_blend"] == [0.75, 0.25]
    assert entry["record"]["inputs"]["styles"] == ["stripes.png", "disc.png"]

    too_many = {**body, "styles": [s1["id"]] * 5, "options": TINY}
    r = client.post("/api/jobs", json=too_many, headers=H)
    assert r.status_code == 400 and "at most 4 style" in r.json()["error"]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (lambda png: b"this is plainly not an image, whatever its name says", 400, "not an image"),
        (_truncated, 400, "truncated or corrupt"),
        (lambda png: b"", 400, "empty"),
        (lambda png: png + b"\0" * 40_000, 413, "upload limit"),
        (lambda png: png_bytes(content_image(400, 300)), 400, "over the limit"),
    ],
    ids=["not-an-image", "truncated", "empty", "too-many-bytes", "too-many-pixels"],
)
def test_bad_uploads_are_refused_readably(
    make_client: MakeClient,
    tmp_path: Path,
    content_png: bytes,
    payload: Any,
    status: int,
    words: str,
) -> None:
    client = make_client(max_upload_bytes=30_000, max_pixels=100_000)
    r = client.post(
        "/api/uploads", params={"name": "holiday.png"}, content=payload(content_png), headers=H
    )
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert words in message
    assert str(tmp_path) not in message  # names the client's file, never server paths
    # Nothing of the bad upload stays behind, and the server keeps working.
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
    assert upload(client, content_png)["width"] == 80


def test_queue_order_and_positions(
    make_client: MakeClient, gate: threading.Event, content_png: bytes, style_png: bytes
) -> None:
    client = make_client(gate=gate)
    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    ids = [submit(client, c, s).json()["id"] for _ in range(3)]
    states = [client.get(f"/api/jobs/{j}").json() for j in ids]
    assert [st["position"] for st in states] == [1, 2, 3]
    assert [st["status"] for st in states] == ["queued"] * 3
    assert [j["id"] for j in client.get("/api/jobs").json()["jobs"]] == ids

    # Leaving the line moves everyone behind up by one.
    assert client.post(f"/api/jobs/{ids[0]}/cancel", headers=H).json()["status"] == "cancelled"
    assert [client.get(f"/api/jobs/{j}").json()["position"] for j in ids] == [None, 1, 2]

    gate.set()
    done = [wait_for(client, j, finished) for j in ids[1:]]
    assert [d["status"] for d in done] == ["done", "done"]
    assert done[0]["finished"] <= done[1]["started"]  # one at a time, in order
    gallery = [g["id"] for g in client.get("/api/results").json()["results"]]
    assert sorted(gallery) == sorted(ids[1:])


def test_cancel_running_job_and_position_behind_it(
    client: Any, content_png: bytes, style_png: bytes
) -> None:
    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    long_id = submit(client, c, s, iterations=5000).json()["id"]
    wait_for(client, long_id, lambda st: st["progress"] is not None)
    behind = submit(client, c, s).json()
    assert behind["position"] == 1 and behind["running_ahead"] == 1
    assert client.get(f"/api/jobs/{long_id}").json()["position"] == 0

    r = client.post(f"/api/jobs/{long_id}/cancel", headers=H)
    assert r.status_code == 200
    state = wait_for(client, long_id, finished)
    assert state["status"] == "cancelled" and state["error"] is None
    assert state["progress"]["iteration"] < 5000
    assert wait_for(client, behind["id"], finished)["status"] == "done"
    gallery = [g["id"] for g in client.get("/api/results").json()["results"]]
    assert gallery == [behind["id"]]  # a cancelled run is not published
    assert client.get(f"/api/results/{long_id}").status_code == 404


def test_full_queue_refuses_with_429(
    make_client: MakeClient, gate: threading.Event, content_png: bytes, style_png: bytes
) -> None:
    client = make_client(gate=gate, max_queue=2)
    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    accepted = [submit(client, c, s) for _ in range(2)]
    assert [r.status_code for r in accepted] == [201, 201]
    refused = submit(client, c, s)
    assert refused.status_code == 429
    assert "queue is full" in refused.json()["error"]
    assert refused.headers["retry-after"]
    assert len(client.get("/api/jobs").json()["jobs"]) == 2  # the refused one is nowhere
    client.post(f"/api/jobs/{accepted[0].json()['id']}/cancel", headers=H)
    assert submit(client, c, s).status_code == 201


def test_gallery_survives_restart_and_reruns(
    make_client: MakeClient, tmp_path: Path, content_png: bytes, style_png: bytes
) -> None:
    data = tmp_path / "studio"
    with TestClient(create_app(data, preview_interval=0.0)) as first:  # shut down on exit
        c, s = upload(first, content_png)["id"], upload(first, style_png)["id"]
        jid = submit(first, c, s, seed=7).json()["id"]
        assert wait_for(first, jid, finished)["status"] == "done"

    # Half-written leftovers of a crash must not show up: a PNG without its
    # entry, and a temporary file of an atomic write.
    (data / "results" / ("f" * 32 + ".png")).write_bytes(b"\x89PNG partial")
    (data / "results" / f".{'e' * 32}.json.abc.part").write_text("{")

    second = make_client(data)
    gallery = second.get("/api/results").json()["results"]
    assert [g["id"] for g in gallery] == [jid]
    entry = gallery[0]
    assert png_record(second.get(f"/api/results/{jid}/image").content)["config"]["seed"] == 7

    # Re-run from the stored parameters: same inputs, same settings, same config.
    body = {k: entry[k] for k in ("content", "styles", "preset", "options")}
    again = second.post("/api/jobs", json=body, headers=H).json()
    assert wait_for(second, again["id"], finished)["status"] == "done"
    rerun = second.get(f"/api/results/{again['id']}").json()
    assert rerun["record"]["config"] == entry["record"]["config"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/results/../../../../etc/passwd",
        "/api/results/..%2f..%2f..%2fetc%2fpasswd/image",
        "/api/results/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/uploads/..%2fresults%2fx/thumb",
        "/api/uploads/" + "A" * 32,
        "/api/jobs/" + "0" * 31 + "/events",
        "/api/results/" + "0" * 32 + "%00/image",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2f..%2f..%2fetc%2fpasswd",
    ],
)
def test_no_path_traversal_through_urls(client: Any, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert b"root:" not in r.content and b"create_app" not in r.content


def test_no_path_traversal_through_job_fields(
    client: Any, tmp_path: Path, content_png: bytes, style_png: bytes
) -> None:
    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    bad_bodies: list[dict[str, Any]] = [
        {"content": "../../etc/passwd", "styles": [s]},
        {"content": c, "styles": ["/etc/passwd"]},
        {"content": c, "styles": [s], "preset": "../d2l"},
        {"content": c, "styles": [s], "preset": ["d2l"]},
        {"content": [c], "styles": [s]},
        {"content": c, "styles": [{"id": s}]},
        {"content": c, "styles": [s], "options": ["size", 64]},
        {"content": c, "styles": [s], "options": {"weights": "/etc/passwd"}},
        {"content": c, "styles": [s], "options": {"model_weights": "/etc/passwd"}},
        {"content": c, "styles": [s], "options": {"style_layers": ["../../conv1_1"]}},
        {"content": c, "styles": [s], "options": {"stages": [[64, 1, 1]]}},
        {"content": c, "styles": [s], "path": "/tmp/x"},
    ]
    for body in bad_bodies:
        r = client.post("/api/jobs", json=body, headers=H)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]
    assert client.get("/api/jobs").json()["jobs"] == []

    # A client's file name is only a label: the file lands under a server-made ID.
    meta = upload(client, content_png, name="../../../evil.png")
    assert meta["name"] == "evil.png"
    assert not (tmp_path / "evil.png").exists() and not Path("evil.png").exists()
    stored = sorted(p.name for p in (tmp_path / "data" / "uploads").iterdir())
    assert all(name.split(".")[0] in (c, s, meta["id"]) for name in stored)


def test_bad_options_are_400_with_reason(client: Any, content_png: bytes, style_png: bytes) -> None:
    from brushwork.web.app import memory_max_side

    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    # The studio's limit is what the memory model fits on this machine (tiled).
    limit = memory_max_side()
    assert 512 <= limit < 32768
    cases: dict[str, dict[str, Any]] = {
        "size must be >= 16": {"size": 8},
        "over this studio's limit": {"size": limit + 1},
        "lr must be > 0": {"lr": 0},
        "must be one of": {"model": "resnet"},
        "must be a whole number": {"iterations": 2.5},
        "tv weight": {"tv_weight": "lots"},
        "must be true or false": {"channels_last": "yes"},
        "style blend": {"style_blend": [1.0, None]},
        "'lots' is not a number": {"style_blend": "1,lots"},
    }
    for words, options in cases.items():
        r = submit(client, c, s, **options)
        assert r.status_code == 400 and words in r.json()["error"], (options, r.text)
    r = client.post("/api/jobs", content=b"{not json", headers=H)
    assert r.status_code == 400


def test_state_changes_need_the_studio_header(client: Any, content_png: bytes) -> None:
    r = client.post("/api/uploads", content=content_png)
    assert r.status_code == 403
    assert client.post("/api/jobs", json={}).status_code == 403


def test_page_and_static_files_are_served(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "brushwork studio" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in ("app.js", "chart.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


LOOPBACK_NAMES = [
    "localhost",
    "localhost:8000",
    "LocalHost:8000",
    "127.0.0.1:8000",
    "127.0.0.2",
    "127.1.2.3:8000",
    "[::1]:8000",
    "[::1]",
    "[0:0:0:0:0:0:0:1]:80",
]
FOREIGN_NAMES = [
    "evil.example",
    "evil.example:8000",
    "127.0.0.1.evil.example",
    "localhost.evil.example:8000",
    "10.0.0.1:8000",
    "[::1]evil:80",
    "[evil.example]:80",
    "[::2]:8000",
    "::1",
    "127.0.0.1:80:80",
    "",
]


@pytest.mark.parametrize("listen", ["::1", "127.0.0.2", "127.0.0.1", "localhost"])
def test_host_guard_holds_on_every_loopback_address(make_client: MakeClient, listen: str) -> None:
    client = make_client(loopback_host=listen)
    own = f"[{listen}]:8000" if ":" in listen else f"{listen}:8000"
    for host in [own, *LOOPBACK_NAMES]:
        assert client.get("/api/options", headers={"host": host}).status_code == 200, host
    for host in FOREIGN_NAMES:
        r = client.get("/api/options", headers={"host": host})
        assert r.status_code == 400, host
        assert "localhost" in r.json()["error"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_host_guard_allows_the_name_it_listens_on(make_client: MakeClient) -> None:
    client = make_client(loopback_host="studio.internal")  # a name that resolved to loopback
    assert client.get("/", headers={"host": "studio.internal:8000"}).status_code == 200
    assert client.get("/", headers={"host": "evil.example:8000"}).status_code == 400


def test_without_a_loopback_host_any_host_is_answered(make_client: MakeClient) -> None:
    client = make_client()  # as when listening on 0.0.0.0 (with the warning)
    assert client.get("/api/options", headers={"host": "evil.example"}).status_code == 200


def test_broken_gallery_entries_do_not_break_the_gallery(
    client: Any, tmp_path: Path, content_png: bytes, style_png: bytes
) -> None:
    c, s = upload(client, content_png)["id"], upload(client, style_png)["id"]
    jids = [submit(client, c, s, seed=i).json()["id"] for i in range(3)]
    assert [wait_for(client, j, finished)["status"] for j in jids] == ["done"] * 3
    results = tmp_path / "data" / "results"
    entry = json.loads((results / f"{jids[0]}.json").read_text())
    (results / f"{jids[0]}.json").write_text(json.dumps({**entry, "finished": "yesterday"}))
    (results / f"{jids[1]}.json").write_text(json.dumps([entry]))
    good = jids[2]

    r = client.get("/api/results")
    assert r.status_code == 200
    assert [g["id"] for g in r.json()["results"]] == [good]
    assert client.get(f"/api/results/{jids[0]}").status_code == 404
    assert client.get(f"/api/results/{good}/image").status_code == 200
