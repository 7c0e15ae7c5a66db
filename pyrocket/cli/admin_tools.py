"""``pyrocket admin`` commands about topics' permissions and order
configuration, a consumer group's progress and how a topic's queues would be
shared, with mqadmin's names, flags and output: updateTopicPerm,
consumerProgress, updateOrderConf, allocateMQ.

The requests are made by :class:`~pyrocket.client.admin.Admin` and
:mod:`pyrocket.client.admin.progress`; this module parses and prints as
mqadmin 4.7.0 does (its ``printf`` column widths included).
"""

from __future__ import annotations

import argparse
import datetime
from typing import TextIO

from pyrocket.cli.admin_broker import topic_config_string
from pyrocket.cli.admin_session import (
    CommandFailed,
    add_command,
    int_option,
    write_unknown_cluster,
)
from pyrocket.client.admin import RETRY_GROUP_TOPIC_PREFIX, Admin, UnknownClusterError
from pyrocket.client.admin.progress import examine_consume_stats, master_broker_name
from pyrocket.client.admin.reading import subscribe_queues
from pyrocket.client.allocate import allocate_averagely
from pyrocket.client.namesrv_api import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.errors import PyrocketError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.admin import ConsumerConnection, ConsumeStats, message_queue_order
from pyrocket.protocol.bodies.client import ConsumeType, MessageQueue
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.version import version_desc


def front_at_least(text: str | None, size: int) -> str:
    """``UtilAll.frontStringAtLeast``: at most ``size`` characters of ``text``."""
    if text is None:
        return "null"
    return text[:size]


def format_date(millis: int) -> str:
    """``UtilAll.formatDate(date, "yyyy-MM-dd HH:mm:ss")`` in local time."""
    moment = datetime.datetime.fromtimestamp(millis / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------
# updateTopicPerm


async def update_topic_perm(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateTopicPerm``: set a topic's permission on one master or on a
    cluster's masters, keeping its queue numbers and flags from the route."""
    topic = args.topic.strip()
    route = await admin.topic_route(topic)
    queue_datas = route.queue_datas or ()
    if not queue_datas:
        raise CommandFailed(f"topic {topic} has no queue data in its route")
    first = queue_datas[0]
    perm = int_option("p", args.perm)
    config = TopicConfig(
        topic,
        read_queue_nums=first.read_queue_nums,
        write_queue_nums=first.write_queue_nums,
        perm=perm,
        topic_sys_flag=first.topic_syn_flag,
    )
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        name = master_broker_name(route, addr)
        if name is None:
            out.write("updateTopicPerm error broker not exit or broker is not master!.\n")
            return
        old = 0
        for data in queue_datas:
            if data.broker_name == name:
                old = data.perm
                if old == perm:
                    out.write("new perm equals to the old one!\n")
                    return
                break
        await admin.update_topic_on_broker(addr, config)
        out.write(f"update topic perm from {old} to {perm} in {addr} success.\n")
        out.write(f"{topic_config_string(config)}.\n")
        return
    if args.clusterName is not None:
        try:
            masters = await admin.master_addrs(args.clusterName.strip())
        except UnknownClusterError:
            write_unknown_cluster(out)
            masters = []
        for addr in masters:
            await admin.brokers.create_topic(addr, config)
            out.write(f"update topic perm from {first.perm} to {perm} in {addr} success.\n")
        return
    out.write(args.command_help())


# ---------------------------------------------------------------------------
# consumerProgress


def _consume_type_desc(connection: ConsumerConnection) -> str:
    if not connection.connection_set:
        return ""
    return "PULL" if connection.consume_type is ConsumeType.CONSUME_ACTIVELY else "PUSH"


def _message_model_desc(connection: ConsumerConnection) -> str:
    if not connection.connection_set or connection.consume_type is not (
        ConsumeType.CONSUME_PASSIVELY
    ):
        return ""
    model = connection.message_model
    return model.name if model is not None else "null"


async def _queue_owners(admin: Admin, group: str) -> dict[MessageQueue, str]:
    # Which client (its IP, the part of its id before '@') holds each queue;
    # mqadmin gives up quietly on the first failure.
    owners: dict[MessageQueue, str] = {}
    try:
        connection = await admin.consumer_connection(group)
        for conn in connection.connection_set:
            client_id = conn.client_id or "null"
            info = await admin.consumer_running_info(group, client_id)
            if info is None:
                raise CommandFailed(f"no running info of {client_id}")
            for queue in info.mq_table:
                owners[queue] = client_id.split("@")[0]
    except PyrocketError:
        pass
    return owners


async def _group_progress(admin: Admin, group: str, out: TextIO, show_ip: bool) -> None:
    stats = await examine_consume_stats(admin, group)
    owners = await _queue_owners(admin, group) if show_ip else {}
    out.write(
        f"{'#Topic':<32}  {'#Broker Name':<32}  {'#QID':<4}  {'#Broker Offset':<20}  "
        f"{'#Consumer Offset':<20}  {'#Client IP':<20} {'#Diff':<20}  #LastTime\n"
    )
    total = 0
    for queue in sorted(stats.offset_table, key=message_queue_order):
        wrapper = stats.offset_table[queue]
        diff = wrapper.broker_offset - wrapper.consumer_offset
        total += diff
        last = "N/A" if wrapper.last_timestamp == 0 else format_date(wrapper.last_timestamp)
        out.write(
            f"{front_at_least(queue.topic, 32):<32}  {front_at_least(queue.broker_name, 32):<32}  "
            f"{queue.queue_id:<4}  {wrapper.broker_offset:<20}  {wrapper.consumer_offset:<20}  "
            f"{owners.get(queue, 'N/A'):<20} {diff:<20}  {last}\n"
        )
    out.write("\n")
    out.write(f"Consume TPS: {stats.consume_tps:.2f}\n")
    out.write(f"Diff Total: {total}\n")


async def _every_group_progress(admin: Admin, out: TextIO) -> None:
    out.write(
        f"{'#Group':<32}  {'#Count':<6}  {'#Version':<24} {'#Type':<5}  {'#Model':<14}  "
        f"{'#TPS':<7}  #Diff Total\n"
    )
    for topic in await admin.topic_list():
        if not topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            continue
        group = topic[len(RETRY_GROUP_TOPIC_PREFIX) :]
        stats: ConsumeStats | None
        try:
            stats = await examine_consume_stats(admin, group)
        except PyrocketError:
            stats = None
        connection: ConsumerConnection
        try:
            connection = await admin.consumer_connection(group)
        except PyrocketError:
            connection = ConsumerConnection()
        count = len(connection.connection_set)
        tps = int(stats.consume_tps) if stats is not None else 0
        diff = stats.compute_total_diff() if stats is not None else 0
        version = version_desc(connection.compute_min_version()) if count else "OFFLINE"
        out.write(
            f"{front_at_least(group, 32):<32}  {count:<6}  {version:<24} "
            f"{_consume_type_desc(connection):<5}  {_message_model_desc(connection):<14}  "
            f"{tps:<7}  {diff}\n"
        )


async def consumer_progress(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``consumerProgress``: one group's offsets per queue (``-g``), or a
    line per consumer group the NameServers know (by its retry topic)."""
    show_ip = args.showClientIP is not None and args.showClientIP.lower() == "true"
    if args.groupName is not None:
        await _group_progress(admin, args.groupName.strip(), out, show_ip)
    else:
        await _every_group_progress(admin, out)


# ---------------------------------------------------------------------------
# updateOrderConf


async def update_order_conf(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateOrderConf``: get, put or delete a topic's order configuration
    on the NameServers."""
    topic = args.topic.strip()
    method = args.method.strip()
    if method == "get":
        conf = await admin.namesrv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
        out.write(f"get orderConf success. topic=[{topic}], orderConf=[{conf}] ")
    elif method == "put":
        conf = args.orderConf.strip() if args.orderConf is not None else ""
        if not conf:
            raise CommandFailed("please set orderConf with option -v.")
        await admin.put_order_conf(topic, conf)
        out.write(f"update orderConf success. topic=[{topic}], orderConf=[{conf}]")
    elif method == "delete":
        await admin.delete_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
        out.write(f"delete orderConf success. topic=[{topic}]")
    else:
        out.write(args.command_help())


# ---------------------------------------------------------------------------
# allocateMQ


async def allocate_mq(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``allocateMQ``: how AllocateMessageQueueAveragely would share the
    topic's readable queues among the given client ids, as JSON."""
    topic = args.topic.strip()
    ips = args.ipList.strip().split(",")
    while len(ips) > 1 and not ips[-1]:
        ips.pop()  # String.split drops trailing empty strings
    if not all(ips):
        raise CommandFailed("currentCID is empty")
    in_order = subscribe_queues(topic, await admin.topic_route(topic))
    result: JavaHashMap[str, list[MessageQueue]] = JavaHashMap()
    for ip in ips:
        result[ip] = allocate_averagely("aa", ip, in_order, ips)
    out.write(fastjson.dumps({"result": result}) + "\n")


# ---------------------------------------------------------------------------
# Registration with argparse


def _with_help(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # mqadmin prints the command's help when no action option was given.
    parser.set_defaults(command_help=parser.format_help)
    return parser


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register updateTopicPerm, consumerProgress, updateOrderConf, allocateMQ."""
    parser = _with_help(
        add_command(
            subparsers,
            "updateTopicPerm",
            "Update topic perm",
            update_topic_perm,
            "UpdateTopicPermSubCommand",
        )
    )
    parser.add_argument("-b", "--brokerAddr", help="create topic to which broker")
    parser.add_argument("-c", "--clusterName", help="create topic to which cluster")
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument(
        "-p", "--perm", required=True, help="set topic's permission(2|4|6), intro[2:W; 4:R; 6:RW]"
    )

    parser = add_command(
        subparsers,
        "consumerProgress",
        "Query consumers's progress, speed",
        consumer_progress,
        "ConsumerProgressSubCommand",
    )
    parser.add_argument("-g", "--groupName", help="consumer group name")
    parser.add_argument("-s", "--showClientIP", help="Show Client IP per Queue")

    parser = _with_help(
        add_command(
            subparsers,
            "updateOrderConf",
            "Create or update or delete order conf",
            update_order_conf,
            "UpdateOrderConfCommand",
        )
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument(
        "-v", "--orderConf", help="set order conf [eg. brokerName1:num;brokerName2:num]"
    )
    parser.add_argument("-m", "--method", required=True, help="option type [eg. put|get|delete")

    parser = add_command(
        subparsers, "allocateMQ", "Allocate MQ", allocate_mq, "AllocateMQSubCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-i", "--ipList", required=True, help="ipList")
