"""Helpers for the producer and consumer tests: a ``pyrocket up`` pair on
loopback, and a scripted cluster (one RemotingServer answering as both
NameServer and broker) for wire-level and error-mapping checks."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from pyrocket.cli.up import Running, UpOptions, serve_up
from pyrocket.client.consumer import PushConsumer
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageQueue
from pyrocket.protocol.bodies.route import BrokerData, QueueData, TopicRouteData
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection, RemotingServer
from tests.remoting.helpers import wait_until


@asynccontextmanager
async def running_up(tmp_path: Path) -> AsyncIterator[Running]:
    """A pyrocket NameServer and broker (auto-create on) for the block."""
    options = UpOptions(data_dir=tmp_path / "data", namesrv_port=0, broker_port=0)
    async with trio.open_nursery() as nursery:
        running: Running = await nursery.start(serve_up, options)
        yield running
        nursery.cancel_scope.cancel()


def consumer(
    namesrv: str,
    group: str,
    topic: str,
    expression: str = "*",
    consume_from: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    **options: object,
) -> PushConsumer:
    """A consumer on loopback subscribed to ``topic``."""
    result = PushConsumer(
        group,
        [namesrv],
        client_ip="127.0.0.1",
        consume_from=consume_from,
        **options,  # type: ignore[arg-type]
    )
    result.subscribe(topic, expression)
    return result


async def wait_assigned(consumers: list[PushConsumer], topic: str, count: int) -> None:
    """Until ``consumers`` between them read ``count`` queues of ``topic``,
    each queue once, and each reads at least one."""

    def settled() -> bool:
        shares = [[q for q in c.assignment if q.topic == topic] for c in consumers]
        owned = [q for share in shares for q in share]
        return len(owned) == count == len(set(owned)) and all(shares)

    await wait_until(settled, 0.02)


def route_to(broker_names_and_addrs: list[tuple[str, str]], queues: int = 4) -> TopicRouteData:
    """A route with ``queues`` read/write queues on each (name, address)."""
    return TopicRouteData(
        queue_datas=tuple(
            QueueData(name, queues, queues, 6, 0) for name, _ in broker_names_and_addrs
        ),
        broker_datas=tuple(
            BrokerData("DefaultCluster", name, {0: addr}) for name, addr in broker_names_and_addrs
        ),
        filter_server_table={},
    )


#: Answers one request, at once or after awaiting.
Handler = Callable[[RemotingCommand], RemotingCommand | Awaitable[RemotingCommand | None] | None]


class ScriptedCluster:
    """Records every request; answers GET_ROUTEINFO_BY_TOPIC with ``route()``,
    HEART_BEAT / UNREGISTER_CLIENT with SUCCESS, and everything else with
    the handler registered for its code."""

    def __init__(self) -> None:
        self.server = RemotingServer()
        self.requests: list[RemotingCommand] = []
        self.route: Callable[[], TopicRouteData] = lambda: TopicRouteData()
        self.handlers: dict[int, Handler] = {}
        self.server.register_default_processor(self._answer)

    def seen(self, code: int) -> list[RemotingCommand]:
        return [r for r in self.requests if r.code == code]

    async def _answer(self, conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
        self.requests.append(request)
        handler = self.handlers.get(int(request.code))
        if handler is not None:
            answer = handler(request)
            return await answer if inspect.isawaitable(answer) else answer
        if request.code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            return RemotingCommand.response(ResponseCode.SUCCESS, body=self.route().encode())
        if request.code in (RequestCode.HEART_BEAT, RequestCode.UNREGISTER_CLIENT):
            return RemotingCommand.response(ResponseCode.SUCCESS)
        return RemotingCommand.response(ResponseCode.REQUEST_CODE_NOT_SUPPORTED, "not scripted")


def queue(topic: str, broker: str, queue_id: int) -> MessageQueue:
    return MessageQueue(topic, broker, queue_id)
