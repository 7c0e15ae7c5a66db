"""``pyrocket admin`` commands about offsets and statistics, with mqadmin's
names, flags and output: resetOffsetByTime (falling back to the old-style
reset when no consumer is online), resetOffsetByTimeOld, getConsumerStatus, cloneGroupOffset,
statsAll, brokerConsumeStats, cleanExpiredCQ and cleanUnusedTopic.

The work is done by :class:`~pyrocket.client.admin.Admin`
(:class:`~pyrocket.client.admin.ops.OpsAdmin`); this module parses
arguments and prints as mqadmin does.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Awaitable, Callable
from typing import TextIO

from pyrocket.cli.admin_session import CommandFailed, add_command, int_option, java_bool
from pyrocket.client.admin import (
    DLQ_GROUP_TOPIC_PREFIX,
    RETRY_GROUP_TOPIC_PREFIX,
    Admin,
)
from pyrocket.client.admin.ops import RollbackStats, TopicFlow
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import message_queue_order
from pyrocket.protocol.bodies.ops import ConsumeQueueData
from pyrocket.protocol.codes import ResponseCode


def front(text: str | None, size: int) -> str:
    """``UtilAll.frontStringAtLeast``: at most ``size`` characters."""
    if text is None:
        return "null"
    return text[:size]


def _parse_date(text: str) -> int:
    """``yyyy-MM-dd#HH:mm:ss:SSS`` (local time) in ms; raises ValueError."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%d#%H:%M:%S:%f")
    return int(moment.astimezone().timestamp() * 1000)


def parse_timestamp(text: str) -> int:
    """resetOffsetByTime's ``-s``: ``now``, milliseconds, or
    ``yyyy-MM-dd#HH:mm:ss:SSS`` (local time). Raises CommandFailed."""
    if text == "now":
        return time.time_ns() // 1_000_000
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return _parse_date(text)
    except ValueError:
        raise CommandFailed(f"the timestamp {text!r} is not yyyy-MM-dd#HH:mm:ss:SSS") from None


def _jbool(value: bool) -> str:
    return "true" if value else "false"


def _date(millis: int) -> str:
    """``UtilAll.formatDate(..., "yyyy-MM-dd HH:mm:ss")`` in local time."""
    return datetime.datetime.fromtimestamp(millis / 1000).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------
# Offsets


def write_rollback(
    out: TextIO,
    group: str,
    topic: str,
    force: bool,
    text: str,
    timestamp: int,
    stats: list[RollbackStats],
) -> None:
    """ResetOffsetByTimeOldCommand's report."""
    out.write(
        f"rollback consumer offset by specified consumerGroup[{group}], topic[{topic}], "
        f"force[{_jbool(force)}], timestamp(string)[{text}], timestamp(long)[{timestamp}]\n"
    )
    names = [
        "#brokerName",
        "#queueId",
        "#brokerOffset",
        "#consumerOffset",
        "#timestampOffset",
        "#rollbackOffset",
    ]
    out.write("  ".join(f"{n:<20}" for n in names) + "\n")
    for r in stats:
        values = [
            r.queue_id,
            r.broker_offset,
            r.consumer_offset,
            r.timestamp_offset,
            r.rollback_offset,
        ]
        out.write(
            f"{front(r.broker_name, 32):<20}  " + "  ".join(f"{v:<20}" for v in values) + "\n"
        )


async def reset_offset_by_time(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    group, topic, text = args.group.strip(), args.topic.strip(), args.timestamp.strip()
    timestamp = parse_timestamp(text)
    force = True if args.force is None else java_bool(args.force)
    try:
        table = await admin.reset_offset_by_timestamp(topic, group, timestamp, force, args.cplus)
    except ResponseError as exc:
        if exc.code != ResponseCode.CONSUMER_NOT_ONLINE:
            raise
        stats = await admin.reset_offset_by_timestamp_old(group, topic, timestamp, force)
        write_rollback(out, group, topic, force, text, timestamp, stats)
        return
    out.write(
        f"rollback consumer offset by specified group[{group}], topic[{topic}], "
        f"force[{_jbool(force)}], timestamp(string)[{text}], timestamp(long)[{timestamp}]\n"
    )
    out.write(f"{'#brokerName':<40}  {'#queueId':<40}  {'#offset':<40}\n")
    for queue, offset in table.items():
        out.write(f"{front(queue.broker_name, 32):<40}  {queue.queue_id:<40}  {offset:<40}\n")


async def reset_offset_by_time_old(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    group, topic, text = args.group.strip(), args.topic.strip(), args.timestamp.strip()
    try:
        timestamp = int(text)
    except ValueError:
        try:
            timestamp = _parse_date(text)
        except ValueError:
            out.write("specified timestamp invalid.\n")
            return
    force = True if args.force is None else java_bool(args.force)
    stats = await admin.reset_offset_by_timestamp_old(group, topic, timestamp, force)
    write_rollback(out, group, topic, force, text, timestamp, stats)


async def get_consumer_status(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    group, topic = args.group.strip(), args.topic.strip()
    client = args.originClientId.strip() if args.originClientId is not None else ""
    table = await admin.consumer_status(topic, group, client)
    out.write(
        f"get consumer status from client. group={group}, topic={topic}, originClientId={client}\n"
    )
    out.write(f"{'#clientId':<50}  {'#brokerName':<15}  {'#queueId':<15}  {'#offset':<20}\n")
    for client_id, queues in table.items():
        for queue, offset in queues.items():
            out.write(
                f"{front(client_id, 50):<50}  {queue.broker_name or 'null':<15}  "
                f"{queue.queue_id:<15}  {offset:<20}\n"
            )


async def clone_group_offset(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    src, dest, topic = args.srcGroup.strip(), args.destGroup.strip(), args.topic.strip()
    stats = await admin.examine_consume_stats(src)
    if stats.offset_table:
        route = await admin.topic_route(topic)
        for queue, wrapper in stats.offset_table.items():
            addr = None
            for data in route.broker_datas or ():
                if data.broker_name == queue.broker_name:
                    addrs = data.broker_addrs or {}
                    addr = addrs.get(0) or next(iter(addrs.values()), None)
                    break
            if wrapper.broker_offset >= 0 and addr is not None:
                await admin.brokers.update_consumer_offset(
                    addr, dest, queue.topic or "", queue.queue_id, wrapper.broker_offset
                )
    out.write(f"clone group offset success. srcGroup[{src}], destGroup=[{dest}], topic[{topic}]")


# ---------------------------------------------------------------------------
# Statistics


def write_flow(out: TextIO, flow: TopicFlow, active_only: bool) -> None:
    """StatsAllSubCommand's lines of one topic."""
    topic = front(flow.topic, 32)
    if flow.groups:
        for g in flow.groups:
            if not active_only or flow.in_msg_24h > 0 or g.out_msg_24h > 0:
                out.write(
                    f"{topic:<32}  {front(g.group, 32):<32} {g.accumulation:>12} "
                    f"{flow.in_tps:>11.2f} {g.out_tps:>11.2f} {flow.in_msg_24h:>14} "
                    f"{g.out_msg_24h:>14}\n"
                )
    elif not active_only or flow.in_msg_24h > 0:
        out.write(
            f"{topic:<32}  {'':<32} {0:>12} {flow.in_tps:>11.2f} {'':>11} "
            f"{flow.in_msg_24h:>14} {'NO_CONSUMER':>14}\n"
        )


async def stats_all(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    topics = await admin.topic_list()
    names = ("#Topic", "#Consumer Group", "#Accumulation", "#InTPS", "#OutTPS")
    out.write(
        f"{names[0]:<32}  {names[1]:<32} {names[2]:>12} {names[3]:>11} {names[4]:>11} "
        f"{'#InMsg24Hour':>14} {'#OutMsg24Hour':>14}\n"
    )
    for topic in topics:
        if topic.startswith((RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX)):
            continue
        if args.topic and topic != args.topic:
            continue
        try:
            route = await admin.topic_route(topic)
            groups = await admin.topic_consumer_groups(route, topic)
            flow = await admin.topic_flow(topic, groups)
        except PyrocketError:
            continue  # mqadmin skips a topic it cannot read
        write_flow(out, flow, args.activeTopic)


async def broker_consume_stats(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    addr = args.brokerAddr.strip()
    is_order = java_bool(args.order) if args.order is not None else False
    timeout_ms = int_option("t", args.timeoutMillis) if args.timeoutMillis is not None else 50_000
    level = int_option("l", args.level) if args.level is not None else 0
    stats = await admin.ops.broker_consume_stats(addr, is_order, timeout_ms / 1000)
    heads = ("#Topic", "#Group", "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset")
    out.write(
        f"{heads[0]:<32}  {heads[1]:<32}  {heads[2]:<32}  {heads[3]:<4}  {heads[4]:<20}  "
        f"{heads[5]:<20}  {'#Diff':<20}  #LastTime\n"
    )
    for entry in stats.consume_stats_list:
        for group, group_stats in entry.items():
            for consume in group_stats:
                for queue in sorted(consume.offset_table, key=message_queue_order):
                    wrapper = consume.offset_table[queue]
                    diff = wrapper.broker_offset - wrapper.consumer_offset
                    if diff < level or wrapper.last_timestamp <= 0:
                        continue
                    out.write(
                        f"{front(queue.topic, 32):<32}  {group:<32}  "
                        f"{front(queue.broker_name, 32):<32}  {queue.queue_id:<4}  "
                        f"{wrapper.broker_offset:<20}  {wrapper.consumer_offset:<20}  "
                        f"{diff:<20}  {_date(wrapper.last_timestamp)}\n"
                    )
    out.write(f"\nDiff Total: {stats.total_diff}\n")


# ---------------------------------------------------------------------------
# Housekeeping


async def _on_brokers(
    admin: Admin, args: argparse.Namespace, call: Callable[[str], Awaitable[None]]
) -> None:
    if args.brokerAddr:
        await call(args.brokerAddr.strip())
        return
    info = await admin.cluster_info()
    cluster = args.cluster.strip() if args.cluster else ""
    clusters = [cluster] if cluster else list(info.cluster_addr_table or {})
    for name in clusters:
        for addr in await admin.all_addrs(name):
            await call(addr)


async def clean_expired_cq(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    await _on_brokers(admin, args, admin.ops.clean_expired_consume_queue)
    out.write("success")


async def clean_unused_topic(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    await _on_brokers(admin, args, admin.ops.clean_unused_topic)
    out.write("success")


def _java_text(value: object) -> str:
    """A field as Java's string concatenation shows it (``null``, ``true``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def consume_queue_entry_text(entry: ConsumeQueueData) -> str:
    """``ConsumeQueueData.toString()``."""
    return (
        f"ConsumeQueueData{{physicOffset={entry.physic_offset}, "
        f"physicSize={entry.physic_size}, tagsCode={entry.tags_code}, "
        f"extendDataJson='{_java_text(entry.extend_data_json)}', "
        f"bitMap='{_java_text(entry.bit_map)}', eval={_java_text(entry.eval)}, "
        f"msg='{_java_text(entry.msg)}'}}"
    )


async def query_cq(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """QueryConsumeQueueCommand: QUERY_CONSUME_QUEUE to ``-b`` (else the first
    broker of the topic's route, at its master address), printed as mqadmin
    prints it."""
    topic = args.topic.strip()
    queue_id = int_option("q", args.queue)
    index = int_option("i", args.index)
    count = int_option("c", args.count) if args.count is not None else 10
    broker = args.broker.strip() if args.broker else None
    group = args.consumer.strip() if args.consumer else None
    if not broker:
        route = await admin.topic_route(topic)
        broker = route.broker_datas[0].master_addr() if route.broker_datas else None
        if not broker:
            raise CommandFailed("No topic route data!")
    body, remark = await admin.ops.query_consume_queue(broker, topic, queue_id, index, count, group)
    if body is None:
        raise CommandFailed(remark or "no consume queue data in the answer")
    rule = "======================================\n"
    if body.subscription_data is not None:
        out.write(f"Subscription data: \n{fastjson.dumps_pretty(body.subscription_data)}\n")
        out.write(rule)
    if body.filter_data is not None:
        out.write(f"Filter data: \n{body.filter_data}\n")
        out.write(rule)
    out.write(f"Queue data: \nmax: {body.max_queue_index}, min: {body.min_queue_index}\n")
    out.write(rule)
    for number, entry in enumerate(body.queue_data or (), start=index):
        out.write(f"idx: {number}\n{consume_queue_entry_text(entry)}\n{rule}")


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register this module's commands."""
    parser = add_command(
        subparsers,
        "resetOffsetByTime",
        "Reset consumer offset by timestamp(without client restart).",
        reset_offset_by_time,
        "ResetOffsetByTimeCommand",
    )
    parser.add_argument("-g", "--group", required=True, help="set the consumer group")
    parser.add_argument("-t", "--topic", required=True, help="set the topic")
    parser.add_argument(
        "-s",
        "--timestamp",
        required=True,
        help="set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]",
    )
    parser.add_argument(
        "-f", "--force", help="set the force rollback by timestamp switch[true|false]"
    )
    parser.add_argument("-c", "--cplus", action="store_true", help="reset c++ client offset")

    parser = add_command(
        subparsers,
        "resetOffsetByTimeOld",
        "Reset consumer offset by timestamp(execute this command required client restart).",
        reset_offset_by_time_old,
        "ResetOffsetByTimeOldCommand",
    )
    parser.add_argument("-g", "--group", required=True, help="set the consumer group")
    parser.add_argument("-t", "--topic", required=True, help="set the topic")
    parser.add_argument(
        "-s",
        "--timestamp",
        required=True,
        help="set the timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]",
    )
    parser.add_argument(
        "-f", "--force", help="set the force rollback by timestamp switch[true|false]"
    )

    parser = add_command(
        subparsers,
        "getConsumerStatus",
        "get consumer status from client.",
        get_consumer_status,
        "GetConsumerStatusCommand",
    )
    parser.add_argument("-g", "--group", required=True, help="set the consumer group")
    parser.add_argument("-t", "--topic", required=True, help="set the topic")
    parser.add_argument("-i", "--originClientId", help="set the consumer clientId")

    parser = add_command(
        subparsers,
        "cloneGroupOffset",
        "clone offset from other group.",
        clone_group_offset,
        "CloneGroupOffsetCommand",
    )
    parser.add_argument("-s", "--srcGroup", required=True, help="set source consumer group")
    parser.add_argument("-d", "--destGroup", required=True, help="set destination consumer group")
    parser.add_argument("-t", "--topic", required=True, help="set the topic")
    parser.add_argument("-o", "--offline", help="the group or the topic is offline")

    parser = add_command(
        subparsers, "statsAll", "Topic and Consumer tps stats", stats_all, "StatsAllSubCommand"
    )
    parser.add_argument("-a", "--activeTopic", action="store_true", help="print active topic only")
    parser.add_argument("-t", "--topic", help="print select topic only")

    parser = add_command(
        subparsers,
        "brokerConsumeStats",
        "Fetch broker consume stats data",
        broker_consume_stats,
        "BrokerConsumeStatsSubCommad",
    )
    parser.add_argument("-b", "--brokerAddr", required=True, help="Broker address")
    parser.add_argument("-t", "--timeoutMillis", help="request timeout Millis")
    parser.add_argument("-l", "--level", help="threshold of print diff")
    parser.add_argument("-o", "--order", help="order topic")

    parser = add_command(
        subparsers,
        "cleanExpiredCQ",
        "Clean expired ConsumeQueue on broker.",
        clean_expired_cq,
        "CleanExpiredCQSubCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="Broker address")
    parser.add_argument("-c", "--cluster", help="clustername")

    parser = add_command(
        subparsers,
        "cleanUnusedTopic",
        "Clean unused topic on broker.",
        clean_unused_topic,
        "CleanUnusedTopicCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="Broker address")
    parser.add_argument("-c", "--cluster", help="cluster name")

    parser = add_command(
        subparsers, "queryCq", "Query cq command.", query_cq, "QueryConsumeQueueCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-q", "--queue", required=True, help="queue num, ie. 1")
    parser.add_argument("-i", "--index", required=True, help="start queue index.")
    parser.add_argument("-c", "--count", help="how many.")
    parser.add_argument("-b", "--broker", help="broker addr.")
    parser.add_argument("-g", "--consumer", help="consumer group.")


__all__ = ["consume_queue_entry_text", "front", "parse_timestamp", "register_admin"]
