"""``pyrocket produce`` and ``pyrocket consume``: send and read messages from
the command line with :class:`~pyrocket.client.Producer` and
:class:`~pyrocket.client.PushConsumer`, against any 4.x cluster.

    pyrocket produce -n 127.0.0.1:9876 -t TopicTest [--tags TagA] [--keys K1]
                     [-p NAME=VALUE ...] [-g GROUP] [-c N]
                     [--mode sync|oneway|orderly] [--shard-key KEY] [--json] [BODY ...]
                     [--async | --oneway] [--sharding-key KEY]
    pyrocket consume -n 127.0.0.1:9876 -t TopicTest -g GROUP [-s "TagA || TagB"]
                     [-c N] [--from first|last|timestamp [--timestamp T]] [--json]
                     [--broadcast [--instance NAME] [--offset-dir DIR]]

Both take the TLS options of :mod:`pyrocket.cli.tls_options` (``--tls``,
``-Dtls.*=...``, ``--tls-trust-cert``, ``--tls-cert``, ``--tls-key``).

``produce`` sends each BODY (or, with none, each line of standard input) ``-c``
times and prints a SendResult per sync or orderly send, as Java prints one
(``SendResult [sendStatus=SEND_OK, msgId=..., ...]``), or a JSON object per
line with ``--json``. ``--async`` keeps the sends in flight together
(Producer.send_async) and prints their results in send order; ``--oneway``
is ``--mode oneway``; ``--sharding-key KEY`` sends every message to the queue
the key hashes to (as ``--mode orderly --shard-key KEY``, and with
``--async`` or ``--oneway`` too). ``consume`` prints every message it receives, one line
each (JSON with ``--json``), until ``-c`` messages or SIGINT; it commits the
group's offsets when it stops; with ``--broadcast`` it reads every queue
itself (BROADCASTING) and keeps its offsets in a local file (under
``--offset-dir``, default ``$HOME/.rocketmq_offsets``; a later run with the
same ``--instance`` resumes from it). ``-n`` defaults to ``$NAMESRV_ADDR``; several
NameServers are separated by ``;``. Failures are printed as
``pyrocket <command>: <reason>`` with exit status 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
from collections import deque
from collections.abc import Iterable
from typing import Any, TextIO

import trio

from pyrocket.cli.credentials import add_credential_options, credentials
from pyrocket.cli.serving import leaves
from pyrocket.cli.tls_options import add_tls_options, client_tls
from pyrocket.client.async_send import SendFuture
from pyrocket.client.consumer import PushConsumer
from pyrocket.client.instance import DEFAULT_PRODUCER_GROUP, ClientError
from pyrocket.client.orderly import ConsumeOrderlyStatus
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageModel, MessageQueue
from pyrocket.protocol.message import MessageExt


def _namesrv(args: argparse.Namespace) -> list[str]:
    text = args.namesrvAddr or os.environ.get("NAMESRV_ADDR", "")
    addresses = [a.strip() for a in text.split(";") if a.strip()]
    if not addresses:
        raise PyrocketError("no name server address: give -n or set NAMESRV_ADDR")
    return addresses


def queue_text(queue: MessageQueue) -> str:
    """``MessageQueue.toString``."""
    return (
        f"MessageQueue [topic={queue.topic}, brokerName={queue.broker_name}, "
        f"queueId={queue.queue_id}]"
    )


def result_text(result: SendResult) -> str:
    """``SendResult.toString``."""
    return (
        f"SendResult [sendStatus={result.status.value}, msgId={result.msg_id}, "
        f"offsetMsgId={result.offset_msg_id}, messageQueue={queue_text(result.queue)}, "
        f"queueOffset={result.queue_offset}]"
    )


def result_json(result: SendResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "msgId": result.msg_id,
        "offsetMsgId": result.offset_msg_id,
        "topic": result.queue.topic,
        "brokerName": result.queue.broker_name,
        "queueId": result.queue.queue_id,
        "queueOffset": result.queue_offset,
    }


def message_json(message: MessageExt) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "queueId": message.queue_id,
        "queueOffset": message.queue_offset,
        "msgId": message.uniq_key or message.msg_id,
        "offsetMsgId": message.msg_id,
        "tags": message.tags,
        "keys": message.keys,
        "bornTimestamp": message.born_timestamp,
        "storeTimestamp": message.store_timestamp,
        "reconsumeTimes": message.reconsume_times,
        "properties": dict(message.properties),
        "body": message.body.decode("utf-8", errors="backslashreplace"),
    }


def message_text(message: MessageExt) -> str:
    body = message.body.decode("utf-8", errors="backslashreplace")
    return (
        f"queueId={message.queue_id} queueOffset={message.queue_offset} "
        f"msgId={message.uniq_key or message.msg_id} tags={message.tags} "
        f"keys={message.keys} body={body}"
    )


def _properties(items: Iterable[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise PyrocketError(f"-p {item!r}: expected NAME=VALUE")
        result[name] = value
    return result


#: Results ``produce --async`` holds before waiting for the oldest one.
ASYNC_WINDOW = 1024


async def produce(args: argparse.Namespace, bodies: Iterable[bytes], out: TextIO) -> None:
    """Send ``bodies`` as ``args`` say, printing results to ``out``."""
    properties = _properties(args.property)
    mode = "oneway" if args.oneway else args.mode
    shard_key: str | None = args.sharding_key
    if shard_key is None and mode == "orderly":
        shard_key = args.shard_key
    pending: deque[SendFuture[SendResult]] = deque()

    def report(result: SendResult) -> None:
        print(json.dumps(result_json(result)) if args.json else result_text(result), file=out)
        out.flush()

    keys = credentials(args, tools_yml=False)
    async with Producer(
        args.group, _namesrv(args), tls=client_tls(args), credentials=keys
    ) as producer:
        for body in bodies:
            for _ in range(args.count):
                message = new_message(
                    args.topic, body, tags=args.tags, keys=args.keys, properties=properties
                )
                if mode == "oneway":
                    await producer.send_oneway(message, shard_key=shard_key)
                elif args.use_async:
                    pending.append(await producer.send_async(message, shard_key=shard_key))
                    while pending and (pending[0].done() or len(pending) >= ASYNC_WINDOW):
                        report(await pending.popleft())
                elif shard_key is not None:
                    report(await producer.send_orderly(message, shard_key))
                else:
                    report(await producer.send(message))
        while pending:
            report(await pending.popleft())


async def consume(args: argparse.Namespace, out: TextIO) -> None:
    """Print messages of ``args.topic`` until ``args.count`` or SIGINT/SIGTERM."""
    where, when = consume_start(args)
    keys = credentials(args, tools_yml=False)
    consumer = PushConsumer(
        args.group,
        _namesrv(args),
        consume_from=where,
        consume_timestamp=when,
        tls=client_tls(args),
        credentials=keys,
        orderly=args.orderly,
        message_model=MessageModel.BROADCASTING if args.broadcast else MessageModel.CLUSTERING,
        instance_name=args.instance,
        local_offset_store_dir=args.offset_dir,
    )
    consumer.subscribe(args.topic, args.subExpression)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with consumer, trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            if args.orderly:
                await consume_orderly(consumer, args, out)
                nursery.cancel_scope.cancel()
                return
            received = 0
            async for message in consumer:
                line = json.dumps(message_json(message)) if args.json else message_text(message)
                print(line, file=out)
                out.flush()
                received += 1
                if args.count and received >= args.count:
                    break
            nursery.cancel_scope.cancel()


async def consume_orderly(consumer: PushConsumer, args: argparse.Namespace, out: TextIO) -> None:
    """``consume --orderly``: print each queue's messages in queue order,
    until ``args.count`` (if set) have been printed."""
    done = trio.Event()
    received = 0

    async def show(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        nonlocal received
        for message in messages:
            line = json.dumps(message_json(message)) if args.json else message_text(message)
            print(line, file=out)
            received += 1
        out.flush()
        if args.count and received >= args.count:
            done.set()
        return ConsumeOrderlyStatus.SUCCESS

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer.consume_orderly, show)
        await done.wait()
        nursery.cancel_scope.cancel()


#: ``consume --from``: where a group without committed offsets starts.
_CONSUME_FROM = {
    "first": ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
    "last": ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
    "timestamp": ConsumeFromWhere.CONSUME_FROM_TIMESTAMP,
}


def consume_start(args: argparse.Namespace) -> tuple[ConsumeFromWhere, int | None]:
    """``--from`` / ``--from-first`` / ``--timestamp``: the consumer's
    ``consume_from`` and ``consume_timestamp`` (None: its default, half an
    hour ago). Raises ClientError."""
    start = "first" if args.from_first else args.start
    when = consume_timestamp(args.timestamp) if args.timestamp is not None else None
    if when is not None and start != "timestamp":
        raise ClientError("--timestamp goes with --from timestamp")
    return _CONSUME_FROM[start], when


def consume_timestamp(text: str) -> int:
    """``--timestamp``: Java's ``consumeTimestamp`` form ``yyyyMMddHHmmss``
    (local time), or milliseconds since the epoch; in milliseconds. Raises
    ClientError."""
    text = text.strip()
    if len(text) == 14 and text.isdigit():
        try:
            parsed = datetime.datetime.strptime(text, "%Y%m%d%H%M%S")
        except ValueError:
            raise ClientError(f"--timestamp {text}: not a yyyyMMddHHmmss time") from None
        return int(parsed.timestamp() * 1000)
    if text.isdigit():
        return int(text)
    raise ClientError(f"--timestamp {text}: expected yyyyMMddHHmmss or milliseconds")


def _run(program: str, main: Any, *main_args: Any) -> int:
    try:
        trio.run(main, *main_args)
    except BaseExceptionGroup as group:
        failures = [leaf for leaf in leaves(group) if not isinstance(leaf, KeyboardInterrupt)]
        for leaf in failures:
            print(f"pyrocket {program}: {leaf}", file=sys.stderr)
        return 1 if failures else 0
    except PyrocketError as exc:
        print(f"pyrocket {program}: {exc}", file=sys.stderr)
        return 1
    return 0


def _produce_main(args: argparse.Namespace) -> int:
    if args.body:
        bodies: Iterable[bytes] = [b.encode("utf-8") for b in args.body]
    else:
        bodies = [line.rstrip(b"\r\n") for line in sys.stdin.buffer if line.strip()]
    return _run("produce", produce, args, bodies, sys.stdout)


def _consume_main(args: argparse.Namespace) -> int:
    return _run("consume", consume, args, sys.stdout)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    produce_parser = subparsers.add_parser(
        "produce", help="send messages (each BODY, or each line of stdin)"
    )
    produce_parser.add_argument("-n", "--namesrvAddr", help="name servers, 'host:port;host:port'")
    produce_parser.add_argument("-t", "--topic", required=True, help="topic name")
    produce_parser.add_argument(
        "-g", "--group", default=DEFAULT_PRODUCER_GROUP, help="producer group"
    )
    produce_parser.add_argument("--tags", help="the messages' tag")
    produce_parser.add_argument("--keys", help="the messages' keys (space separated)")
    produce_parser.add_argument(
        "-p",
        "--property",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a user property (repeatable)",
    )
    produce_parser.add_argument(
        "-c", "--count", type=int, default=1, help="send each body this many times"
    )
    produce_parser.add_argument(
        "--mode", choices=("sync", "oneway", "orderly"), default="sync", help="how to send"
    )
    produce_parser.add_argument(
        "--shard-key", default="", help="orderly mode: messages with one key keep their order"
    )
    how = produce_parser.add_mutually_exclusive_group()
    how.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="keep the sends in flight together; results are printed in send order",
    )
    how.add_argument("--oneway", action="store_true", help="send without answers (--mode oneway)")
    produce_parser.add_argument(
        "--sharding-key",
        help="send every message to the queue this key hashes to, so they keep their order",
    )
    produce_parser.add_argument("--json", action="store_true", help="print JSON lines")
    produce_parser.add_argument("body", nargs="*", help="message bodies (default: stdin lines)")
    add_tls_options(produce_parser)
    add_credential_options(produce_parser)
    produce_parser.set_defaults(func=_produce_main)

    consume_parser = subparsers.add_parser("consume", help="print the messages of a topic")
    consume_parser.add_argument("-n", "--namesrvAddr", help="name servers, 'host:port;host:port'")
    consume_parser.add_argument("-t", "--topic", required=True, help="topic name")
    consume_parser.add_argument("-g", "--group", required=True, help="consumer group")
    consume_parser.add_argument(
        "-s", "--subExpression", default="*", help="tag expression, '*' or 'TagA || TagB'"
    )
    consume_parser.add_argument(
        "-c", "--count", type=int, default=0, help="stop after this many messages (0: never)"
    )
    consume_parser.add_argument(
        "--from",
        dest="start",
        choices=sorted(_CONSUME_FROM),
        default="last",
        help="where a group without committed offsets starts (Java's consumeFromWhere)",
    )
    consume_parser.add_argument(
        "--timestamp",
        help="with --from timestamp: yyyyMMddHHmmss (Java's consumeTimestamp) or milliseconds",
    )
    consume_parser.add_argument(
        "--from-first", action="store_true", help="the same as --from first"
    )
    consume_parser.add_argument("--json", action="store_true", help="print JSON lines")
    consume_parser.add_argument(
        "--orderly", action="store_true", help="lock each queue and print it in queue order"
    )
    consume_parser.add_argument(
        "--broadcast",
        action="store_true",
        help="BROADCASTING: read every queue, offsets in a local file",
    )
    consume_parser.add_argument(
        "--instance", help="instance name (the client id ip@NAME names the offset file's folder)"
    )
    consume_parser.add_argument(
        "--offset-dir",
        dest="offset_dir",
        help="with --broadcast: the offsets folder (default $HOME/.rocketmq_offsets)",
    )
    add_tls_options(consume_parser)
    add_credential_options(consume_parser)
    consume_parser.set_defaults(func=_consume_main)


__all__ = ["consume", "produce", "register"]
