"""A small HTTP/1.x responder on trio streams that answers ``GET /metrics``
with the Prometheus text exposition of one registry.

A server that exposes metrics (the NameServer, the broker) runs
:func:`serve_metrics` in its nursery with a ``render`` coroutine that
returns the page. Each connection is its own task and is answered once and
closed: the request head is read within :data:`READ_TIMEOUT` seconds and
may not exceed :data:`MAX_REQUEST_HEAD` bytes, the answer is written within
:data:`WRITE_TIMEOUT`, and at most :data:`MAX_CONNECTIONS` are served at once
(more are closed at once), so a slow or hostile peer holds one task for a
bounded time and disturbs nobody else. Bad requests get 400, other paths
404, other methods than GET 405.

:func:`render_registry` is the usual ``render``: it runs the registry's
collectors and the text formatting in a worker thread, one scrape at a
time, after an optional ``refresh`` on the event loop (where collectors
that read server state take their snapshot).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import trio
from prometheus_client import CollectorRegistry, generate_latest

from pyrocket.errors import PyrocketError

log = logging.getLogger("pyrocket.metrics")

#: The largest request head (request line and headers) accepted, in bytes.
MAX_REQUEST_HEAD: Final = 8192
#: Seconds a peer has to send its request head.
READ_TIMEOUT: Final = 5.0
#: Seconds the answer may take to write (and to render).
WRITE_TIMEOUT: Final = 10.0
#: Connections served at once; more are closed unanswered.
MAX_CONNECTIONS: Final = 32

#: What :func:`prometheus_client.generate_latest` writes: the text format 0.0.4.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Render = Callable[[], Awaitable[bytes]]


def metrics_url(host: str, port: int) -> str:
    """``http://host:port/metrics`` (a wildcard host shown as 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/metrics"


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BadRequest(PyrocketError):
    """The peer's request is not one this responder can parse."""


def parse_request_line(head: bytes) -> tuple[str, str]:
    """The method and path of a request head (up to its blank line).
    Raises BadRequest."""
    line, _, _ = head.partition(b"\r\n")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("request line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(f"malformed request line {text[:80]!r}")
    return parts[0], parts[1]


async def _read_head(stream: trio.abc.Stream) -> bytes:
    """The request head up to and including its blank line. Raises
    BadRequest when the peer closes early or sends too much."""
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_REQUEST_HEAD:
            raise BadRequest("request head too large")
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise BadRequest("connection closed before the request was complete")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    if end > MAX_REQUEST_HEAD:
        raise BadRequest("request head too large")
    return bytes(buffer[:end])


async def answer(stream: trio.abc.Stream, render: Render) -> None:
    """Read one request from ``stream``, answer it, close the stream."""
    try:
        request: tuple[str, str] | None = None
        reply = b""
        with trio.move_on_after(READ_TIMEOUT) as reading:
            try:
                request = parse_request_line(await _read_head(stream))
            except BadRequest as exc:
                reply = _response("400 Bad Request", f"{exc}\n".encode())
        if reading.cancelled_caught:
            return  # too slow: closed without an answer
        with trio.move_on_after(WRITE_TIMEOUT):
            if request is not None:
                reply = await _route(*request, render)
            await stream.send_all(reply)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        log.debug("metrics connection lost: %s", exc)
    finally:
        await trio.aclose_forcefully(stream)


async def _route(method: str, path: str, render: Render) -> bytes:
    if path.partition("?")[0] != "/metrics":
        return _response("404 Not Found", b"only /metrics is served\n")
    if method != "GET":
        return _response("405 Method Not Allowed", b"use GET\n")
    return _response("200 OK", await render(), CONTENT_TYPE)


def render_registry(
    registry: CollectorRegistry, refresh: Callable[[], Awaitable[None]] | None = None
) -> Render:
    """A ``render`` for :func:`serve_metrics`: ``await refresh()`` on the
    event loop, then the registry's text exposition built in a worker
    thread; one scrape at a time."""
    lock = trio.Lock()

    async def render() -> bytes:
        async with lock:
            if refresh is not None:
                await refresh()
            return await trio.to_thread.run_sync(generate_latest, registry)

    return render


async def serve_metrics(
    host: str | None,
    port: int,
    render: Render,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` on ``host:port`` until cancelled; report the
    bound port. Raises OSError when the address cannot be bound."""
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    slots = trio.Semaphore(MAX_CONNECTIONS)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await trio.aclose_forcefully(stream)
            return
        try:
            await answer(stream, render)
        finally:
            slots.release()

    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(int(bound))


__all__ = [
    "CONTENT_TYPE",
    "MAX_CONNECTIONS",
    "MAX_REQUEST_HEAD",
    "READ_TIMEOUT",
    "WRITE_TIMEOUT",
    "BadRequest",
    "answer",
    "metrics_url",
    "parse_request_line",
    "render_registry",
    "serve_metrics",
]
