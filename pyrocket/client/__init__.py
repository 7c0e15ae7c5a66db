"""Clients of RocketMQ servers: typed requests to NameServers and brokers
(:mod:`~pyrocket.client.namesrv_api`, :mod:`~pyrocket.client.broker_api`),
and, built on them, a producer and a consumer that work with any 4.x
cluster as Java 4.7.0's ``DefaultMQProducer`` and ``DefaultMQPushConsumer``
do (:mod:`~pyrocket.client.producer`, :mod:`~pyrocket.client.consumer`), a
lite pull consumer as ``DefaultLitePullConsumer``
(:mod:`~pyrocket.client.lite_pull`), a
transactional producer as ``TransactionMQProducer``
(:mod:`~pyrocket.client.transaction`), and mqadmin's operations
(:mod:`~pyrocket.client.admin`)::

    from pyrocket.client import Producer, PushConsumer, new_message

    async with Producer("my_producers", ["127.0.0.1:9876"]) as producer:
        result = await producer.send(new_message("TopicTest", b"hi", tags="TagA"))
        # also: send_oneway, send_orderly(message, shard_key), send_batch([...])
        future = await producer.send_async(new_message("TopicTest", b"later"))
        result = await future                # many futures can be in flight at once
        await producer.send_with_callback(message, on_success, on_exception)
        reply = await producer.request(new_message("RpcTopic", b"ping"), timeout=3.0)

    consumer = PushConsumer("my_consumers", ["127.0.0.1:9876"])
    consumer.subscribe("TopicTest", "TagA || TagB")
    # or MessageSelector.by_sql("a > 5 AND b IN ('x', 'y')") (SQL92 over
    # message properties; the broker needs enablePropertyFilter=true)
    async with consumer:
        async for message in consumer:       # or: await consumer.poll(32, timeout=1)
            ...                              # reconsume_later(message) to get it again
            # a reply to a request: await producer.send(create_reply_message(message, b"pong"))

    async with LitePullConsumer("my_pullers", ["127.0.0.1:9876"]) as puller:
        await puller.subscribe("TopicTest")  # or: await puller.assign(queues)
        messages = await puller.poll(timeout=1.0)   # seek, pause, commit_sync, ...

    async with Admin(["127.0.0.1:9876"]) as admin:
        await admin.update_topic_in_cluster("DefaultCluster", TopicConfig("TopicTest"))

The command line has the same as ``pyrocket produce``, ``pyrocket consume``
(:mod:`pyrocket.cli.clients`) and ``pyrocket admin``.
"""

from pyrocket.client.admin import Admin, AdminError
from pyrocket.client.async_send import SendFuture
from pyrocket.client.consume_concurrently import ConsumeConcurrentlyStatus
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.fault import FaultStrategy
from pyrocket.client.instance import ClientError
from pyrocket.client.lite_pull import LitePullConsumer
from pyrocket.client.messages import QueueSelector, select_by_hash, select_by_random
from pyrocket.client.orderly import ConsumeOrderlyStatus
from pyrocket.client.producer import Producer, SendResult, SendStatus, new_message
from pyrocket.client.request_reply import RequestTimeoutError, create_reply_message
from pyrocket.client.selector import MessageSelector
from pyrocket.client.transaction import (
    LocalTransactionState,
    TransactionProducer,
    TransactionSendResult,
)
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageModel, MessageQueue
from pyrocket.protocol.message import Message

__all__ = [
    "Admin",
    "AdminError",
    "ClientError",
    "ConsumeConcurrentlyStatus",
    "ConsumeFromWhere",
    "ConsumeOrderlyStatus",
    "FaultStrategy",
    "LitePullConsumer",
    "LocalTransactionState",
    "Message",
    "MessageModel",
    "MessageQueue",
    "MessageSelector",
    "Producer",
    "PushConsumer",
    "QueueSelector",
    "RequestTimeoutError",
    "SendFuture",
    "SendResult",
    "SendStatus",
    "TransactionProducer",
    "TransactionSendResult",
    "create_reply_message",
    "new_message",
    "select_by_hash",
    "select_by_random",
]
