"""Giving a consumed message back to the brokers (Java's
``DefaultMQPushConsumerImpl.sendMessageBack`` and the orderly service's
``sendMessageBack``).

The first way is CONSUMER_SEND_MSG_BACK to the master of the queue's broker:
the broker stores the message again on the group's ``%RETRY%`` topic (or its
``%DLQ%`` topic once it has been consumed too often). When that fails, Java
sends a copy to ``%RETRY%<group>`` with a producer of its own (RETRY_TOPIC,
ORIGIN_MESSAGE_ID, RECONSUME_TIME and MAX_RECONSUME_TIMES set, delay level
3 + reconsume times); so does :class:`MessageBack`, with a producer of group
``CLIENT_INNER_PRODUCER`` started on first need and closed with the consumer.
The orderly service only has the second way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from pyrocket.client.instance import CLIENT_INNER_PRODUCER_GROUP, ClientInstance
from pyrocket.client.producer import Producer
from pyrocket.client.pulling import retry_topic
from pyrocket.errors import PyrocketError
from pyrocket.protocol.headers import ConsumerSendMsgBackRequestHeader
from pyrocket.protocol.message import Message, MessageConst, MessageExt

log = logging.getLogger("pyrocket.client.consumer")


class MessageBack:
    """Sends a group's messages back for a later attempt."""

    def __init__(
        self,
        instance: ClientInstance,
        group: str,
        max_reconsume_times: Callable[[], int],
        make_producer: Callable[[], Producer],
        timeout: float,
    ) -> None:
        self.instance = instance
        self.group = group
        self._max_reconsume_times = max_reconsume_times
        self._make_producer = make_producer
        self._timeout = timeout
        self._producer: Producer | None = None
        self._starting = trio.Lock()

    async def send_back(
        self, message: MessageExt, delay_level: int, broker_name: str | None
    ) -> None:
        """CONSUMER_SEND_MSG_BACK, else a copy through the inner producer.
        Raises PyrocketError (or ClientError) when both fail."""
        addr = str(message.store_host)
        if broker_name is not None:
            addr = self.instance.master_addr(broker_name) or addr
        header = ConsumerSendMsgBackRequestHeader(
            offset=message.commit_log_offset,
            group=self.group,
            delay_level=delay_level,
            origin_msg_id=message.uniq_key or message.msg_id,
            origin_topic=message.topic,
            unit_mode=False,
            max_reconsume_times=self._max_reconsume_times(),
        )
        try:
            await self.instance.brokers.consumer_send_msg_back(addr, header, self._timeout)
        except PyrocketError as exc:
            log.warning(
                "%s: sending message %s back failed (%s); resending it",
                self.group,
                message.msg_id,
                exc,
            )
            await self.resend(message, message.reconsume_times + 1)

    async def resend(self, message: MessageExt, reconsume_times: int) -> None:
        """Send a copy of ``message`` to the group's retry topic, marked as
        consumed ``reconsume_times`` times (the broker moves it to the
        dead-letter topic once that reaches MAX_RECONSUME_TIMES). Raises
        PyrocketError / ClientError."""
        properties = dict(message.properties)
        origin = properties.get(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID)
        properties[MessageConst.PROPERTY_ORIGIN_MESSAGE_ID] = (
            origin or message.uniq_key or message.msg_id
        )
        properties[MessageConst.PROPERTY_RETRY_TOPIC] = message.topic
        properties[MessageConst.PROPERTY_RECONSUME_TIME] = str(reconsume_times)
        properties[MessageConst.PROPERTY_MAX_RECONSUME_TIMES] = str(self._max_reconsume_times())
        properties.pop(MessageConst.PROPERTY_TRANSACTION_PREPARED, None)
        properties[MessageConst.PROPERTY_DELAY_TIME_LEVEL] = str(3 + message.reconsume_times)
        copy = Message(retry_topic(self.group), message.body, properties, message.flag)
        producer = await self._inner_producer()
        await producer.send(copy)

    async def _inner_producer(self) -> Producer:
        async with self._starting:
            if self._producer is None:
                self._producer = await self.instance.nursery.start(self._run_producer)
        return self._producer

    async def _run_producer(self, task_status: trio.TaskStatus[Producer]) -> None:
        async with self._make_producer() as producer:
            task_status.started(producer)
            await trio.sleep_forever()


__all__ = ["CLIENT_INNER_PRODUCER_GROUP", "MessageBack"]
