"""The exceptions of :mod:`pyrocket.client.blocking`, under the names of
``rocketmq.exceptions`` (PyPI's ``rocketmq`` package), rooted in
:class:`~pyrocket.errors.PyrocketError`. The cause (``__cause__``) is the
pyrocket error underneath."""

from __future__ import annotations

from pyrocket.errors import PyrocketError


class RocketMQException(PyrocketError):
    """The base class of the blocking clients' errors."""


class NullPointerException(RocketMQException):
    """Kept for the name; pyrocket raises it for a call on a client that has
    no running loop (never started, or shut down)."""


class MallocFailed(RocketMQException):
    """Kept for the name; never raised."""


class ProducerException(RocketMQException):
    pass


class ProducerStartFailed(ProducerException):
    pass


class ProducerSendSyncFailed(ProducerException):
    pass


class ProducerSendOnewayFailed(ProducerException):
    pass


class ProducerSendOrderlyFailed(ProducerException):
    pass


class ProducerSendBatchFailed(ProducerException):
    pass


class ProducerSendAsyncFailed(ProducerException):
    """What ``send_async``'s exception callback gets; ``error``, ``file``,
    ``line`` and ``type`` as the C++ client fills them (here: 0, the
    Python file, 0 and the pyrocket error's class name)."""

    def __init__(self, msg: str, error: int, file: str, line: int, type: str) -> None:
        super().__init__(msg)
        self.error = error
        self.file = file
        self.line = line
        self.type = type


class ProducerSendTransactionFailed(ProducerException):
    pass


class ConsumerException(RocketMQException):
    pass


class PushConsumerStartFailed(ConsumerException):
    pass


class PullConsumerStartFailed(ConsumerException):
    """Kept for the name; the blocking API has no PullConsumer."""


class PullConsumerFetchMQFailed(ConsumerException):
    """Kept for the name; the blocking API has no PullConsumer."""


class PullConsumerFetchMessageFailed(ConsumerException):
    """Kept for the name; the blocking API has no PullConsumer."""


__all__ = [
    "ConsumerException",
    "MallocFailed",
    "NullPointerException",
    "ProducerException",
    "ProducerSendAsyncFailed",
    "ProducerSendBatchFailed",
    "ProducerSendOnewayFailed",
    "ProducerSendOrderlyFailed",
    "ProducerSendSyncFailed",
    "ProducerSendTransactionFailed",
    "ProducerStartFailed",
    "PullConsumerFetchMQFailed",
    "PullConsumerFetchMessageFailed",
    "PullConsumerStartFailed",
    "PushConsumerStartFailed",
    "RocketMQException",
]
