"""The ordered lane, the in-flight bound for plain functions, bounded log
lines and the accept loop's rate-limited errors, over real sockets."""

from __future__ import annotations

import errno
import logging
import random
import struct
from collections.abc import Awaitable

import pytest
import trio
import trio.testing

from pyrocket.logtext import clip
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import (
    ONEWAY_FLAG,
    RESPONSE_FLAG,
    RemotingCommand,
    decode_payload,
    encode,
)
from pyrocket.protocol.frame import MAX_HEADER_SIZE, FrameSplitter
from pyrocket.remoting import OVERLOAD_REMARK, Connection, RemotingServer, ServerConfig
from pyrocket.remoting.logs import LOG_VALUE_LIMIT, RepeatLimiter, describe
from pyrocket.remoting.server import accept_loop
from tests.remoting.helpers import running_server, wait_until

ORDERED = 15
PLAIN_ORDERED = 16
UNORDERED = 17


async def read_frames(stream: trio.SocketStream, wanted: int) -> list[RemotingCommand]:
    splitter = FrameSplitter()
    found: list[RemotingCommand] = []
    while len(found) < wanted:
        payload = splitter.next_frame()
        if isinstance(payload, bytes):
            found.append(decode_payload(payload))
            continue
        data = await stream.receive_some(1 << 16)
        assert data, "closed by the server"
        splitter.feed(data)
    return found


async def connect(addr: str) -> trio.SocketStream:
    host, port = addr.rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


async def test_ordered_requests_apply_in_read_order_every_time() -> None:
    applied: list[int] = []
    rng = random.Random(7)

    async def ordered(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        # Schedule points before the state change: without the lane, trio may
        # resume these in either order.
        for _ in range(request.opaque % 3):
            await trio.lowlevel.checkpoint()
        applied.append(request.opaque)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def plain_ordered(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        applied.append(request.opaque)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer(ServerConfig())
    server.register_processor(ORDERED, ordered, ordered=True)
    server.register_processor(PLAIN_ORDERED, plain_ordered, ordered=True)
    with trio.fail_after(60):
        async with running_server(server) as addr:
            for _ in range(30):
                applied.clear()
                frames = []
                two_way = 0
                for opaque in range(1, 601):
                    oneway = rng.random() < 0.5
                    two_way += not oneway
                    code = PLAIN_ORDERED if rng.random() < 0.2 else ORDERED
                    flag = ONEWAY_FLAG if oneway else 0
                    frames.append(encode(RemotingCommand(code, opaque, flag)))
                stream = await connect(addr)
                async with stream:
                    await stream.send_all(b"".join(frames))
                    answers = await read_frames(stream, two_way)
                    await wait_until(lambda: len(applied) == 600)
                assert applied == list(range(1, 601))
                assert all(a.code == ResponseCode.SUCCESS for a in answers)


async def test_plain_functions_that_release_the_turn_and_then_wait_keep_the_lane_moving() -> None:
    # A plain function that makes its state change, releases the turn and
    # hands back an awaitable (a send waiting for its fsync): the requests
    # queued behind it in the lane must still start, in order, while it waits.
    applied: list[int] = []
    gate = trio.Event()

    async def holder(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await trio.sleep(0.05)
        applied.append(request.opaque)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def wait_for_gate() -> RemotingCommand:
        await gate.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    def released(
        conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | Awaitable[RemotingCommand]:
        applied.append(request.opaque)
        conn.release_order(request)
        return wait_for_gate()

    server = RemotingServer(ServerConfig())
    server.register_processor(ORDERED, holder, ordered=True)
    server.register_processor(PLAIN_ORDERED, released, ordered=True)
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                frames = [encode(RemotingCommand(ORDERED, 1, 0))]
                frames += [encode(RemotingCommand(PLAIN_ORDERED, n, 0)) for n in range(2, 201)]
                await stream.send_all(b"".join(frames))
                # Everything is applied, in order, while the released ones
                # still wait (more of them than the connection has workers).
                await wait_until(lambda: len(applied) == 200)
                assert applied == list(range(1, 201))
                gate.set()
                answers = await read_frames(stream, 200)
                assert sorted(a.opaque for a in answers) == list(range(1, 201))


async def test_unordered_requests_and_released_ones_do_not_wait_for_the_lane() -> None:
    gate = trio.Event()
    started: list[str] = []

    async def blocked(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        started.append(request.remark or "")
        if request.remark == "release":
            conn.release_order(request)
        await gate.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def quick(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        started.append(request.remark or "")
        return RemotingCommand.response(ResponseCode.SUCCESS, remark=request.remark)

    server = RemotingServer(ServerConfig())
    server.register_processor(ORDERED, blocked, ordered=True)
    server.register_processor(PLAIN_ORDERED, quick, ordered=True)
    server.register_processor(UNORDERED, quick)
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                await stream.send_all(
                    encode(RemotingCommand(ORDERED, 1, 0, remark="hold"))
                    + encode(RemotingCommand(PLAIN_ORDERED, 2, 0, remark="after hold"))
                    + encode(RemotingCommand(UNORDERED, 3, 0, remark="beside"))
                )
                # The unordered one is answered while the ordered one holds the lane.
                (answer,) = await read_frames(stream, 1)
                assert answer.opaque == 3
                assert sorted(started) == ["beside", "hold"]
                gate.set()
                rest = await read_frames(stream, 2)
                assert [a.opaque for a in rest] == [1, 2]
            gate = trio.Event()
            started.clear()
            stream = await connect(addr)
            async with stream:
                await stream.send_all(
                    encode(RemotingCommand(ORDERED, 1, 0, remark="release"))
                    + encode(RemotingCommand(PLAIN_ORDERED, 2, 0, remark="next"))
                )
                # The first one released the lane before waiting: the next ran.
                (answer,) = await read_frames(stream, 1)
                assert answer.opaque == 2
                assert started == ["release", "next"]
                gate.set()
                (answer,) = await read_frames(stream, 1)
                assert answer.opaque == 1


async def test_plain_functions_count_against_the_in_flight_bound() -> None:
    gate = trio.Event()

    async def blocked(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await gate.wait()
        return RemotingCommand.response(ResponseCode.SUCCESS)

    calls: list[int] = []

    def plain(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        calls.append(request.opaque)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer(ServerConfig(max_in_flight_per_connection=2))
    server.register_processor(UNORDERED, blocked)
    server.register_processor(PLAIN_ORDERED, plain)
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                await stream.send_all(
                    encode(RemotingCommand(UNORDERED, 1, 0))
                    + encode(RemotingCommand(UNORDERED, 2, 0))
                    + encode(RemotingCommand(PLAIN_ORDERED, 3, 0))
                )
                (busy,) = await read_frames(stream, 1)
                assert (busy.opaque, busy.code) == (3, ResponseCode.SYSTEM_BUSY)
                assert busy.remark == OVERLOAD_REMARK
                assert calls == []
                gate.set()
                await read_frames(stream, 2)
                await stream.send_all(encode(RemotingCommand(PLAIN_ORDERED, 4, 0)))
                (answer,) = await read_frames(stream, 1)
                assert (answer.opaque, answer.code) == (4, ResponseCode.SUCCESS)
                assert calls == [4]


async def test_logged_commands_and_bad_frames_are_clipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Under the header bound, so the stray response is read and logged.
    huge = "r" * (MAX_HEADER_SIZE // 2)
    server = RemotingServer(ServerConfig())
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                # A response nobody waits for, with a huge remark and body.
                stray = RemotingCommand(0, 99, RESPONSE_FLAG, remark=huge, body=huge.encode())
                await stream.send_all(encode(stray))
                await wait_until(
                    lambda: any("no pending" in r.getMessage() for r in caplog.records)
                )
                # A frame whose huge JSON header does not parse.
                header = b"{" + huge.encode()
                payload = struct.pack(">I", len(header)) + header
                await stream.send_all(struct.pack(">I", len(payload)) + payload)
                await wait_until(lambda: any("bad frame" in r.getMessage() for r in caplog.records))
    lines = [r.getMessage() for r in caplog.records]
    assert lines
    assert all(len(line) < 4 * LOG_VALUE_LIMIT + 200 for line in lines), max(map(len, lines))


def test_clip_and_describe_bound_their_text() -> None:
    assert clip("short") == "short"
    clipped = clip("x" * 10_000)
    assert clipped.startswith("x" * LOG_VALUE_LIMIT) and "9744 more characters" in clipped
    command = RemotingCommand(
        10, 1, 0, remark="m" * 50_000, ext_fields={"k": "v" * 50_000}, body=b"b" * 70_000
    )
    text = describe(command)
    assert "body=70000B" in text and len(text) < 3 * LOG_VALUE_LIMIT + 200


class EmfileListener(trio.abc.Listener[trio.SocketStream]):
    """A listener whose accept fails with EMFILE ``failures`` times, then blocks."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def accept(self) -> trio.SocketStream:
        await trio.lowlevel.checkpoint()
        if self.failures > 0:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_repeated_accept_errors_are_rate_limited(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.ERROR, logger="pyrocket.remoting")
    listener = EmfileListener(failures=300)  # 30 s of retries every 0.1 s

    async def never(stream: trio.SocketStream) -> None:
        raise AssertionError("no connection was accepted")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_loop, listener, nursery, never)
        await wait_until(lambda: listener.failures == 0)
        nursery.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if "accept failed" in r.getMessage()]
    # One line at once, then one per 10 s saying how many were held back.
    assert 2 <= len(lines) <= 4
    assert "suppressed" in lines[1]


def test_repeat_limiter_counts_what_it_holds_back() -> None:
    limiter = RepeatLimiter(interval=10)
    assert limiter.allow(0.0)
    assert not limiter.allow(1.0) and not limiter.allow(9.9)
    assert limiter.suppressed == 2
    assert limiter.allow(10.0)


async def test_a_peer_repeating_an_unsupported_code_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RemotingServer(ServerConfig())
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                await stream.send_all(
                    b"".join(encode(RemotingCommand(999, n, 0)) for n in range(1, 501))
                )
                answers = await read_frames(stream, 500)
    assert all(a.code == ResponseCode.REQUEST_CODE_NOT_SUPPORTED for a in answers)
    lines = [r for r in caplog.records if "not supported" in r.getMessage()]
    assert len(lines) == 1
