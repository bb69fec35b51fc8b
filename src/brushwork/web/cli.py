"""``brushwork serve``: parser and entry point, importable without the web extras.

The main CLI calls :func:`add_serve_parser` and :func:`run_serve`; Starlette and
uvicorn are imported only inside :func:`run_serve`, so ``brushwork --help``
works on an install without them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from brushwork.errors import EXIT_USAGE
from brushwork.web import MAX_QUEUE, PREVIEW_INTERVAL

if TYPE_CHECKING:
    from types import FrameType

    from starlette.applications import Starlette

    from brushwork.web.jobs import JobManager

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INSTALL_HINT = 'brushwork: error: the studio needs starlette and uvicorn: pip install -e ".[web]"'
#: Exit status after Ctrl-C: stopping with Ctrl-C is how the studio is meant to end.
EXIT_STOPPED = 0


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
        help=f"port to listen on, 0..65535; 0 picks a free one (default: {DEFAULT_PORT})",
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
        default=MAX_QUEUE,
        metavar="N",
        help=f"jobs that may wait at once; more are refused with HTTP 429 (default: {MAX_QUEUE})",
    )
    p.add_argument(
        "--preview-interval",
        type=float,
        default=PREVIEW_INTERVAL,
        metavar="SECONDS",
        help=f"time between live preview frames of a running job (default: {PREVIEW_INTERVAL})",
    )


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
        return _serve(args)
    except KeyboardInterrupt:  # Ctrl-C during start-up, before uvicorn handles it
        return EXIT_STOPPED


def _serve(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        _say(INSTALL_HINT, sys.stderr)
        return EXIT_USAGE
    from brushwork.web.app import create_app, is_loopback

    host: str = args.host
    if not 0 <= args.port <= 65535:
        # The OS would take the port modulo 65536 and listen somewhere else.
        return _fail(f"--port must be 0..65535 (0 picks a free one), got {args.port}")
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
    bound, port = sock.getsockname()[:2]
    # Judged by the address actually bound, so a name that resolves to loopback counts.
    loopback = is_loopback(bound)
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
        loopback_host=host if loopback else None,
    )
    shown = f"[{host}]" if ":" in host else host
    banner = f"brushwork studio: http://{shown}:{port}/  (data in {data_dir}; Ctrl-C stops)"
    jobs: JobManager = app.state.studio.jobs
    # uvicorn re-raises the Ctrl-C it handled; stopping is what was asked for.
    with contextlib.suppress(KeyboardInterrupt):
        _run_uvicorn(app, sock, banner, jobs)
    if not jobs.close(timeout=0):  # the app's shutdown already waited for the workers
        # A worker is still inside torch: one iteration at a large size takes long, and
        # a stuck one never returns. Interpreter teardown under a live torch thread
        # aborts with "terminate called without an active exception", so end the
        # process without it. Nothing is lost: a stopped run is never published and
        # every file is written atomically; only stdio buffers need flushing.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_STOPPED)
    return EXIT_STOPPED


def _run_uvicorn(app: Starlette, sock: socket.socket, banner: str, jobs: JobManager) -> None:
    import uvicorn

    class StudioServer(uvicorn.Server):
        """uvicorn, plus: the first Ctrl-C also ends event streams and running jobs,
        and the URL is printed once the server answers and handles Ctrl-C."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Otherwise uvicorn waits timeout_graceful_shutdown for open event streams
            # (they never end by themselves) and then cancels them with a traceback.
            jobs.stop_soon()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                _say(banner)

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=3)
    StudioServer(config).run(sockets=[sock])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brushwork serve", description="Start the local web studio.")
    _flags(p)
    return p


def serve_main(argv: list[str]) -> int:
    """``brushwork serve`` as a standalone entry point (``python -m brushwork.web``)."""
    return run_serve(build_parser().parse_args(argv))
