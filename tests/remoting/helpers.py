"""Helpers for tests that need a remoting server or client on 127.0.0.1.

``running_server(server)`` serves a :class:`RemotingServer` on 127.0.0.1 port 0
inside its own nursery and yields its ``"127.0.0.1:port"`` address; leaving the
block cancels the server. ``Recorder`` is a processor that keeps every request
it sees and answers SUCCESS (or whatever ``answer`` returns).

    async with running_server(server) as addr, RemotingClient() as client:
        response = await client.invoke_sync(addr, request, timeout=5)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection, RemotingServer, ServerConfig


@asynccontextmanager
async def running_server(
    server: RemotingServer | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Serve ``server`` (default: a bare RemotingServer) and yield its address."""
    server = server or RemotingServer(ServerConfig())
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve, host, 0)
        yield f"{host}:{port}"
        nursery.cancel_scope.cancel()


async def wait_until(predicate: Callable[[], bool], interval: float = 0.005) -> None:
    """Poll ``predicate`` until it holds (for state that has no event; use
    under ``trio.fail_after``)."""
    while not predicate():  # noqa: ASYNC110 (polling is the point)
        await trio.sleep(interval)


async def echo(conn: Connection, request: RemotingCommand) -> RemotingCommand:
    """Answer SUCCESS with the request's ext fields and body."""
    return RemotingCommand.response(ResponseCode.SUCCESS).replace(
        ext_fields=request.ext_fields, body=request.body
    )


class Recorder:
    """A processor that records (connection, request) pairs and answers.

    ``answer(request)`` builds the response; the default is an empty SUCCESS.
    ``arrived`` is set each time a request arrives (a fresh Event after each
    wait) so tests can wait for oneway requests.
    """

    def __init__(
        self, answer: Callable[[RemotingCommand], RemotingCommand | None] | None = None
    ) -> None:
        self.requests: list[RemotingCommand] = []
        self.connections: list[Connection] = []
        self._answer = answer
        self._changed = trio.Event()

    async def __call__(self, conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        self.requests.append(request)
        self.connections.append(conn)
        self._changed.set()
        self._changed = trio.Event()
        if self._answer is not None:
            return self._answer(request)
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def wait_for(self, count: int) -> list[RemotingCommand]:
        """Wait until at least ``count`` requests arrived (use under fail_after)."""
        while len(self.requests) < count:
            await self._changed.wait()
        return self.requests
