"""``brushwork serve``: wiring, the missing-extras message, host and port handling."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from studio_helpers import running_server

from brushwork.web.cli import add_serve_parser

# Makes ``import starlette`` / ``import uvicorn`` fail, as on an install without the extra.
WITHOUT_WEB = "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None; "


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
