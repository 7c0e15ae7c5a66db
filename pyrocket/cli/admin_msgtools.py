"""``pyrocket admin`` commands that read and write messages, with mqadmin's
names, flags and output: printMsg, printMsgByQueue, queryMsgByOffset,
sendMessage, consumeMessage.

The reading goes through :class:`~pyrocket.client.admin.reading.QueueReader`
(mqadmin's pull consumer, group ``TOOLS_CONSUMER``), the sending through a
:class:`~pyrocket.client.producer.Producer` whose group is the current time
in milliseconds, as mqadmin's is. Messages print as Java's
``MessageExt.toString()`` does (:func:`message_ext_string`). Like mqadmin,
several of these print lines without a line break.
"""

from __future__ import annotations

import argparse
import codecs
import datetime
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import trio

from pyrocket.cli.admin_session import CommandFailed, add_command, int_option, java_bool
from pyrocket.cli.tls_options import client_tls
from pyrocket.client.admin import Admin
from pyrocket.client.admin.analysis import message_queue_string
from pyrocket.client.admin.reading import PullStatus, QueueReader
from pyrocket.client.admin.tracks import message_track_detail
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import HostPort, MessageConst, MessageExt

# ---------------------------------------------------------------------------
# How Java prints a message


def socket_address_string(host: HostPort) -> str:
    """``InetSocketAddress.toString()`` of an unresolved-name address:
    ``/1.2.3.4:port`` (IPv6 as eight uncompressed hex groups)."""
    if host.is_v6:
        groups = [int.from_bytes(host.ip[i : i + 2], "big") for i in range(0, 16, 2)]
        text = ":".join(f"{group:x}" for group in groups)
    else:
        text = ".".join(str(b) for b in host.ip)
    return f"/{text}:{host.port}"


def java_map_string(table: dict[str, str] | JavaHashMap[str, str]) -> str:
    """``HashMap.toString()`` of a message's properties (Java's order)."""
    ordered: JavaHashMap[str, str] = JavaHashMap()
    ordered.update(table)
    return "{" + ", ".join(f"{key}={value}" for key, value in ordered.items()) + "}"


def byte_array_string(body: bytes) -> str:
    """``Arrays.toString(byte[])``: signed bytes."""
    return "[" + ", ".join(str(b - 256 if b > 127 else b) for b in body) + "]"


def transaction_id(message: MessageExt) -> str | None:
    """The transactionId Java's pull sets: the UNIQ_KEY of a prepared message."""
    if message.properties.get(MessageConst.PROPERTY_TRANSACTION_PREPARED, "").lower() == "true":
        return message.uniq_key
    return None


def client_msg_id(message: MessageExt) -> str:
    """``MessageClientExt.getMsgId()``: the UNIQ_KEY, else the offset id."""
    return message.uniq_key or message.msg_id


def message_ext_string(message: MessageExt, broker_name: str | None) -> str:
    """``MessageExt.toString()`` of a pulled message."""
    tx_id = transaction_id(message) or "null"
    inner = (
        f"Message{{topic='{message.topic}', flag={message.flag}, "
        f"properties={java_map_string(dict(message.properties))}, "
        f"body={byte_array_string(message.body)}, transactionId='{tx_id}'}}"
    )
    return (
        f"MessageExt [brokerName={broker_name or 'null'}, queueId={message.queue_id}, "
        f"storeSize={message.store_size}, queueOffset={message.queue_offset}, "
        f"sysFlag={message.sys_flag}, bornTimestamp={message.born_timestamp}, "
        f"bornHost={socket_address_string(message.born_host)}, "
        f"storeTimestamp={message.store_timestamp}, "
        f"storeHost={socket_address_string(message.store_host)}, msgId={message.msg_id}, "
        f"commitLogOffset={message.commit_log_offset}, bodyCRC={message.body_crc}, "
        f"reconsumeTimes={message.reconsume_times}, "
        f"preparedTransactionOffset={message.prepared_transaction_offset}, "
        f"toString()={inner}]"
    )


def decode_body(body: bytes, charset: str) -> str | None:
    """``new String(body, charset)`` (None: a charset Java would not know)."""
    try:
        codecs.lookup(charset)
    except LookupError:
        return None
    return body.decode(charset, errors="replace")


def write_messages(
    out: TextIO,
    messages: Sequence[MessageExt],
    broker_name: str | None,
    charset: str,
    print_body: bool,
) -> None:
    """``printMessage``: ``MSGID: <id> <MessageExt> BODY: <body>`` per message."""
    for message in messages:
        body = decode_body(message.body, charset) if print_body else "NOT PRINT BODY"
        if body is None:
            continue  # mqadmin swallows the UnsupportedEncodingException
        out.write(
            f"MSGID: {client_msg_id(message)} {message_ext_string(message, broker_name)} "
            f"BODY: {body}\n"
        )


def timestamp_option(text: str) -> int:
    """``timestampFormat``: milliseconds, or local ``yyyy-MM-dd#HH:mm:ss:SSS``;
    raises CommandFailed."""
    text = text.strip()
    try:
        return int(text, 10)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%d#%H:%M:%S:%f")
    except ValueError:
        raise CommandFailed(
            f"{text!r} is neither milliseconds nor yyyy-MM-dd#HH:mm:ss:SSS"
        ) from None
    return int(moment.timestamp() * 1000)


def _status(result_status: PullStatus) -> str:
    return result_status.name


def _stack(exc: BaseException) -> None:
    # mqadmin prints the stack trace of a failed pull and stops that queue.
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------
# printMsg and printMsgByQueue


async def _range(reader: QueueReader, queue: MessageQueue, args: argparse.Namespace) -> range:
    low = await reader.min_offset(queue)
    high = await reader.max_offset(queue)
    if args.beginTimestamp is not None:
        low = await reader.search_offset(queue, timestamp_option(args.beginTimestamp))
    if args.endTimestamp is not None:
        high = await reader.search_offset(queue, timestamp_option(args.endTimestamp))
    return range(low, high)


async def print_msg(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``printMsg``: every message of every readable queue of a topic
    (within ``-b`` / ``-e``), 32 a pull."""
    topic = args.topic.strip()
    charset = args.charsetName.strip() if args.charsetName is not None else "UTF-8"
    expression = args.subExpression.strip() if args.subExpression is not None else "*"
    print_body = args.printBody is None or java_bool(args.printBody)
    reader = QueueReader(admin)
    for queue in await reader.queues(topic):
        span = await _range(reader, queue, args)
        mq = message_queue_string(queue)
        out.write(f"minOffset={span.start}, maxOffset={span.stop}, {mq}")
        offset = span.start
        while offset < span.stop:
            try:
                result = await reader.pull(queue, expression, offset, 32)
            except PyrocketError as exc:
                _stack(exc)
                break
            offset = result.next_begin_offset
            if result.status is PullStatus.FOUND:
                write_messages(out, result.messages, queue.broker_name, charset, print_body)
            elif result.status is PullStatus.NO_MATCHED_MSG:
                out.write(f"{mq} no matched msg. status={_status(result.status)}, offset={offset}")
            else:
                out.write(
                    f"{mq} print msg finished. status={_status(result.status)}, offset={offset}"
                )
                break


async def print_msg_by_queue(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``printMsgByQueue``: one queue's messages (printed with ``-p true``),
    and with ``-f true`` how many carry each tag."""
    charset = args.charsetName.strip() if args.charsetName is not None else "UTF-8"
    print_msg_flag = args.printMsg is not None and java_bool(args.printMsg)
    print_body = args.printBody is not None and java_bool(args.printBody)
    by_tag = args.calculate is not None and java_bool(args.calculate)
    expression = args.subExpression.strip() if args.subExpression is not None else "*"
    queue = MessageQueue(args.topic.strip(), args.brokerName.strip(), int_option("i", args.queueId))
    reader = QueueReader(admin)
    span = await _range(reader, queue, args)
    counts: JavaHashMap[str, int] = JavaHashMap()
    offset = span.start
    while offset < span.stop:
        try:
            result = await reader.pull(queue, expression, offset, 32)
        except PyrocketError as exc:
            _stack(exc)
            break
        offset = result.next_begin_offset
        if result.status is not PullStatus.FOUND:
            break
        if by_tag:
            for message in result.messages:
                tag = message.tags
                if tag is not None and tag.strip():
                    counts[tag] = counts.get(tag, 0) + 1
        if print_msg_flag:
            write_messages(out, result.messages, queue.broker_name, charset, print_body)
    if by_tag:
        # Collections.sort is stable: equal counts keep the HashMap's order.
        for tag, count in sorted(counts.items(), key=lambda item: -item[1]):
            out.write(f"Tag: {tag:<30} Count: {count}\n")


# ---------------------------------------------------------------------------
# queryMsgByOffset


def _human_time2(millis: int) -> str:
    """``UtilAll.timeMillisToHumanString2``: local ``yyyy-MM-dd HH:mm:ss,SSS``."""
    moment = datetime.datetime.fromtimestamp(millis / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f",{millis % 1000:03d}"


def _body_file(message: MessageExt) -> str:
    # createBodyFile: the body under /tmp/rocketmq/msgbodys/<client msg id>
    # (Java names /tmp whatever TMPDIR says).
    folder = Path("/tmp/rocketmq/msgbodys")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / client_msg_id(message)
    path.write_bytes(message.body)
    return str(path)


def write_message_detail(out: TextIO, message: MessageExt, body_path: str) -> None:
    """The detail block of QueryMsgByIdSubCommand.printMsg, up to the body
    file (:func:`write_tracks` prints what follows it)."""
    rows = [
        ("OffsetID:", message.msg_id),
        ("Topic:", message.topic),
        ("Tags:", f"[{message.tags or 'null'}]"),
        ("Keys:", f"[{message.keys or 'null'}]"),
        ("Queue ID:", str(message.queue_id)),
        ("Queue Offset:", str(message.queue_offset)),
        ("CommitLog Offset:", str(message.commit_log_offset)),
        ("Reconsume Times:", str(message.reconsume_times)),
        ("Born Timestamp:", _human_time2(message.born_timestamp)),
        ("Store Timestamp:", _human_time2(message.store_timestamp)),
        ("Born Host:", socket_address_string(message.born_host)[1:]),
        ("Store Host:", socket_address_string(message.store_host)[1:]),
        ("System Flag:", str(message.sys_flag)),
        ("Properties:", java_map_string(dict(message.properties))),
        ("Message Body Path:", body_path),
    ]
    for label, value in rows:
        out.write(f"{label:<20} {value}\n")


async def write_tracks(admin: Admin, out: TextIO, message: MessageExt) -> None:
    """The consumer groups' tracks that end printMsg (a failure to get them
    is reported on stderr, as mqadmin prints its stack trace)."""
    try:
        tracks = await message_track_detail(admin, message)
    except PyrocketError as exc:
        _stack(exc)
        return
    if not tracks:
        out.write("\n\nWARN: No Consumer")
        return
    out.write("\n\n")
    for track in tracks:
        out.write(str(track))


async def query_msg_by_offset(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``queryMsgByOffset``: the message at one queue offset, in detail."""
    queue = MessageQueue(args.topic.strip(), args.brokerName.strip(), int_option("i", args.queueId))
    offset = int_option("o", args.offset)
    result = await QueueReader(admin).pull(queue, "*", offset, 1)
    if result.status is PullStatus.FOUND and result.messages:
        message = result.messages[0]
        write_message_detail(out, message, await trio.to_thread.run_sync(_body_file, message))
        await write_tracks(admin, out, message)


# ---------------------------------------------------------------------------
# sendMessage


def _send_row(broker: str, qid: str, status: str, msg_id: str) -> str:
    return f"{broker:<32}  {qid:<4}  {status:<20}    {msg_id}\n"


async def send_message(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``sendMessage``: one message, to the queue ``-b`` / ``-i`` name or to
    the one the producer picks; prints where it went."""
    topic = args.topic.strip()
    body = args.body.strip().encode("utf-8")
    broker = args.broker.strip() if args.broker is not None else None
    queue_id = -1
    if args.qid is not None:
        if broker is None:
            out.write("Broker name must be set if the queue is chosen!")
            return
        queue_id = int_option("i", args.qid)
    message = new_message(
        topic,
        body,
        tags=args.tags.strip() if args.tags is not None else None,
        keys=args.key.strip() if args.key is not None else None,
    )
    group = str(int(time.time() * 1000))
    result: SendResult
    async with Producer(group, admin.namesrv_addresses, tls=client_tls(args)) as producer:
        if broker is not None and queue_id > -1:
            target = MessageQueue(topic, broker, queue_id)
            result = await producer.send_orderly(message, None, lambda _q, _m, _a: target)
        else:
            result = await producer.send(message)
    out.write(_send_row("#Broker Name", "#QID", "#Send Result", "#MsgId"))
    out.write(
        _send_row(
            result.queue.broker_name or "null",
            str(result.queue.queue_id),
            result.status.value,
            result.msg_id,
        )
    )


# ---------------------------------------------------------------------------
# consumeMessage


async def _consume_queue(
    reader: QueueReader, queue: MessageQueue, low: int, high: int, out: TextIO
) -> None:
    mq = message_queue_string(queue)
    offset = low
    while offset <= high:
        try:
            result = await reader.pull(queue, "*", offset, high - offset + 1)
        except PyrocketError as exc:
            _stack(exc)
            return
        offset = result.next_begin_offset
        if result.status is PullStatus.FOUND:
            out.write("Consume ok\n")
            write_messages(out, result.messages, queue.broker_name, "UTF-8", True)
        elif result.status is PullStatus.NO_MATCHED_MSG:
            out.write(f"{mq} no matched msg. status={_status(result.status)}, offset={offset}\n")
        else:
            out.write(
                f"{mq} print msg finished. status={_status(result.status)}, offset={offset}\n"
            )
            return


async def _span(reader: QueueReader, queue: MessageQueue, begin: int, end: int) -> tuple[int, int]:
    low = await reader.min_offset(queue)
    high = await reader.max_offset(queue)
    if begin > 0:
        low = await reader.search_offset(queue, begin)
    if end > 0:
        high = await reader.search_offset(queue, end)
    return low, high


async def consume_message(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``consumeMessage``: up to ``-c`` messages (128) of a topic, of one
    queue (``-b`` / ``-i``) or from one offset (``-o``), printed with bodies."""
    group = args.consumerGroup.strip() if args.consumerGroup is not None else None
    reader = QueueReader(admin, group) if group is not None else QueueReader(admin)
    topic = args.topic.strip()
    count = 128
    if args.MessageNumber is not None:
        count = int_option("c", args.MessageNumber)
        if count <= 0:
            out.write("Please input a positive messageNumber!")
            return
    broker = args.brokerName.strip() if args.brokerName is not None else None
    if args.queueId is not None and broker is None:
        out.write("Please set the brokerName before queueId!")
        return
    if args.offset is not None and args.queueId is None:
        out.write("Please set queueId before offset!")
        return
    now = int(time.time() * 1000)
    begin = end = 0
    if args.beginTimestamp is not None:
        begin = timestamp_option(args.beginTimestamp)
        if begin > now:
            out.write("Please set the beginTimestamp before now!")
            return
    if args.endTimestamp is not None:
        end = timestamp_option(args.endTimestamp)
        if end > now:
            out.write("Please set the endTimestamp before now!")
            return
        if begin > end:
            out.write(
                "Please make sure that the beginTimestamp is less than or equal to the endTimestamp"
            )
            return
    if args.queueId is None:
        await _consume_topic(reader, topic, count, begin, end, out)
        return
    queue = MessageQueue(topic, broker, int_option("i", args.queueId))
    offset = int_option("o", args.offset) if args.offset is not None else 0
    try:
        low, high = await _span(reader, queue, begin, end)
        if offset > high:
            out.write(f"{message_queue_string(queue)} no matched msg, offset={offset}\n")
            return
        low = max(low, offset)
        if high - low > count:
            out.write(f"The oldler {count} message will be provided\n")
            high = low + count - 1
    except PyrocketError as exc:
        _stack(exc)
        return
    await _consume_queue(reader, queue, low, high, out)


async def _consume_topic(
    reader: QueueReader, topic: str, count: int, begin: int, end: int, out: TextIO
) -> None:
    try:
        left = count
        for queue in await reader.queues(topic):
            if left == 0:
                return
            low, high = await _span(reader, queue, begin, end)
            if high - low > left:
                out.write(
                    f"The older {left} message of the {queue.queue_id} queue will be provided\n"
                )
                high = low + left - 1
                left = 0
            else:
                left = left - (high - low) - 1
            await _consume_queue(reader, queue, low, high, out)
    except PyrocketError as exc:
        _stack(exc)


# ---------------------------------------------------------------------------
# Registration with argparse


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register printMsg, printMsgByQueue, queryMsgByOffset, sendMessage,
    consumeMessage."""
    stamp = "[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"
    parser = add_command(
        subparsers, "printMsg", "Print Message Detail", print_msg, "PrintMessageSubCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-c", "--charsetName", help="CharsetName(eg: UTF-8,GBK)")
    parser.add_argument("-s", "--subExpression", help="Subscribe Expression(eg: TagA || TagB)")
    parser.add_argument("-b", "--beginTimestamp", help=f"Begin timestamp{stamp}")
    parser.add_argument("-e", "--endTimestamp", help=f"End timestamp{stamp}")
    parser.add_argument("-d", "--printBody", help="print body")

    parser = add_command(
        subparsers,
        "printMsgByQueue",
        "Print Message Detail",
        print_msg_by_queue,
        "PrintMessageByQueueCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-a", "--brokerName", required=True, help="broker name")
    parser.add_argument("-i", "--queueId", required=True, help="queue id")
    parser.add_argument("-c", "--charsetName", help="CharsetName(eg: UTF-8,GBK)")
    parser.add_argument("-s", "--subExpression", help="Subscribe Expression(eg: TagA || TagB)")
    parser.add_argument("-b", "--beginTimestamp", help=f"Begin timestamp{stamp}")
    parser.add_argument("-e", "--endTimestamp", help=f"End timestamp{stamp}")
    parser.add_argument("-p", dest="printMsg", help="print msg. eg: true | false(default)")
    parser.add_argument("-d", "--printBody", help="print body. eg: true | false(default)")
    parser.add_argument("-f", "--calculate", help="calculate by tag. eg: true | false(default)")

    parser = add_command(
        subparsers,
        "queryMsgByOffset",
        "Query Message by offset",
        query_msg_by_offset,
        "QueryMsgByOffsetSubCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-b", "--brokerName", required=True, help="Broker Name")
    parser.add_argument("-i", "--queueId", required=True, help="Queue Id")
    parser.add_argument("-o", "--offset", required=True, help="Queue Offset")

    parser = add_command(
        subparsers, "sendMessage", "Send a message", send_message, "SendMessageCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="Topic name")
    parser.add_argument(
        "-p", "--body", required=True, help="UTF-8 string format of the message body"
    )
    parser.add_argument("-k", "--key", help="Message keys")
    parser.add_argument("-c", "--tags", help="Message tags")
    parser.add_argument("-b", "--broker", help="Send message to target broker")
    parser.add_argument("-i", "--qid", help="Send message to target queue")

    parser = add_command(
        subparsers, "consumeMessage", "Consume message", consume_message, "ConsumeMessageCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="Topic name")
    parser.add_argument("-b", "--brokerName", help="Broker name")
    parser.add_argument("-i", "--queueId", help="Queue Id")
    parser.add_argument("-o", "--offset", help="Queue offset")
    parser.add_argument("-g", "--consumerGroup", help="Consumer group name")
    parser.add_argument("-s", "--beginTimestamp", help=f"Begin timestamp{stamp}")
    parser.add_argument("-e", "--endTimestamp", help=f"End timestamp{stamp}")
    parser.add_argument("-c", "--MessageNumber", help="Number of message to be consumed")
