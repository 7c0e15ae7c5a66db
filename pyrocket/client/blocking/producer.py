"""``Producer`` and ``TransactionMQProducer`` of the blocking API, on top of
:class:`pyrocket.client.Producer` / :class:`~pyrocket.client.TransactionProducer`
running in a loop thread of their own (:mod:`pyrocket.client.blocking.loop`)."""

from __future__ import annotations

import queue
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.blocking.exceptions import (
    NullPointerException,
    ProducerSendAsyncFailed,
    ProducerSendBatchFailed,
    ProducerSendOnewayFailed,
    ProducerSendOrderlyFailed,
    ProducerSendSyncFailed,
    ProducerSendTransactionFailed,
    ProducerStartFailed,
    RocketMQException,
)
from pyrocket.client.blocking.loop import ClientThread
from pyrocket.client.blocking.messages import Message, RecvMessage, local_state, send_result
from pyrocket.client.producer import Producer as AsyncProducer
from pyrocket.client.sending import SendResult as PyrocketSendResult
from pyrocket.client.transaction import LocalTransactionState, TransactionProducer
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.message import Message as PyrocketMessage
from pyrocket.protocol.message import MessageExt

#: ``queue_selector(queue_count, message, arg) -> index`` of send_orderly.
QueueSelectorCallback = Callable[[int, RecvMessage, Any], int]


def hashing_queue_selector(mq_size: int, msg: RecvMessage, arg: Any) -> int:
    """The default selector of ``send_orderly``: ``arg % mq_size`` (``arg``
    an int, passed as is rather than as a ctypes pointer)."""
    return int(arg) % mq_size


def split_addresses(addr: str | bytes) -> list[str]:
    """``"host:port;host:port"`` as the C++ client reads it."""
    text = addr.decode() if isinstance(addr, bytes) else addr
    return [part.strip() for part in text.replace(",", ";").split(";") if part.strip()]


class _Client:
    """What the blocking producer and consumer share: the settings the C++
    wrapper has setters for, and the loop thread. Setters take effect at
    :meth:`start`. ``start`` twice, ``shutdown`` twice or before ``start``
    do nothing; ``start`` after ``shutdown`` does nothing either (the C++
    client stays down), and calls then raise."""

    _kind = "client"

    def __init__(self, group_id: str | bytes) -> None:
        self.group_id = group_id.decode() if isinstance(group_id, bytes) else group_id
        self.namesrv_addresses: list[str] = []
        self.credentials: SessionCredentials | None = None
        self.instance_name: str | None = None
        self._thread: ClientThread[Any] | None = None
        self._shut_down = False

    def set_group(self, group_name: str) -> None:
        self.group_id = group_name

    def set_namesrv_addr(self, addr: str) -> None:
        self.namesrv_addresses = split_addresses(addr)

    set_name_server_address = set_namesrv_addr

    def set_namesrv_domain(self, domain: str) -> None:
        """Accepted and ignored: pyrocket has no name-server address service
        (give the addresses with set_namesrv_addr)."""

    set_name_server_domain = set_namesrv_domain

    def set_session_credentials(self, access_key: str, access_secret: str, channel: str) -> None:
        """ACL keys (``channel`` is not sent: the 4.7 ACL does not use it)."""
        self.credentials = SessionCredentials(access_key, access_secret)

    def set_instance_name(self, name: str) -> None:
        self.instance_name = name

    def _open(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _start_failed(self, exc: BaseException) -> RocketMQException:
        return ProducerStartFailed(str(exc))

    def start(self) -> None:
        if self._thread is not None or self._shut_down:
            return
        if not self.namesrv_addresses:
            raise self._start_failed(ValueError("no name server address set"))
        thread: ClientThread[Any] = ClientThread(f"{self._kind} {self.group_id}", self._open)
        try:
            thread.start()
        except Exception as exc:
            raise self._start_failed(exc) from exc
        self._thread = thread

    def shutdown(self) -> None:
        thread = self._thread
        if thread is None:
            return
        thread.stop()
        self._thread = None
        self._shut_down = True

    def _loop(self) -> ClientThread[Any]:
        if self._thread is None:
            raise NullPointerException(f"{self._kind} {self.group_id} is not started")
        return self._thread

    def __enter__(self) -> None:
        self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


class Producer(_Client):
    """``rocketmq.client.Producer``. ``timeout`` is in milliseconds."""

    _kind = "producer"

    def __init__(
        self,
        group_id: str,
        timeout: int | None = None,
        compress_level: int | None = None,
        max_message_size: int | None = None,
    ) -> None:
        super().__init__(group_id)
        self.options: dict[str, Any] = {}
        if timeout is not None:
            self.set_timeout(timeout)
        if compress_level is not None:
            self.set_compress_level(compress_level)
        if max_message_size is not None:
            self.set_max_message_size(max_message_size)

    def set_timeout(self, timeout: int) -> None:
        """The send timeout in milliseconds (pyrocket's ``send_timeout``)."""
        self.options["send_timeout"] = timeout / 1000.0

    def set_compress_level(self, level: int) -> None:
        self.options["compress_level"] = level

    def set_max_message_size(self, max_size: int) -> None:
        self.options["max_message_size"] = max_size

    def _client_options(self) -> dict[str, Any]:
        return dict(self.options, instance_name=self.instance_name, credentials=self.credentials)

    def _open(self) -> AbstractAsyncContextManager[Any]:
        return AsyncProducer(self.group_id, self.namesrv_addresses, **self._client_options())

    def _send(self, error: type[RocketMQException], send: Callable[[Any], Any]) -> Any:
        try:
            return self._loop().call(send)
        except RocketMQException:
            raise
        except (PyrocketError, ValueError) as exc:
            raise error(str(exc)) from exc

    def send_sync(self, msg: Message) -> Any:
        message = msg.to_pyrocket()

        async def send(producer: AsyncProducer) -> PyrocketSendResult:
            return await producer.send(message)

        return send_result(self._send(ProducerSendSyncFailed, send))

    def send_batch(self, msgs: Sequence[Message]) -> Any:
        assert len(msgs) > 0, "Batch message length should be greater than 0"
        messages = [msg.to_pyrocket() for msg in msgs]

        async def send(producer: AsyncProducer) -> PyrocketSendResult:
            return await producer.send_batch(messages)

        return send_result(self._send(ProducerSendBatchFailed, send))

    def send_oneway(self, msg: Message) -> None:
        message = msg.to_pyrocket()

        async def send(producer: AsyncProducer) -> None:
            await producer.send_oneway(message)

        self._send(ProducerSendOnewayFailed, send)

    def send_async(
        self,
        msg: Message,
        success_callback: Callable[[Any], None] | None,
        exception_callback: Callable[[ProducerSendAsyncFailed], None] | None,
    ) -> None:
        """Start a send; the callback runs in the producer's loop thread (it
        must not call the producer's blocking methods)."""
        message = msg.to_pyrocket()

        def on_success(result: PyrocketSendResult) -> None:
            if success_callback is not None:
                success_callback(send_result(result))

        def on_exception(exc: BaseException) -> None:
            if exception_callback is not None:
                exception_callback(
                    ProducerSendAsyncFailed(str(exc), 0, __file__, 0, type(exc).__name__)
                )

        async def send(producer: AsyncProducer) -> None:
            await producer.send_with_callback(message, on_success, on_exception)

        self._send(ProducerSendSyncFailed, send)

    def _selector(self, queue_selector: QueueSelectorCallback) -> Any:
        def select(queues: Sequence[MessageQueue], message: PyrocketMessage, arg: object) -> Any:
            return queues[queue_selector(len(queues), RecvMessage(message), arg)]

        return select

    def send_orderly(
        self,
        msg: Message,
        arg: Any,
        retry_times: int = 3,
        queue_selector: QueueSelectorCallback = hashing_queue_selector,
    ) -> Any:
        """Send to the queue ``queue_selector(queue_count, msg, arg)`` picks,
        trying up to ``retry_times`` times in all."""
        message = msg.to_pyrocket()
        selector = self._selector(queue_selector)

        async def send(producer: AsyncProducer) -> PyrocketSendResult:
            for _ in range(max(1, retry_times) - 1):
                try:
                    return await producer.send_orderly(message, arg, selector)
                except PyrocketError:
                    continue
            return await producer.send_orderly(message, arg, selector)

        return send_result(self._send(ProducerSendOrderlyFailed, send))

    def send_orderly_with_sharding_key(self, msg: Message, sharding_key: str) -> Any:
        """Send to the queue of ``sharding_key`` (its Java hash, as
        :func:`pyrocket.client.select_by_hash` picks)."""
        message = msg.to_pyrocket()

        async def send(producer: AsyncProducer) -> PyrocketSendResult:
            return await producer.send_orderly(message, sharding_key)

        return send_result(self._send(ProducerSendOrderlyFailed, send))

    def send_oneway_orderly(
        self, msg: Message, arg: Any, queue_selector: QueueSelectorCallback = hashing_queue_selector
    ) -> None:
        message = msg.to_pyrocket()
        selector = self._selector(queue_selector)

        async def send(producer: AsyncProducer) -> None:
            await producer.send_oneway(message, shard_key=arg, selector=selector)

        self._send(ProducerSendOnewayFailed, send)


#: ``local_execute(message, user_args) -> TransactionStatus``.
LocalExecute = Callable[[RecvMessage, Any], Any]
#: ``checker_callback(message) -> TransactionStatus``.
Checker = Callable[[RecvMessage], Any]


def _reply(
    channel: trio.MemorySendChannel[tuple[bool, object]], answer: tuple[bool, object]
) -> Callable[[Any], Awaitable[None]]:
    async def reply(_: object) -> None:
        await channel.send(answer)

    return reply


class TransactionMQProducer(Producer):
    """``rocketmq.client.TransactionMQProducer`` (of the 2.x wrapper) on
    :class:`pyrocket.client.TransactionProducer`. ``local_execute`` runs in
    the thread that called :meth:`send_message_in_transaction`; the checker
    answers a broker's checks in a worker thread."""

    _kind = "transaction producer"

    def __init__(
        self,
        group_id: str,
        checker_callback: Checker,
        user_args: Any = None,
        timeout: int | None = None,
        compress_level: int | None = None,
        max_message_size: int | None = None,
    ) -> None:
        super().__init__(group_id, timeout, compress_level, max_message_size)
        self.checker_callback = checker_callback
        self.user_args = user_args

    async def _check(self, message: MessageExt) -> LocalTransactionState:
        status = await trio.to_thread.run_sync(self.checker_callback, RecvMessage(message))
        return local_state(status)

    @staticmethod
    async def _execute(message: PyrocketMessage, arg: Any) -> LocalTransactionState:
        run: Callable[[PyrocketMessage], Any] = arg
        return local_state(await run(message))

    def _open(self) -> AbstractAsyncContextManager[Any]:
        return TransactionProducer(
            self.group_id,
            self.namesrv_addresses,
            execute_local=self._execute,
            check_local=self._check,
            **self._client_options(),
        )

    def send_message_in_transaction(
        self, message: Message, local_execute: LocalExecute, user_args: Any = None
    ) -> Any:
        """Send ``message`` prepared, run ``local_execute(message,
        user_args)`` here, end the transaction as it answered."""
        prepared = message.to_pyrocket()
        loop = self._loop()
        mailbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        async def ask_caller(sent: PyrocketMessage) -> object:
            send_answer, receive_answer = trio.open_memory_channel[tuple[bool, object]](1)
            mailbox.put(("execute", (sent, send_answer)))
            ok, answer = await receive_answer.receive()
            if not ok:
                raise answer  # type: ignore[misc]
            return answer

        async def run(producer: TransactionProducer) -> None:
            try:
                result = await producer.send_in_transaction(prepared, ask_caller)
            except BaseException as exc:
                mailbox.put(("error", exc))
                if not isinstance(exc, Exception):
                    raise
            else:
                mailbox.put(("done", result))

        loop.spawn(run)
        while True:
            kind, value = mailbox.get()
            if kind == "execute":
                sent, send_answer = value
                try:
                    answer: tuple[bool, object] = (
                        True,
                        local_execute(RecvMessage(sent), user_args),
                    )
                except Exception as exc:
                    answer = (False, exc)
                loop.call(_reply(send_answer, answer))
            elif kind == "error":
                raise ProducerSendTransactionFailed(str(value)) from value
            else:
                return send_result(value)
