"""``brushwork serve``: parser and entry point, importable without the web extras.

The main CLI calls :func:`add_serve_parser` and :func:`run_serve`; Starlette and
uvicorn are imported only inside :func:`run_serve`, so ``brushwork --help``
works on an install without them.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_USAGE = 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INSTALL_HINT = 'brushwork: error: the studio needs starlette and uvicorn: pip install -e ".[web]"'


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("brushwork")) / "studio"


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to the main CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="start the local web studio and print its URL"
    )
    _flags(p)
    return p


def _flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="uploads and the gallery live here (default: the user data dir)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=8,
        metavar="N",
        help="jobs that may wait at once; more are refused with HTTP 429 (default: 8)",
    )
    p.add_argument(
        "--preview-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="time between live preview frames of a running job (default: 0.5)",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _say(line: str, stream: TextIO | None = None) -> None:
    """The serve command's only output: one line, flushed (tests and scripts read it live)."""
    print(line, file=stream or sys.stdout, flush=True)  # noqa: T201


def _fail(message: str) -> int:
    _say(f"brushwork: error: {message}", sys.stderr)
    return EXIT_USAGE


def _listen(host: str, port: int) -> socket.socket | str:
    """A listening socket, or the reason there is none.

    Listening before uvicorn starts makes a busy port one clear line, lets port 0
    report the real port, and queues early connections instead of refusing them.
    """
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as e:
        return f"cannot resolve --host {host}: {e.strerror or e}"
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return sock


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C. Returns the exit status."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        _say(INSTALL_HINT, sys.stderr)
        return EXIT_USAGE
    from brushwork.web.app import create_app

    host: str = args.host
    if args.max_queue < 1:
        return _fail("--max-queue must be at least 1")
    if not args.preview_interval >= 0:
        return _fail("--preview-interval must be >= 0")
    data_dir: Path = args.data_dir or default_data_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return _fail(f"cannot create data directory '{data_dir}': {e.strerror}")
    sock = _listen(host, args.port)
    if isinstance(sock, str):
        return _fail(sock)
    port = sock.getsockname()[1]
    loopback = is_loopback(host)
    if not loopback:
        _say(
            f"brushwork: warning: listening on {host}, so other machines can reach this "
            "studio; it has no login. Use the default 127.0.0.1 unless you mean it.",
            sys.stderr,
        )
    app = create_app(
        data_dir,
        max_queue=args.max_queue,
        preview_interval=args.preview_interval,
        allowed_hosts=["127.0.0.1", "localhost"] if loopback and ":" not in host else None,
    )
    shown = f"[{host}]" if ":" in host else host
    _say(f"brushwork studio: http://{shown}:{port}/  (data in {data_dir}; Ctrl-C stops)")
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brushwork serve", description="Start the local web studio.")
    _flags(p)
    return p


def serve_main(argv: list[str]) -> int:
    """``brushwork serve`` as a standalone entry point (``python -m brushwork.web``)."""
    return run_serve(build_parser().parse_args(argv))
