"""The pyrocket NameServer as broker tests see it: a real one on 127.0.0.1
(port 0, or a given port to come back on), with every request it was sent
recorded after the NameServer acted on it.

    async with recording_namesrv(tmp_path / "ns") as ns:
        settings = broker_settings(tmp_path, [ns.addr])
        ...
        await ns.wait_for(lambda: ns.has_topic("Orders", "broker-a"))

``before`` runs a coroutine ahead of the NameServer's handling of a request
code (to look at the broker while it is, say, unregistering).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio

from pyrocket.namesrv import NameServer
from pyrocket.namesrv.routeinfo import RouteInfoManager
from pyrocket.protocol.bodies.topic import RegisterBrokerBody
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import RegisterBrokerRequestHeader, UnRegisterBrokerRequestHeader
from pyrocket.remoting import Connection
from pyrocket.remoting.dispatch import Processor
from tests.namesrv.helpers import address, namesrv_config

Before = Callable[[RemotingCommand], Awaitable[None]]


@dataclass
class RecordingNameServer:
    """A running NameServer and the requests it has handled, oldest first."""

    server: NameServer
    requests: list[RemotingCommand] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)

    @property
    def addr(self) -> str:
        return address(self.server)

    @property
    def routes(self) -> RouteInfoManager:
        return self.server.state.routes

    def kv_namespace(self, namespace: str) -> Mapping[str, str]:
        return self.server.state.kv.namespaces().get(namespace, {})

    def count(self, code: int) -> int:
        return sum(1 for r in self.requests if r.code == code)

    def of_code(self, code: int) -> list[RemotingCommand]:
        return [r for r in self.requests if r.code == code]

    def registrations(self) -> list[tuple[RegisterBrokerRequestHeader, RegisterBrokerBody]]:
        """Every REGISTER_BROKER's header and body, oldest first."""
        registrations = []
        for request in self.of_code(RequestCode.REGISTER_BROKER):
            header = request.decode_header(RegisterBrokerRequestHeader)
            body = RegisterBrokerBody.decode(request.body or b"{}", header.compressed)
            registrations.append((header, body))
        return registrations

    @property
    def unregistered(self) -> list[str]:
        """The broker addresses of the UNREGISTER_BROKER requests, in order."""
        return [
            r.decode_header(UnRegisterBrokerRequestHeader).broker_addr
            for r in self.of_code(RequestCode.UNREGISTER_BROKER)
        ]

    def is_live(self, broker_addr: str) -> bool:
        return broker_addr in self.routes.live_brokers

    def has_topic(self, topic: str, broker_name: str) -> bool:
        """Whether the route of ``topic`` has queues on ``broker_name``."""
        return any(q.broker_name == broker_name for q in self.routes.queue_datas(topic))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, checking after each request
        (use under fail_after)."""
        while not predicate():
            await self._changed.wait()

    def _handled(self, request: RemotingCommand) -> None:
        self.requests.append(request)
        self._changed.set()
        self._changed = trio.Event()

    def _record(self, processor: Processor, before: Before | None) -> Processor:
        """``processor`` recording each request once it has been handled;
        plain processors stay plain (they answer in the reader)."""
        if before is not None:

            async def ahead(conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
                await before(request)
                result = processor(conn, request)
                answer = await result if inspect.isawaitable(result) else result
                self._handled(request)
                return answer

            return ahead

        def recorded(
            conn: Connection, request: RemotingCommand
        ) -> Awaitable[RemotingCommand | None] | RemotingCommand | None:
            result = processor(conn, request)
            if not inspect.isawaitable(result):
                self._handled(request)
                return result
            pending = result

            async def finish() -> RemotingCommand | None:
                answer = await pending
                self._handled(request)
                return answer

            return finish()

        return recorded


@asynccontextmanager
async def recording_namesrv(
    root: Path, port: int = 0, *, before: Mapping[int, Before] | None = None
) -> AsyncIterator[RecordingNameServer]:
    """Serve a pyrocket NameServer (files under ``root``) on
    127.0.0.1:``port`` until the block ends."""
    server = NameServer(namesrv_config(root))
    recording = RecordingNameServer(server)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, "127.0.0.1", port)
        # Its handlers are registered by now: wrap each one.
        table = server.server.processors
        for code in table.codes():
            registration = table.lookup(code)
            assert registration is not None
            hook = (before or {}).get(code)
            table.register(
                code,
                recording._record(registration.processor, hook),
                reject_request=registration.reject_request,
            )
        yield recording
        nursery.cancel_scope.cancel()
