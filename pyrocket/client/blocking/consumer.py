"""``PushConsumer`` of the blocking API on :class:`pyrocket.client.PushConsumer`
running in a loop thread of its own. Callbacks run in consume threads of
the blocking consumer (``set_thread_count``; one when ``orderly``), each
taking the next message from the loop; returning
``ConsumeStatus.RECONSUME_LATER`` or raising gives the message back
(CONSUMER_SEND_MSG_BACK), anything else acknowledges it."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from pyrocket.client.blocking.exceptions import PushConsumerStartFailed, RocketMQException
from pyrocket.client.blocking.messages import ConsumeStatus, MessageModel, RecvMessage
from pyrocket.client.blocking.producer import _Client
from pyrocket.client.consumer import PushConsumer as AsyncPushConsumer
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageModel as AsyncMessageModel
from pyrocket.protocol.message import MessageExt

log = logging.getLogger("pyrocket.client.blocking")

#: How long a consume thread waits in the loop for a message before it
#: looks whether the consumer is shutting down (seconds).
TAKE_WAIT = 0.25

#: ``callback(message) -> ConsumeStatus | None``.
ConsumeCallback = Callable[[RecvMessage], Any]


class PushConsumer(_Client):
    """``rocketmq.client.PushConsumer`` (CLUSTERING or BROADCASTING)."""

    _kind = "push consumer"

    def __init__(
        self,
        group_id: str,
        orderly: bool = False,
        message_model: MessageModel = MessageModel.CLUSTERING,
    ) -> None:
        super().__init__(group_id)
        self.orderly = orderly
        self.thread_count = os.cpu_count() or 1
        self.options: dict[str, Any] = {}
        self._callbacks: dict[str, tuple[str, ConsumeCallback]] = {}
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.set_message_model(message_model)

    def set_message_model(self, model: MessageModel) -> None:
        """CLUSTERING (the group shares the queues) or BROADCASTING (every
        consumer gets every message; offsets in a local file, see
        :mod:`pyrocket.client.local_offsets`). Call before ``start``."""
        self.message_model = AsyncMessageModel[MessageModel(model).name]

    def set_thread_count(self, thread_count: int) -> None:
        """How many threads run callbacks (an orderly consumer uses one)."""
        self.thread_count = max(1, int(thread_count))

    def set_message_batch_max_size(self, max_size: int) -> None:
        """Accepted and ignored: callbacks get one message at a time, as the
        C++ wrapper's do."""

    def subscribe(self, topic: str, callback: ConsumeCallback, expression: str = "*") -> None:
        self._callbacks[topic] = (expression, callback)

    def _start_failed(self, exc: BaseException) -> RocketMQException:
        return PushConsumerStartFailed(str(exc))

    def _open(self) -> AbstractAsyncContextManager[Any]:
        consumer = AsyncPushConsumer(
            self.group_id,
            self.namesrv_addresses,
            instance_name=self.instance_name,
            credentials=self.credentials,
            message_model=self.message_model,
            **self.options,
        )
        for topic, (expression, _) in self._callbacks.items():
            consumer.subscribe(topic, expression)
        return consumer

    def start(self) -> None:
        if self._thread is not None or self._shut_down:
            return
        if not self._callbacks:
            raise PushConsumerStartFailed("no subscription: call subscribe before start")
        super().start()
        self._stopping.clear()
        for i in range(1 if self.orderly else self.thread_count):
            worker = threading.Thread(
                target=self._consume, name=f"consume {self.group_id} {i}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def shutdown(self) -> None:
        self._stopping.set()
        for worker in self._workers:
            worker.join()
        self._workers.clear()
        super().shutdown()

    @staticmethod
    async def _take(consumer: AsyncPushConsumer) -> MessageExt | None:
        with trio.move_on_after(TAKE_WAIT):
            return await consumer.receive()
        return None

    def _consume(self) -> None:
        loop = self._loop()
        while not self._stopping.is_set():
            try:
                message = loop.call(self._take)
            except (RocketMQException, trio.ClosedResourceError, trio.EndOfChannel):
                return
            if message is None:
                continue
            if self._deliver(message) is ConsumeStatus.RECONSUME_LATER:
                self._give_back(message)

    def _deliver(self, message: MessageExt) -> ConsumeStatus:
        entry = self._callbacks.get(message.topic)
        if entry is None:
            return ConsumeStatus.CONSUME_SUCCESS
        try:
            status = entry[1](RecvMessage(message))
        except Exception:
            log.exception(
                "%s: the consume callback raised; the message is reconsumed", self.group_id
            )
            return ConsumeStatus.RECONSUME_LATER
        if status is not None and status == ConsumeStatus.RECONSUME_LATER:
            return ConsumeStatus.RECONSUME_LATER
        return ConsumeStatus.CONSUME_SUCCESS

    def _give_back(self, message: MessageExt) -> None:
        async def back(consumer: AsyncPushConsumer) -> None:
            with trio.fail_after(consumer.timeout + 1):
                await consumer.reconsume_later(message)

        try:
            self._loop().call(back)
        except (PyrocketError, trio.TooSlowError) as exc:
            log.warning("%s: could not give a message back: %s", self.group_id, exc)
