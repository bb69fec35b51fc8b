"""Load check for the studio (not a test): many jobs at once against a real server.

Starts ``python -m brushwork.web`` on loopback with a fresh data directory, lets
several client threads upload images and submit 20 tiny jobs at the same
moment, then follows every accepted job over its event stream. Each job must
either finish (``done``) or be refused with HTTP 429 and the queue-full message;
nothing may crash or hang. Reports the outcome, timings and the server's peak
RSS. Exit status 0 when every check held.

    python benchmarks/studio_load.py [--jobs 20] [--clients 5] [--max-queue 8]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from child import vm_hwm_bytes

HEADERS = {"X-Brushwork": "1"}


@dataclass
class Outcome:
    submitted: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    final: Counter[str] = field(default_factory=Counter)  # job status -> count
    refusals: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def request(url: str, data: bytes | None = None, ctype: str = "", timeout: float = 60) -> Any:
    """(status, parsed JSON body) of one request; HTTP errors are answers, not exceptions."""
    headers = {**HEADERS, **({"Content-Type": ctype} if ctype else {})}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def png(seed: int, w: int, h: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) % 32 * 8], axis=-1)
    img = np.clip(base + rng.integers(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def follow(base: str, jid: str, deadline: float) -> str:
    """Read the job's event stream until it ends; return the final status."""
    status = "?"
    timeout = max(1.0, deadline - time.monotonic())
    with urllib.request.urlopen(f"{base}/api/jobs/{jid}/events", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                status = json.loads(line[6:])["status"]
            if time.monotonic() > deadline:
                return "timeout"
    return status


def client(
    base: str,
    n_jobs: int,
    idx: int,
    start: threading.Barrier,
    options: dict[str, Any],
    out: Outcome,
    deadline: float,
) -> None:
    try:
        _, content = request(f"{base}/api/uploads?name=c{idx}.png", png(idx, 80, 64), "image/png")
        _, style = request(
            f"{base}/api/uploads?name=s{idx}.png", png(100 + idx, 48, 48), "image/png"
        )
        body = json.dumps({"content": content["id"], "styles": [style["id"]], "options": options})
        start.wait(timeout=60)  # every client submits at the same moment
        accepted = []
        for _ in range(n_jobs):
            status, answer = request(f"{base}/api/jobs", body.encode(), "application/json")
            with out.lock:
                out.submitted[status] += 1
                if status == 429:
                    out.refusals.append(answer.get("error", ""))
                elif status != 201:
                    out.errors.append(f"submit answered {status}: {answer}")
            if status == 201:
                accepted.append(answer["id"])
        for jid in accepted:
            final = follow(base, jid, deadline)
            with out.lock:
                out.final[final] += 1
    except Exception as e:  # a load check reports everything that went wrong
        with out.lock:
            out.errors.append(f"client {idx}: {type(e).__name__}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--max-queue", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=600, help="bound on the whole check (s)")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="brushwork-load-"))
    cmd = [
        sys.executable,
        "-m",
        "brushwork.web",
        "--port",
        "0",
        "--data-dir",
        str(data),
        "--max-queue",
        str(args.max_queue),
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    deadline = started + args.timeout
    ok = False
    try:
        banner = server.stdout.readline() if server.stdout else ""
        match = re.search(r"http://\S+", banner)
        if not match:
            print(f"server did not start: {banner!r}")
            return 1
        base = match.group(0).rstrip("/")
        print(f"server {base} (pid {server.pid}), data in {data}")

        out = Outcome()
        options = {"size": args.size, "iterations": args.iterations}
        barrier = threading.Barrier(args.clients)
        shares = [
            args.jobs // args.clients + (i < args.jobs % args.clients) for i in range(args.clients)
        ]
        threads = [
            threading.Thread(
                target=client, daemon=True, args=(base, n, i, barrier, options, out, deadline)
            )
            for i, n in enumerate(shares)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = sum(t.is_alive() for t in threads)
        wall = time.monotonic() - t0

        _, gallery = request(f"{base}/api/results")
        _, active = request(f"{base}/api/jobs")
        rss = vm_hwm_bytes(server.pid) / 2**20
        alive = server.poll() is None

        accepted = out.submitted[201]
        refused = out.submitted[429]
        print(
            f"submitted {args.jobs} jobs from {args.clients} clients at once "
            f"(max queue {args.max_queue}, {args.size} px, {args.iterations} iterations)"
        )
        print(
            f"  accepted (201): {accepted}   refused (429): {refused}   "
            f"other: {sum(v for k, v in out.submitted.items() if k not in (201, 429))}"
        )
        print(f"  final states of accepted jobs: {dict(out.final)}")
        print(
            f"  gallery entries: {len(gallery['results'])}   jobs still active: "
            f"{len(active['jobs'])}"
        )
        print(f"  wall time: {wall:.1f} s   ({wall / max(1, accepted):.2f} s per finished job)")
        print(f"  server peak RSS: {rss:.0f} MiB   server alive: {alive}   hung clients: {hung}")
        for e in out.errors[:10]:
            print(f"  error: {e}")

        ok = (
            not out.errors
            and not hung
            and alive
            and accepted + refused == args.jobs
            and out.final["done"] == accepted
            and len(gallery["results"]) == accepted
            and not active["jobs"]
            and all("queue is full" in r for r in out.refusals)
        )
        print("OK" if ok else "FAILED")
        return 0 if ok else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
