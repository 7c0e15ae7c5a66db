"""The requests a broker forwards to a push consumer
(:class:`~pyrocket.client.consumer.PushConsumer`) on an operator's behalf, and
NOTIFY_CONSUMER_IDS_CHANGED: GET_CONSUMER_RUNNING_INFO,
RESET_CONSUMER_CLIENT_OFFSET (:meth:`ConsumerRequests.reset_offset`),
GET_CONSUMER_STATUS_FROM_CLIENT and CONSUME_MESSAGE_DIRECTLY (their answers
in :mod:`pyrocket.client.client_requests`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import trio

from pyrocket.client.client_requests import (
    DirectHandler,
    consume_directly,
    reset_table,
    status_answer,
)
from pyrocket.client.instance import ClientInstance
from pyrocket.client.orderly import OrderlyService
from pyrocket.client.pulling import QueueState
from pyrocket.client.rebalance import QueueTable
from pyrocket.client.running_info import task_dump
from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies.admin import ConsumerRunningInfo
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    GetConsumerRunningInfoRequestHeader,
    GetConsumerStatusRequestHeader,
    ResetOffsetRequestHeader,
)
from pyrocket.remoting import Connection, RemotingClient

log = logging.getLogger("pyrocket.client.consumer")


class ConsumerRequests:
    """The request handlers of PushConsumer; the consumer sets the state."""

    group: str
    instance: ClientInstance
    direct_handler: DirectHandler | None
    _table: QueueTable
    _orderly: OrderlyService | None
    _running: bool
    _wakeup: trio.Event

    def running_info(self) -> ConsumerRunningInfo:
        raise NotImplementedError

    async def _persist(self, state: QueueState, *, oneway: bool) -> None:
        raise NotImplementedError

    def _register_processors(self, remoting: RemotingClient) -> None:
        remoting.register_processor(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed)
        remoting.register_processor(
            RequestCode.GET_CONSUMER_RUNNING_INFO, self._on_get_running_info
        )
        remoting.register_processor(RequestCode.RESET_CONSUMER_CLIENT_OFFSET, self._on_reset_offset)
        remoting.register_processor(
            RequestCode.GET_CONSUMER_STATUS_FROM_CLIENT, self._on_get_status
        )
        remoting.register_processor(RequestCode.CONSUME_MESSAGE_DIRECTLY, self._on_consume_directly)

    def _on_ids_changed(self, conn: Connection, request: RemotingCommand) -> None:
        log.info("consumer ids of group %s changed; rebalancing", self.group)
        self._wakeup.set()

    def _on_get_running_info(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetConsumerRunningInfoRequestHeader)
        if header.consumer_group != self.group:
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"The Consumer Group <{header.consumer_group}> not exist in this consumer",
            )
        info = self.running_info()
        if header.jstack_enable:
            info = dataclasses.replace(info, jstack=task_dump())
        return RemotingCommand.response(ResponseCode.SUCCESS, body=info.encode())

    def _on_reset_offset(self, conn: Connection, request: RemotingCommand) -> None:
        header = request.decode_header(ResetOffsetRequestHeader)
        if header.group != self.group or self._table.closing or not self._running:
            return
        try:
            table = reset_table(request.body)
        except ProtocolError as exc:
            log.warning("%s: bad reset offset body from %s: %s", self.group, conn, exc)
            return
        self.instance.nursery.start_soon(self.reset_offset, header.topic, table)

    async def reset_offset(self, topic: str, offsets: Mapping[MessageQueue, int]) -> None:
        """Move the queues of ``topic`` named in ``offsets`` there: each is
        dropped (what was pulled and not yet handed out is discarded), its
        offset set and committed, and rebalance takes it up again from the
        new offset (Java's ``resetOffset``); an orderly queue is unlocked and
        taken up again once the batch it is consuming, if any, ends."""
        log.info("%s: resetting %d queues of %s", self.group, len(offsets), topic)
        async with self._table.lock:
            if self._table.closing:
                return
            for queue, offset in offsets.items():
                if queue.topic != topic:
                    continue
                state = self._table.drop(queue)
                if state is None:
                    continue
                state.consumed = offset
                await self._persist(state, oneway=False)
                if self._orderly is not None:  # not read again while its batch runs
                    await self._orderly.release(state)
        self._wakeup.set()

    def _on_get_status(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetConsumerStatusRequestHeader)
        offsets: dict[MessageQueue, int] = {}
        if header.group == self.group:
            for queue, state in self._table.queues.items():
                if queue.topic == header.topic and state.consumed >= 0:
                    offsets[queue] = state.consumed
        return status_answer(offsets)

    async def _on_consume_directly(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        return await consume_directly(request, self.group, self.direct_handler)


__all__ = ["ConsumerRequests"]
