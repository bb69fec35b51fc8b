"""``brushwork serve`` (web/cli.py): wiring, the missing-extras message, host, port, Ctrl-C."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from studio_helpers import Server, running_server

from brushwork.errors import EXIT_USAGE
from brushwork.web.cli import add_serve_parser, serve_main

# Makes ``import starlette`` / ``import uvicorn`` fail, as on an install without the extra.
WITHOUT_WEB = "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "
#: What an unclean exit leaves on stderr: a Python traceback, uvicorn cancelling
#: open streams, or C++ aborting under a torch thread at interpreter teardown.
UNCLEAN = ("Traceback", "terminate called", "Cancel", "ERROR")


def test_serve_parser_plugs_into_the_main_cli() -> None:
    parser = argparse.ArgumentParser(prog="brushwork")
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--data-dir", "d"])
    assert (args.command, args.host, args.port, args.data_dir) == (
        "serve",
        "127.0.0.1",
        8000,
        Path("d"),
    )


def test_core_package_imports_without_web_extras() -> None:
    code = WITHOUT_WEB + "import brushwork.engine, brushwork.cli, brushwork.web, brushwork.web.cli"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extras_give_one_line_and_status_2() -> None:
    code = WITHOUT_WEB + "from brushwork.web.cli import serve_main; sys.exit(serve_main([]))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and 'pip install -e ".[web]"' in r.stderr


def test_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        cmd = [sys.executable, "-m", "brushwork.web", "--port", port, "--data-dir", str(tmp_path)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "cannot listen on 127.0.0.1:" in r.stderr


@pytest.mark.parametrize("offset", [65536, -1], ids=["past-65535", "negative"])
def test_port_outside_0_to_65535_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], offset: int
) -> None:
    with socket.socket() as taken:
        # 65536 + a port in use: if the port were taken modulo 65536 (the OS's way),
        # the server would find it busy and return, instead of serving forever.
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1] + offset if offset > 0 else offset
        code = serve_main(["--port", str(port), "--data-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("brushwork: error: --port must be 0..65535") and str(port) in err


def test_loopback_by_default_and_warning_elsewhere(tmp_path: Path) -> None:
    with running_server(tmp_path / "a") as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "/api/options", timeout=30) as r:
            assert r.status == 200
        assert not any("warning" in line for line in server.stderr)
    with running_server(tmp_path / "b", "--host", "0.0.0.0") as server:
        assert server.url.startswith("http://0.0.0.0:")
        deadline = time.monotonic() + 10  # stderr is read by another thread
        while not any("warning" in line for line in server.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("warning: listening on 0.0.0.0" in line for line in server.stderr)
        assert server.request("/api/options", host="anything.example")[0] == 200


def test_own_url_answers_on_any_loopback_address(tmp_path: Path) -> None:
    with running_server(tmp_path, "--host", "127.0.0.2") as server:
        assert server.url.startswith("http://127.0.0.2:")
        assert server.request("/api/options")[0] == 200  # the printed URL itself
        port = server.url.rsplit(":", 1)[1]
        assert server.request("/api/options", host=f"localhost:{port}")[0] == 200
        status, body = server.request("/api/options", host="evil.example")
        assert status == 400 and b"localhost" in body


def test_ipv6_loopback_refuses_foreign_host_names(tmp_path: Path) -> None:
    # This machine (and CI, which runs on it) has IPv6 loopback: no skip, a real bind.
    with running_server(tmp_path, "--host", "::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert server.request("/api/options")[0] == 200  # Host: [::1]:port
        port = server.url.rsplit(":", 1)[1]
        assert server.request("/api/options", host="evil.example")[0] == 400
        assert server.request("/api/options", host=f"evil.example:{port}")[0] == 400


def _start_job(server: Server, small_pair: tuple[Path, Path], **options: Any) -> str:
    """Upload the pair, submit a job, return its ID once it runs."""
    content, style = (
        json.loads(server.request(f"/api/uploads?name={p.name}", p.read_bytes())[1])["id"]
        for p in small_pair
    )
    job = server.post_json("/api/jobs", {"content": content, "styles": [style], "options": options})
    deadline = time.monotonic() + 120
    while json.loads(server.request(f"/api/jobs/{job['id']}")[1])["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    return str(job["id"])


def test_ctrl_c_with_an_event_stream_open_exits_quietly(
    tmp_path: Path, small_pair: tuple[Path, Path]
) -> None:
    with running_server(tmp_path) as server:
        # Long enough to still run at Ctrl-C; stopping it is part of shutting down.
        jid = _start_job(server, small_pair, size=64, iterations=50_000)
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", f"/api/jobs/{jid}/events")
        stream = conn.getresponse()
        assert stream.status == 200
        assert stream.readline() == b"retry: 1000\n"
        assert stream.readline() == b"\n"
        # Wait (without consuming it) for the first state event: a Ctrl-C sent before
        # the server wrote it raced the stream, and the check below then failed 1 in 3.
        stream.peek(1)

        code, stderr = server.interrupt()
        # The stream ended as a complete response (a cancelled one would be cut off).
        rest = stream.read().decode()
        conn.close()
    assert code == 0, stderr
    assert not [w for w in UNCLEAN if w in stderr], stderr
    assert "event: state" in rest


def test_ctrl_c_with_a_job_inside_a_long_step_exits_quietly(
    tmp_path: Path, small_pair: tuple[Path, Path]
) -> None:
    with running_server(tmp_path) as server:
        # At the studio's largest size the run's set-up alone takes seconds on a CPU,
        # with no point at which it could notice a cancel: the worker stays in torch.
        _start_job(server, small_pair, size=2048, iterations=5)
        code, stderr = server.interrupt()
    assert code == 0, stderr
    assert not [w for w in UNCLEAN if w in stderr], stderr
