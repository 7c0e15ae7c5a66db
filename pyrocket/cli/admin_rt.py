"""``pyrocket admin`` commands that time sends or watch consumers, with
mqadmin's names, flags and output: sendMsgStatus, checkMsgSendRT, clusterRT,
startMonitoring.

Each sends through a :class:`~pyrocket.client.producer.Producer` as mqadmin
does (sendMsgStatus as group ``PID_SMSC``, the others as a group named
after the current time in milliseconds). clusterRT and startMonitoring
(:class:`~pyrocket.client.admin.monitor.MonitorService`, reporting to the
log), like mqadmin's, run until they are stopped.
"""

from __future__ import annotations

import argparse
import datetime
import math
import time
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TextIO

import trio

from pyrocket.cli.admin_session import add_command, int_option, java_bool
from pyrocket.cli.tls_options import client_tls
from pyrocket.client.admin import Admin
from pyrocket.client.admin.analysis import message_queue_string
from pyrocket.client.admin.monitor import DefaultMonitorListener, MonitorService
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.javahash import JavaHashSet, hashmap_order
from pyrocket.protocol.message import Message

#: SendMsgStatusCommand's producer group.
SMSC_GROUP = "PID_SMSC"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def java_fixed2(value: float) -> str:
    """``String.format("%.2f", value)``, NaN and infinities as Java writes them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.2f}"


def _average(total: int, count: int) -> float:
    # Java's double division: x/0 is infinite, 0/0 is NaN.
    if count == 0:
        return math.nan if total == 0 else math.copysign(math.inf, total)
    return total / count


def send_result_string(result: SendResult) -> str:
    """``SendResult.toString()``."""
    return (
        f"SendResult [sendStatus={result.status.value}, msgId={result.msg_id}, "
        f"offsetMsgId={result.offset_msg_id}, messageQueue={message_queue_string(result.queue)}, "
        f"queueOffset={result.queue_offset}]"
    )


def _plain(topic: str, body: bytes) -> Message:
    # ``new Message(topic, body)``: only the WAIT property.
    return new_message(topic, body)


# ---------------------------------------------------------------------------
# sendMsgStatus


def jodie_body(size: int) -> bytes:
    """SendMsgStatusCommand's body: "hello jodie" once per 11 bytes asked."""
    return b"hello jodie" * max(0, -(-size // 11))


async def send_msg_status(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``sendMsgStatus``: a warm-up send, then ``-c`` timed sends to the
    broker's own topic."""
    broker = args.brokerName.strip()
    size = int_option("s", args.messageSize) if args.messageSize is not None else 128
    count = int_option("c", args.count) if args.count is not None else 50
    async with Producer(
        SMSC_GROUP,
        admin.namesrv_addresses,
        instance_name=f"PID_SMSC_{_now_ms()}",
        tls=client_tls(args),
    ) as producer:
        await producer.send(_plain(broker, jodie_body(16)))
        for _ in range(count):
            begin = _now_ms()
            result = await producer.send(_plain(broker, jodie_body(size)))
            out.write(f"rt:{_now_ms() - begin}ms, SendResult={send_result_string(result)}")


# ---------------------------------------------------------------------------
# checkMsgSendRT


def _row(broker: str, qid: str, result: str, rt: str) -> str:
    return f"{broker:<32}  {qid:<4}  {result:<20}    {rt}\n"


async def check_msg_send_rt(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``checkMsgSendRT``: ``-a`` sends of an ``-s``-byte message, queue by
    queue in turn, each one's time, and their average after the first."""
    topic = args.topic.strip()
    amount = int_option("a", args.amount) if args.amount is not None else 100
    size = int_option("s", args.size) if args.size is not None else 128
    message = _plain(topic, b"a" * max(0, size))
    chosen = ["", "0"]

    def select(queues: Sequence[MessageQueue], _message: Message, arg: object) -> MessageQueue:
        assert isinstance(arg, int)
        queue = queues[arg % len(queues)]
        chosen[:] = [queue.broker_name or "null", str(queue.queue_id)]
        return queue

    async with Producer(str(_now_ms()), admin.namesrv_addresses, tls=client_tls(args)) as producer:
        out.write(_row("#Broker Name", "#QID", "#Send Result", "#RT"))
        elapsed = 0
        for i in range(amount):
            start = _now_ms()
            try:
                await producer.send_orderly(message, i, select)
                ok = True
            except PyrocketError:
                ok = False
            end = _now_ms()
            if i != 0:
                elapsed += end - start
            out.write(_row(chosen[0], chosen[1], "true" if ok else "false", str(end - start)))
        out.write(f"Avg RT: {java_fixed2(_average(elapsed, amount - 1))}\n")


# ---------------------------------------------------------------------------
# clusterRT


def _china_time() -> str:
    # getCurTime: the wall clock in GMT+8, whatever the local zone.
    zone = datetime.timezone(datetime.timedelta(hours=8))
    return datetime.datetime.now(zone).strftime("%Y-%m-%d %H:%M:%S")


async def cluster_rt(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``clusterRT``: every ``-i`` seconds, the average send time to each
    broker's own topic of each cluster (or of ``-c``), for ever."""
    info = await admin.cluster_info()
    table = info.cluster_addr_table or {}
    amount = int_option("a", args.amount) if args.amount is not None else 50
    size = int_option("s", args.size) if args.size is not None else 128
    interval = int_option("i", args.interval) if args.interval is not None else 10
    as_tlog = args.printLog is not None and java_bool(args.printLog)
    room = args.machineRoom.strip() if args.machineRoom is not None else "noname"
    clusters = [args.cluster.strip()] if args.cluster is not None else hashmap_order(table)
    body = b"a" * max(0, size)
    if not as_tlog:
        out.write(
            f"{'#Cluster Name':<24}  {'#Broker Name':<24}  {'#RT':<4}  "
            f"{'#successCount':<8}  {'#failCount':<8}\n"
        )
    async with Producer(str(_now_ms()), admin.namesrv_addresses, tls=client_tls(args)) as producer:
        while True:
            for cluster in clusters:
                names = table.get(cluster)
                if names is None:
                    out.write(f"cluster [{cluster}] not exist")
                    break
                ordered: JavaHashSet[str] = JavaHashSet()
                for name in names:
                    if name is not None:
                        ordered.add(name)
                for name in ordered:
                    await _time_broker(producer, cluster, name, body, amount, as_tlog, room, out)
            out.flush()
            await trio.sleep(interval)


async def _time_broker(
    producer: Producer,
    cluster: str,
    broker: str,
    body: bytes,
    amount: int,
    as_tlog: bool,
    room: str,
    out: TextIO,
) -> None:
    message = _plain(broker, body)
    elapsed = succeeded = failed = 0
    for i in range(amount):
        start = _now_ms()
        try:
            await producer.send(message)
            succeeded += 1
        except PyrocketError:
            failed += 1
        if i != 0:
            elapsed += _now_ms() - start
    rt = _average(elapsed, amount - 1)
    if not as_tlog:
        out.write(
            f"{cluster:<24}  {broker:<24}  {java_fixed2(rt):<8}  {succeeded:<16}  {failed:<16}\n"
        )
    else:
        rounded = Decimal(rt).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        out.write(f"{_china_time()}|{room}|{cluster}|{broker}|{rounded}\n")


# ---------------------------------------------------------------------------
# Registration with argparse


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register sendMsgStatus, checkMsgSendRT, clusterRT."""
    parser = add_command(
        subparsers, "sendMsgStatus", "send msg to broker.", send_msg_status, "SendMsgStatusCommand"
    )
    parser.add_argument("-b", "--brokerName", required=True, help="Broker Name")
    parser.add_argument("-s", "--messageSize", help="Message Size, Default: 128")
    parser.add_argument("-c", "--count", help="send message count, Default: 50")

    parser = add_command(
        subparsers,
        "checkMsgSendRT",
        "check message send response time",
        check_msg_send_rt,
        "CheckMsgSendRTCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-a", "--amount", help="message amount | default 100")
    parser.add_argument("-s", "--size", required=True, help="message size | default 128 Byte")

    parser = add_command(
        subparsers,
        "clusterRT",
        "List All clusters Message Send RT",
        cluster_rt,
        "CLusterSendMsgRTCommand",
    )
    parser.add_argument("-a", "--amount", help="message amount | default 100")
    parser.add_argument("-s", "--size", required=True, help="message size | default 128 Byte")
    parser.add_argument("-c", "--cluster", help="cluster name | default display all cluster")
    parser.add_argument("-p", dest="printLog", help="print as tlog | default false")
    parser.add_argument("-m", dest="machineRoom", help="machine room name | default noname")
    parser.add_argument("-i", "--interval", help="print interval | default 10 seconds")
    register_monitoring(subparsers)


# ---------------------------------------------------------------------------
# startMonitoring


async def start_monitoring(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``startMonitoring``: run the monitor, reporting to the log, until stopped."""
    service = MonitorService(admin, DefaultMonitorListener(), tls=client_tls(args))
    await service.run()


def register_monitoring(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register startMonitoring."""
    add_command(
        subparsers,
        "startMonitoring",
        "Start Monitoring",
        start_monitoring,
        "StartMonitoringSubCommand",
    )
