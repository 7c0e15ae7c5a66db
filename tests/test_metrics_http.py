"""The ``/metrics`` responder over real sockets: a slow peer is dropped at
the read deadline, connections past the bound are closed unanswered while
the others are served, and the request line parser's answers."""

from __future__ import annotations

import pytest
import trio

from pyrocket import metrics_http
from pyrocket.metrics_http import BadRequest, metrics_url, parse_request_line, serve_metrics

PAGE = b"# HELP up fake\n# TYPE up gauge\nup 1.0\n"


async def render() -> bytes:
    return PAGE


async def get(port: int) -> bytes:
    """Everything the server sends back to one GET /metrics."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        data = bytearray()
        while chunk := await stream.receive_some(65536):
            data += chunk
    return bytes(data)


async def test_a_slow_peer_is_dropped_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_http, "READ_TIMEOUT", 0.2)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_metrics, "127.0.0.1", 0, render)
            slow = await trio.open_tcp_stream("127.0.0.1", port)
            async with slow:
                await slow.send_all(b"GET /metrics HTTP/1.1\r\n")  # never finished
                answer = await get(port)  # served meanwhile
                assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(PAGE)
                assert await slow.receive_some(100) == b""  # closed, unanswered
            nursery.cancel_scope.cancel()


async def test_connections_past_the_bound_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_http, "MAX_CONNECTIONS", 3)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_metrics, "127.0.0.1", 0, render)
            idle = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
            await trio.sleep(0.1)  # let the server take them
            assert await get(port) == b""  # over the bound: closed at once
            for stream in idle:
                await stream.aclose()
            # Once they are gone the server takes new ones again.
            for _ in range(100):
                answer = await get(port)
                if answer:
                    break
                await trio.sleep(0.02)
            assert answer.endswith(PAGE)
            nursery.cancel_scope.cancel()


def test_request_lines() -> None:
    assert parse_request_line(b"GET /metrics HTTP/1.1\r\n\r\n") == ("GET", "/metrics")
    for bad in (b"GET /metrics\r\n\r\n", b"GET metrics HTTP/1.1\r\n", b"\xff\xfe\r\n", b"\r\n"):
        with pytest.raises(BadRequest):
            parse_request_line(bad)


def test_urls() -> None:
    assert metrics_url("0.0.0.0", 5557) == "http://127.0.0.1:5557/metrics"
    assert metrics_url("10.0.0.1", 1) == "http://10.0.0.1:1/metrics"
    assert metrics_url("::1", 2) == "http://[::1]:2/metrics"
