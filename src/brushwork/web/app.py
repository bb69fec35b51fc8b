"""The studio's HTTP API and page, as a Starlette app made by :func:`create_app`.

Routes (IDs are 32 lowercase hex digits made by the server; anything else is a 404)::

    GET  /                          the page
    GET  /api/options               form fields (from StyleConfig), presets, limits
    POST /api/uploads?name=N        raw image bytes -> upload ID (400 bad image, 413 too big)
    GET  /api/uploads/{id}[/thumb]  upload metadata / thumbnail
    POST /api/jobs                  {"content": id, "styles": [id], "preset", "options"}
                                    -> 201 job (400 bad request, 429 queue full)
    GET  /api/jobs                  jobs waiting or running
    GET  /api/jobs/{id}             job state; /events streams it (Server-Sent Events)
    GET  /api/jobs/{id}/preview     latest preview frame (JPEG)
    POST /api/jobs/{id}/cancel
    GET  /api/results               the gallery, newest first
    GET  /api/results/{id}          one entry; /image the PNG (?download=1), /thumb
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brushwork import __version__
from brushwork.devices import resolve_device
from brushwork.errors import BrushworkError, ImageError
from brushwork.web import MAX_QUEUE, PREVIEW_INTERVAL
from brushwork.web.forms import build_config, form_fields, parse_options, presets_json
from brushwork.web.jobs import TERMINAL, JobManager, JobRequest, QueueFull
from brushwork.web.store import Store, display_name, valid_id

log = logging.getLogger("brushwork.web")

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_UPLOAD_PIXELS = 25_000_000
#: The studio's size limit when the memory model cannot say (no memory figure).
MAX_SIDE = 2048
#: Style images one job may blend (the engine's ``style_blend`` weighs them);
#: the page offers up to this many style slots.
MAX_STYLES = 4
#: Cross-site pages can send simple POSTs to localhost; they cannot add a custom
#: header without a CORS preflight this server never grants.
CSRF_HEADER = "x-brushwork"
_JSON_BODY_LIMIT = 64 * 1024
#: How long shutdown waits for running jobs to stop. A job stops at its next
#: iteration, which at 2048 px on a CPU can take half a minute; a cancelled run
#: is never published, so waiting longer than this would only delay Ctrl-C.
SHUTDOWN_WAIT = 3.0


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class _SecurityHeaders:
    """Adds no-sniff and a same-origin-only content policy to every response."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (
            b"content-security-policy",
            b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
            b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address literal (any of 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _normal_host(host: str) -> str:
    """One spelling per host: ``0:0::1`` and ``::1`` compare equal, names ignore case."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


#: A Host header: a bracketed IPv6 literal, or a name or IPv4 address; then an optional port.
_HOST_HEADER = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:]+))(?::[0-9]{0,5})?")


def host_header_name(value: str) -> str | None:
    """The host of a Host header without its port (see :func:`_normal_host`); None if malformed."""
    m = _HOST_HEADER.fullmatch(value)
    if m is None:
        return None
    if m["v6"] is not None:
        try:
            return str(ipaddress.IPv6Address(m["v6"]))
        except ValueError:
            return None
    return _normal_host(m["name"])


class _LoopbackHostGuard:
    """Answers only requests whose Host header names this machine (against DNS rebinding).

    A page on ``evil.example`` that re-points its name at 127.0.0.1 reaches the
    studio with ``Host: evil.example``; accepting only ``localhost``, the address
    the server listens on and loopback literals stops it. Starlette's
    TrustedHostMiddleware is not used because it splits the header on the first
    ':' and so cannot read ``[::1]:8000``.
    """

    def __init__(self, app: ASGIApp, listen_host: str) -> None:
        self.app = app
        self.allowed = {"localhost", _normal_host(listen_host)}

    def allows(self, header: str) -> bool:
        name = host_header_name(header)
        return name is not None and (name in self.allowed or is_loopback(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":  # the studio has no websocket routes
            header = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not self.allows(header):
                message = "this studio answers only to localhost and loopback addresses"
                await error(400, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Studio:
    """The handlers, bound to one data directory and one job manager."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_queue: int,
        max_upload_bytes: int,
        max_pixels: int,
        max_side: int,
        max_styles: int,
        gate: threading.Event | None,
        preview_interval: float,
        poll_interval: float,
    ) -> None:
        self.store = Store(data_dir)
        self.jobs = JobManager(
            self.store, max_queue=max_queue, gate=gate, preview_interval=preview_interval
        )
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side
        self.max_styles = max_styles
        self.poll_interval = poll_interval

    # -- page and options ------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def options(self, request: Request) -> Response:
        return JSONResponse(
            {
                "version": __version__,
                "fields": [f.to_json() for f in form_fields()],
                "presets": presets_json(),
                "limits": {
                    "max_upload_bytes": self.max_upload_bytes,
                    "max_pixels": self.max_pixels,
                    "max_side": self.max_side,
                    "max_queue": self.jobs.max_queue,
                    "max_styles": self.max_styles,
                },
            }
        )

    # -- uploads ---------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        limit = self.max_upload_bytes
        too_big = f"the file is larger than the upload limit of {limit / 2**20:.0f} MB"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return error(413, too_big)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return error(413, too_big)
        name = display_name(request.query_params.get("name"))
        if not body:
            return error(400, f"'{name}' is empty (0 bytes)")
        try:
            meta = await run_in_threadpool(
                self.store.save_upload, bytes(body), name, max_pixels=self.max_pixels
            )
        except ImageError as e:
            return error(400, str(e))
        return JSONResponse(meta, status_code=201)

    async def upload_meta(self, request: Request) -> Response:
        meta = self.store.upload_meta(request.path_params["id"])
        if meta is None:
            return error(404, "no such upload")
        return JSONResponse(meta)

    async def upload_thumb(self, request: Request) -> Response:
        path = self.store.upload_file(request.path_params["id"], ".thumb.jpg")
        if path is None:
            return error(404, "no such upload")
        return FileResponse(path, media_type="image/jpeg")

    # -- jobs ------------------------------------------------------------------

    async def submit(self, request: Request) -> Response:
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        try:
            job_request, inputs = self._parse_job(body)
            config = build_config(
                job_request.preset,
                job_request.options,
                max_side=self.max_side,
                n_styles=len(job_request.styles),
            )
            device = resolve_device(config.device).type
        except BrushworkError as e:
            return error(400, str(e))
        except (ArithmeticError, ValueError) as e:
            # JSON numbers have no size limit: a 400-digit integer arrives as a Python
            # int that float() and math.isfinite() refuse with OverflowError. Whatever
            # value the option checks let through, the request is wrong, not the server.
            log.info("refused a job: %s: %s", type(e).__name__, e)
            return error(400, f"an option value is out of range or unusable ({e})")
        try:
            job = self.jobs.submit(job_request, config, device, inputs)
        except QueueFull as e:
            return error(429, str(e), **{"retry-after": "10"})
        return JSONResponse(self.jobs.snapshot(job), status_code=201)

    def _parse_job(self, body: Any) -> tuple[JobRequest, dict[str, Any]]:
        if not isinstance(body, dict):
            raise BrushworkError("the request must be a JSON object")
        unknown = set(body) - {"content", "styles", "preset", "options"}
        if unknown:
            raise BrushworkError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        content = body.get("content")
        styles = body.get("styles")
        if isinstance(styles, str):
            styles = [styles]
        if content is None:
            raise BrushworkError("choose a content image")
        if not isinstance(styles, list) or not styles:
            raise BrushworkError("choose a style image")
        if len(styles) > self.max_styles:
            raise BrushworkError(
                f"at most {self.max_styles} style image(s) per job, got {len(styles)}"
            )
        metas = [self.store.upload_meta(uid) for uid in [content, *styles]]
        if any(m is None for m in metas):
            raise BrushworkError("an image was not found on the server; upload it again")
        options = parse_options(body.get("options") or {})
        c, *s = [m for m in metas if m is not None]
        inputs = {
            "content": c["name"],
            "content_sha256": c["sha256"],
            "content_upload": c["id"],
            "style": s[0]["name"],
            "style_sha256": s[0]["sha256"],
            "styles": [m["name"] for m in s],
            "styles_sha256": [m["sha256"] for m in s],
            "style_uploads": [m["id"] for m in s],
        }
        return JobRequest(c["id"], tuple(m["id"] for m in s), body.get("preset"), options), inputs

    async def _json_body(self, request: Request) -> Any:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _JSON_BODY_LIMIT:
                return error(413, "request too large")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            return error(400, "the request body is not valid JSON")

    async def list_jobs(self, request: Request) -> Response:
        return JSONResponse({"jobs": [self._brief(j.id) for j in self.jobs.active()]})

    def _brief(self, jid: str) -> dict[str, Any]:
        job = self.jobs.get(jid)
        if job is None:
            return {"id": jid, "status": "gone"}
        snap = self.jobs.snapshot(job, points_from=len(job.points))
        snap.pop("points")
        return snap

    async def job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return error(404, "no such job")
        return JSONResponse(self.jobs.snapshot(job))

    async def cancel(self, request: Request) -> Response:
        job = self.jobs.cancel(request.path_params["id"])
        if job is None:
            return error(404, "no such job")
        return JSONResponse(self._brief(job.id))

    async def preview(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        data = None if job is None else self.jobs.preview(job)
        if data is None:
            return error(404, "no preview yet")
        return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def events(self, request: Request) -> Response:
        """Server-Sent Events: a ``state`` event whenever the job or its place in line changes.

        The stream polls the job's in-memory state: the worker thread never
        touches the event loop, and a slow browser only ever skips frames.
        """
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return error(404, "no such job")
        jobs, poll = self.jobs, self.poll_interval

        async def stream() -> AsyncIterator[str]:
            sent_points = 0
            last: tuple[int, int | None] | None = None
            idle = 0.0
            yield "retry: 1000\n\n"
            while not jobs.closing:  # on shutdown, end now rather than be cancelled later
                key = (job.version, jobs.position(job))
                if key != last:
                    snap = jobs.snapshot(job, points_from=sent_points)
                    sent_points += len(snap["points"])
                    last, idle = key, 0.0
                    yield f"event: state\ndata: {json.dumps(snap)}\n\n"
                    if snap["status"] in TERMINAL:
                        return
                elif idle >= 15.0:  # keeps proxies and idle timers from closing the stream
                    idle = 0.0
                    yield ": keep-alive\n\n"
                if await request.is_disconnected():
                    return
                await asyncio.sleep(poll)
                idle += poll

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- results ---------------------------------------------------------------

    async def gallery(self, request: Request) -> Response:
        entries = await run_in_threadpool(self.store.gallery)
        return JSONResponse({"results": entries})

    async def result(self, request: Request) -> Response:
        entry = self.store.result(request.path_params["id"])
        if entry is None:
            return error(404, "no such result")
        return JSONResponse(entry)

    async def result_image(self, request: Request) -> Response:
        rid = request.path_params["id"]
        path = self.store.result_file(rid)
        if path is None:
            return error(404, "no such result")
        download = request.query_params.get("download") == "1"
        return FileResponse(
            path, media_type="image/png", filename=f"brushwork-{rid[:8]}.png" if download else None
        )

    async def result_thumb(self, request: Request) -> Response:
        path = self.store.result_file(request.path_params["id"], ".thumb.jpg")
        if path is None:
            return error(404, "no such result")
        return FileResponse(path, media_type="image/jpeg")


Handler = Callable[[Request], Awaitable[Response]]


def _ids_only(handler: Handler) -> Handler:
    """404 for any ``{id}`` that is not a server-made ID, before a handler sees it."""

    async def checked(request: Request) -> Response:
        if not valid_id(request.path_params.get("id")):
            return error(404, "not found")
        return await handler(request)

    return checked


def _guarded(handler: Handler) -> Handler:
    """State-changing requests must carry the studio's header (see CSRF_HEADER)."""

    async def checked(request: Request) -> Response:
        if request.headers.get(CSRF_HEADER) != "1":
            return error(403, f"missing the {CSRF_HEADER} header")
        return await handler(request)

    return checked


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return error(status, str(detail))


def memory_max_side() -> int:
    """The largest long side the memory model fits here for a 3:2 photo at the defaults."""
    import torch

    from brushwork.config import MAX_SIZE, StyleConfig
    from brushwork.devices import available_memory, resolve_device, resolve_precision
    from brushwork.plan import largest_fitting_size

    cfg = StyleConfig(size=MAX_SIZE)
    device = resolve_device(cfg.device)
    available = available_memory(device)
    if available is None:
        return MAX_SIDE
    dtype: torch.dtype = resolve_precision(cfg.precision, device)
    return max(MAX_SIDE // 4, largest_fitting_size(cfg, (3000, 2000), dtype, device, available))


def create_app(
    data_dir: Path,
    *,
    max_queue: int = MAX_QUEUE,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
    max_side: int | None = None,
    max_styles: int = MAX_STYLES,
    gate: threading.Event | None = None,
    preview_interval: float = PREVIEW_INTERVAL,
    poll_interval: float = 0.1,
    loopback_host: str | None = None,
) -> Starlette:
    """Build the studio app.

    Args:
        data_dir: uploads and the gallery live here (created if missing).
        max_queue: jobs that may wait at once; past it a submit gets HTTP 429.
        max_upload_bytes, max_pixels: per-upload limits (pixels checked by decoding).
        max_side: largest output long side a job may ask for; None = what the
            memory model says fits on this machine (a 3:2 photo, default settings,
            tiled at print sizes), or :data:`MAX_SIDE` when memory is unknown.
        max_styles: style images one job may blend.
        gate: if given, the worker takes the next job only while it is set (tests
            hold it clear to read queue positions deterministically).
        preview_interval: seconds between preview frames of a running job.
        poll_interval: how often event streams look for changes.
        loopback_host: the loopback address (or name) the server listens on. Given,
            requests must name ``localhost``, this address or another loopback
            address in their Host header (DNS-rebinding guard); None accepts any.
    """
    if max_side is None:
        max_side = memory_max_side()
    studio = Studio(
        Path(data_dir),
        max_queue=max_queue,
        max_upload_bytes=max_upload_bytes,
        max_pixels=max_pixels,
        max_side=max_side,
        max_styles=max_styles,
        gate=gate,
        preview_interval=preview_interval,
        poll_interval=poll_interval,
    )
    s = studio

    def r(path: str, handler: Handler, method: str = "GET") -> Route:
        if "{id}" in path:
            handler = _ids_only(handler)
        if method != "GET":
            handler = _guarded(handler)
        return Route(path, handler, methods=[method])

    routes = [
        r("/", s.index),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        r("/api/options", s.options),
        r("/api/uploads", s.upload, "POST"),
        r("/api/uploads/{id}", s.upload_meta),
        r("/api/uploads/{id}/thumb", s.upload_thumb),
        r("/api/jobs", s.submit, "POST"),
        r("/api/jobs", s.list_jobs),
        r("/api/jobs/{id}", s.job),
        r("/api/jobs/{id}/events", s.events),
        r("/api/jobs/{id}/preview", s.preview),
        r("/api/jobs/{id}/cancel", s.cancel, "POST"),
        r("/api/results", s.gallery),
        r("/api/results/{id}", s.result),
        r("/api/results/{id}/image", s.result_image),
        r("/api/results/{id}/thumb", s.result_thumb),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(studio.jobs.close, SHUTDOWN_WAIT)

    middleware = [Middleware(_SecurityHeaders)]
    if loopback_host is not None:
        middleware.append(Middleware(_LoopbackHostGuard, listen_host=loopback_host))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    app.state.studio = studio
    return app
