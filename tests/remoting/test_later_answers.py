"""A plain-function processor that hands back a Later: answered when it is
settled, by the code that settles it, over a real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from pyrocket.later import Later
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.remoting import Connection, RemotingServer, ServerConfig
from tests.remoting.helpers import running_server, wait_until
from tests.remoting.test_ordered_lane import connect, read_frames

LATER = 21
ORDERED_LATER = 22
ORDERED_PLAIN = 23


class PendingLaters:
    """A processor handing back an unsettled Later per request, kept by
    opaque with the connection it came on, for the test to settle."""

    def __init__(self) -> None:
        self.by_opaque: dict[int, Later[RemotingCommand | None]] = {}
        self.connections: list[Connection] = []

    def __call__(self, conn: Connection, request: RemotingCommand) -> Later[RemotingCommand | None]:
        self.connections.append(conn)
        answer: Later[RemotingCommand | None] = Later()
        self.by_opaque[request.opaque] = answer
        return answer


@contextlib.asynccontextmanager
async def later_server() -> AsyncIterator[tuple[PendingLaters, str]]:
    """A server on 127.0.0.1 answering LATER with :class:`PendingLaters`."""
    later = PendingLaters()
    server = RemotingServer(ServerConfig())
    server.register_processor(LATER, later)
    async with running_server(server) as addr:
        yield later, addr


async def test_answers_go_out_when_settled_in_any_order() -> None:
    with trio.fail_after(10):
        async with later_server() as (later, addr):
            pending, seen = later.by_opaque, later.connections
            stream = await connect(addr)
            async with stream:
                await stream.send_all(
                    b"".join(encode(RemotingCommand(LATER, n, 0)) for n in range(1, 51))
                )
                await wait_until(lambda: len(pending) == 50)
                conn = seen[0]
                assert conn.requests_in_flight == 50
                for opaque in sorted(pending, reverse=True):
                    if opaque % 7 == 0:
                        pending[opaque].fail(ValueError(f"broken {opaque}"))
                    else:
                        response = RemotingCommand.response(ResponseCode.SUCCESS, f"r{opaque}")
                        pending[opaque].settle(response)
                # Queued by the settling itself, before any task ran: no
                # worker waited for them.
                assert conn.queued_output_bytes > 0
                assert conn.requests_in_flight == 0
                answers = await read_frames(stream, 50)
    by_opaque = {answer.opaque: answer for answer in answers}
    assert sorted(by_opaque) == list(range(1, 51))
    for opaque, answer in by_opaque.items():
        if opaque % 7 == 0:
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert answer.remark == f"ValueError: broken {opaque}"
        else:
            assert answer.code == ResponseCode.SUCCESS and answer.remark == f"r{opaque}"
    # Settled in reverse: the answers went out in the order they were settled.
    assert [a.opaque for a in answers] == sorted(by_opaque, reverse=True)


async def test_an_unsettled_later_holds_the_ordered_turn_until_settled() -> None:
    applied: list[int] = []
    pending: list[Later[RemotingCommand | None]] = []

    def ordered_later(conn: Connection, request: RemotingCommand) -> Later[RemotingCommand | None]:
        applied.append(request.opaque)
        answer: Later[RemotingCommand | None] = Later()
        pending.append(answer)
        return answer

    def ordered_plain(conn: Connection, request: RemotingCommand) -> RemotingCommand:
        applied.append(request.opaque)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    server = RemotingServer(ServerConfig())
    server.register_processor(ORDERED_LATER, ordered_later, ordered=True)
    server.register_processor(ORDERED_PLAIN, ordered_plain, ordered=True)
    with trio.fail_after(10):
        async with running_server(server) as addr:
            stream = await connect(addr)
            async with stream:
                frames = [encode(RemotingCommand(ORDERED_LATER, 1, 0))]
                frames += [encode(RemotingCommand(ORDERED_PLAIN, n, 0)) for n in range(2, 6)]
                await stream.send_all(b"".join(frames))
                await wait_until(lambda: len(pending) == 1)
                await trio.sleep(0.05)
                assert applied == [1]  # the rest wait for the turn
                pending[0].settle(RemotingCommand.response(ResponseCode.SUCCESS))
                answers = await read_frames(stream, 5)
                assert applied == [1, 2, 3, 4, 5]
                assert [a.opaque for a in answers] == [1, 2, 3, 4, 5]


async def test_settling_after_the_connection_closed_sends_nothing_and_harms_nothing() -> None:
    with trio.fail_after(10):
        async with later_server() as (later, addr):
            pending, seen = later.by_opaque, later.connections
            stream = await connect(addr)
            await stream.send_all(encode(RemotingCommand(LATER, 1, 0)))
            await wait_until(lambda: len(pending) == 1)
            await stream.aclose()
            await seen[0].wait_closed()
            pending[1].settle(RemotingCommand.response(ResponseCode.SUCCESS))
            assert seen[0].requests_in_flight == 0
            # The server still answers a new connection.
            other = await connect(addr)
            async with other:
                await other.send_all(encode(RemotingCommand(LATER, 2, 0)))
                await wait_until(lambda: len(pending) == 2)
                pending[2].settle(RemotingCommand.response(ResponseCode.SUCCESS))
                (answer,) = await read_frames(other, 1)
                assert answer.opaque == 2 and answer.code == ResponseCode.SUCCESS
