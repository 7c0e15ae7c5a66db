"""Connection timing logic over in-memory streams with a virtual clock: idle
close, call timeouts, late answers, drops and cancellation, in milliseconds."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from pyrocket.errors import ConnectionClosedError, RemotingError, RemotingTimeoutError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.remoting import (
    Connection,
    ConnectionListener,
    ConnectionSettings,
    ProcessorTable,
    ResponseFuture,
)
from pyrocket.remoting.events import EventQueue


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class EventLog(ConnectionListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    async def _record(self, kind: str, conn: Connection) -> None:
        self.events.append((kind, conn.remote_address, trio.current_time()))

    async def on_connect(self, conn: Connection) -> None:
        await self._record("connect", conn)

    async def on_close(self, conn: Connection) -> None:
        await self._record("close", conn)

    async def on_exception(self, conn: Connection) -> None:
        await self._record("exception", conn)

    async def on_idle(self, conn: Connection) -> None:
        await self._record("idle", conn)

    def kinds(self, addr: str) -> list[str]:
        return [kind for kind, a, _ in self.events if a == addr]


@dataclass
class Pair:
    client: Connection
    server: Connection
    events: EventLog
    answered: list[RemotingCommand] = field(default_factory=list)


def ping() -> RemotingCommand:
    return RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC).replace(
        ext_fields={"topic": "T"}
    )


@asynccontextmanager
async def connection_pair(
    processors: ProcessorTable | None = None, idle_seconds: float | None = 120.0
) -> AsyncIterator[Pair]:
    """Two Connections joined by memory streams; the "server" end has the processors."""
    left, right = trio.testing.memory_stream_pair()
    events = EventLog()
    queue = EventQueue(events)
    settings = ConnectionSettings(idle_seconds=idle_seconds)
    client = Connection(left, remote_address="server:1", settings=settings, events=queue)
    server = Connection(
        right, remote_address="client:2", settings=settings, processors=processors, events=queue
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.deliver)
        nursery.start_soon(client.run)
        nursery.start_soon(server.run)
        yield Pair(client, server, events)
        nursery.cancel_scope.cancel()


def echo_table() -> ProcessorTable:
    table = ProcessorTable()

    async def echo(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS).replace(ext_fields=request.ext_fields)

    table.register_default(echo)
    return table


def slow_table(delay: float) -> ProcessorTable:
    table = ProcessorTable()

    async def slow(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await trio.sleep(delay)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    table.register_default(slow)
    return table


async def test_idle_connection_is_closed_after_idle_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(1000):
        async with connection_pair(idle_seconds=120) as pair:
            start = trio.current_time()
            await pair.server.wait_closed()
            await pair.client.wait_closed()
            assert trio.current_time() - start == pytest.approx(120, abs=0.01)
            await trio.sleep(1)  # let the listener task catch up
    # Both ends went idle at the same moment; each reports idle, then close.
    assert pair.events.kinds("client:2") == ["connect", "idle", "close"]
    assert pair.events.kinds("server:1") == ["connect", "idle", "close"]


async def test_traffic_in_either_direction_keeps_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(2000):
        async with connection_pair(echo_table(), idle_seconds=120) as pair:
            start = trio.current_time()
            for _ in range(5):
                await trio.sleep(100)
                response = await pair.client.invoke(ping(), timeout=3)
                assert response.code == ResponseCode.SUCCESS
            last = trio.current_time()
            assert last - start >= 500
            await pair.server.wait_closed()
            assert trio.current_time() - last == pytest.approx(120, abs=0.01)


async def test_half_a_frame_does_not_hold_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = trio.testing.memory_stream_pair()
    conn = Connection(right, remote_address="peer:1", settings=ConnectionSettings(idle_seconds=30))
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            frame = encode(ping())
            await left.send_all(frame[: len(frame) // 2])
            start = trio.current_time()
            await conn.wait_closed()
            assert trio.current_time() - start == pytest.approx(30, abs=0.01)
            assert await left.receive_some() == b""  # the stream was closed


async def test_invoke_times_out_and_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(100):
        async with connection_pair(slow_table(5.0)) as pair:
            start = trio.current_time()
            with pytest.raises(RemotingTimeoutError, match=r"timeout, 3000\(ms\)"):
                await pair.client.invoke(ping(), timeout=3)
            assert trio.current_time() - start == pytest.approx(3, abs=0.01)
            assert pair.client.pending_calls == 0
            # The answer arrives 2 s later: logged and dropped.
            with caplog.at_level(logging.WARNING, logger="pyrocket.remoting"):
                await trio.sleep(3)
            assert "matches no pending request" in caplog.text
            assert pair.client.is_open
            assert pair.server.requests_in_flight == 0


async def test_async_call_times_out_with_its_callback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done: list[tuple[float, ResponseFuture]] = []
    with trio.fail_after(100):
        async with connection_pair(slow_table(10.0)) as pair:
            start = trio.current_time()
            future = await pair.client.invoke_async(
                ping(), 2.5, lambda f: done.append((trio.current_time(), f))
            )
            fast = await pair.client.invoke_async(ping(), 20)
            assert pair.client.pending_calls == 2
            with pytest.raises(RemotingTimeoutError):
                await future
            assert done and done[0][1] is future
            assert done[0][0] - start == pytest.approx(2.5, abs=0.01)
            assert isinstance(future.error, RemotingTimeoutError)
            assert future.response is None
            # The other call is unaffected and completes when its answer comes.
            response = await fast
            assert response.code == ResponseCode.SUCCESS
            assert trio.current_time() - start == pytest.approx(10, abs=0.01)
            assert pair.client.pending_calls == 0
            assert len(done) == 1


async def test_async_deadline_earlier_than_the_sweepers_wakes_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        async with connection_pair(slow_table(50.0)) as pair:
            slow = await pair.client.invoke_async(ping(), 40)
            quick = await pair.client.invoke_async(ping(), 1)
            start = trio.current_time()
            with pytest.raises(RemotingTimeoutError):
                await quick
            assert trio.current_time() - start == pytest.approx(1, abs=0.01)
            assert not slow.done()


async def test_dropped_connection_fails_every_pending_call_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = trio.testing.memory_stream_pair()
    conn = Connection(left, remote_address="peer:1")
    outcomes: list[BaseException] = []

    async def call() -> None:
        try:
            await conn.invoke(ping(), timeout=60)
        except RemotingError as exc:
            outcomes.append(exc)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            for _ in range(10):
                nursery.start_soon(call)
            future = await conn.invoke_async(ping(), 60)
            await trio.sleep(1)
            assert conn.pending_calls == 11
            start = trio.current_time()
            await right.aclose()  # the peer goes away
            with pytest.raises(ConnectionClosedError):
                await future
            await conn.wait_closed()
    assert len(outcomes) == 10
    assert all(isinstance(exc, ConnectionClosedError) for exc in outcomes)
    assert trio.current_time() - start < 0.01
    with pytest.raises(ConnectionClosedError):
        await conn.invoke(ping(), timeout=1)


async def test_cancelled_invoke_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(100):
        async with connection_pair(slow_table(5.0)) as pair:
            with trio.move_on_after(1):
                await pair.client.invoke(ping(), timeout=30)
            assert pair.client.pending_calls == 0
            response = await pair.client.invoke(ping(), timeout=30)
            assert response.code == ResponseCode.SUCCESS


async def test_undecodable_frame_closes_with_an_exception_event(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    left, right = trio.testing.memory_stream_pair()
    events = EventLog()
    queue = EventQueue(events)
    conn = Connection(right, remote_address="10.0.0.9:4321", events=queue)
    with trio.fail_after(10), caplog.at_level(logging.WARNING, logger="pyrocket.remoting"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(queue.deliver)
            nursery.start_soon(conn.run)
            # A JSON header that is not JSON.
            header = b"{not json"
            await left.send_all(
                (8 + len(header) - 4).to_bytes(4, "big") + b"\x00\x00\x00\x09" + header
            )
            await conn.wait_closed()
            await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    assert events.kinds("10.0.0.9:4321") == ["connect", "exception", "close"]
    assert "10.0.0.9:4321" in caplog.text and "JSON header does not parse" in caplog.text


async def test_requests_from_one_connection_run_concurrently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    table = ProcessorTable()

    async def slow(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        await trio.sleep(30)
        return RemotingCommand.response(ResponseCode.SUCCESS, "slow")

    async def quick(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS, "quick")

    table.register(RequestCode.REGISTER_BROKER, slow)
    table.register(RequestCode.GET_ROUTEINFO_BY_TOPIC, quick)
    with trio.fail_after(100):
        async with connection_pair(table) as pair:
            register = await pair.client.invoke_async(
                RemotingCommand.request(RequestCode.REGISTER_BROKER), 60
            )
            start = trio.current_time()
            for _ in range(3):
                response = await pair.client.invoke(ping(), timeout=5)
                assert response.remark == "quick"
            assert trio.current_time() - start < 1
            assert not register.done()
            assert (await register).remark == "slow"


async def test_responses_use_the_configured_settings_and_requests_may_keep_theirs() -> None:
    from pyrocket.protocol.codes import LanguageCode, SerializeType

    left, right = trio.testing.memory_stream_pair()
    settings = ConnectionSettings(
        serialize_type=SerializeType.ROCKETMQ, language=LanguageCode.PYTHON, version=400
    )
    conn = Connection(right, remote_address="peer:1", settings=settings, processors=echo_table())
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            request = ping().replace(opaque=77, language=LanguageCode.GO, version=7)
            await left.send_all(encode(request))  # JSON, GO, 7
            reply = decode(bytes(await left.receive_some()))
            assert reply.opaque == 77 and reply.is_response
            assert reply.serialize_type == SerializeType.ROCKETMQ
            assert reply.language == LanguageCode.PYTHON and reply.version == 400
            nursery.cancel_scope.cancel()
