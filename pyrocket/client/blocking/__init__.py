"""A way off rocketmq-client-python: the blocking API of PyPI's ``rocketmq``
package (its ``rocketmq.client``, the 0.4 names and the 2.x ones) on top of
pyrocket's async clients, so an application switches by changing::

    from rocketmq.client import Producer, PushConsumer, Message

to::

    from pyrocket.client.blocking import Producer, PushConsumer, Message

Each blocking client object runs one trio loop in a daemon thread of its own
between ``start`` and ``shutdown`` (which closes the async client and joins
the thread); its methods call into it with ``trio.from_thread.run``:

* :class:`Producer`: ``send_sync``, ``send_oneway``, ``send_async``,
  ``send_batch``, ``send_orderly(msg, arg, retry_times, queue_selector)``
  (``queue_selector(queue_count, msg, arg)`` gets ``arg`` as is, not as a
  ctypes pointer), ``send_orderly_with_sharding_key``,
  ``send_oneway_orderly``; :class:`TransactionMQProducer` with
  ``send_message_in_transaction`` (on :class:`pyrocket.client.TransactionProducer`);
* :class:`PushConsumer`: ``subscribe(topic, callback, expression)``;
  callbacks run in the consumer's consume threads (``set_thread_count``)
  and return None / ``ConsumeStatus.CONSUME_SUCCESS`` (acknowledged) or
  ``ConsumeStatus.RECONSUME_LATER`` (given back; raising does the same);
* setters with no meaning here are accepted and documented where they are
  (``set_namesrv_domain``, ``set_message_batch_max_size``, the ``channel`` of
  ``set_session_credentials``).

Errors carry ``rocketmq.exceptions``' names (:mod:`.exceptions`), with the
pyrocket error as ``__cause__``. There is no PullConsumer (use
:class:`pyrocket.client.LitePullConsumer`).
"""

from pyrocket.client.blocking.consumer import PushConsumer
from pyrocket.client.blocking.exceptions import (
    ConsumerException,
    ProducerException,
    ProducerSendAsyncFailed,
    ProducerSendBatchFailed,
    ProducerSendOnewayFailed,
    ProducerSendOrderlyFailed,
    ProducerSendSyncFailed,
    ProducerSendTransactionFailed,
    ProducerStartFailed,
    PushConsumerStartFailed,
    RocketMQException,
)
from pyrocket.client.blocking.messages import (
    ConsumeStatus,
    Message,
    MessageModel,
    MessageProperty,
    RecvMessage,
    SendResult,
    SendStatus,
    TransactionStatus,
)
from pyrocket.client.blocking.producer import (
    Producer,
    TransactionMQProducer,
    hashing_queue_selector,
)

__all__ = [
    "ConsumeStatus",
    "ConsumerException",
    "Message",
    "MessageModel",
    "MessageProperty",
    "Producer",
    "ProducerException",
    "ProducerSendAsyncFailed",
    "ProducerSendBatchFailed",
    "ProducerSendOnewayFailed",
    "ProducerSendOrderlyFailed",
    "ProducerSendSyncFailed",
    "ProducerSendTransactionFailed",
    "ProducerStartFailed",
    "PushConsumer",
    "PushConsumerStartFailed",
    "RecvMessage",
    "RocketMQException",
    "SendResult",
    "SendStatus",
    "TransactionMQProducer",
    "TransactionStatus",
    "hashing_queue_selector",
]
