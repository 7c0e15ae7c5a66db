"""``pyrocket admin`` commands that talk to brokers, with mqadmin's names,
flags and output: updateTopic, deleteTopic, brokerStatus, getBrokerConfig,
updateBrokerConfig, topicStatus.

``-n`` names the NameServers (``;``-separated; default ``$NAMESRV_ADDR``),
used to find brokers by cluster and topic routes. Each command returns 0 on
success; a failure prints ``<Command> command failed: <reason>`` on stderr and
returns 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TextIO

from pyrocket.cli.admin_session import (
    CommandFailed,
    Session,
    add_command,
    int_option,
    java_bool,
)
from pyrocket.client.namesrv_api import NAMESPACE_ORDER_TOPIC_CONFIG
from pyrocket.errors import PyrocketError, ResponseError
from pyrocket.protocol.bodies.admin import TopicOffset
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.route import MASTER_ID, ClusterInfo
from pyrocket.protocol.bodies.topic import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    TopicConfig,
)
from pyrocket.protocol.javahash import JavaHashMap, JavaHashSet

#: CommandUtil's complaint about an unknown cluster.
CLUSTER_ERROR = (
    "Make sure the specified clusterName exists or the name server connected to is correct."
)


# ---------------------------------------------------------------------------
# CommandUtil


def broker_names(info: ClusterInfo, cluster: str) -> list[str] | None:
    """A cluster's broker names as mqadmin holds them (a HashSet), or None."""
    names = (info.cluster_addr_table or {}).get(cluster)
    if names is None:
        return None
    # fastjson reads the JSON array into a new HashSet, element by element.
    held: JavaHashSet[str] = JavaHashSet()
    for name in names:
        if name is not None:
            held.add(name)
    return list(held)


def master_addrs(info: ClusterInfo, cluster: str, out: TextIO) -> list[str]:
    """``fetchMasterAddrByClusterName``."""
    names = broker_names(info, cluster)
    if names is None:
        out.write(f"[error] {CLUSTER_ERROR}")
        return []
    result: JavaHashSet[str] = JavaHashSet()
    for name in names:
        data = (info.broker_addr_table or {}).get(name)
        addr = data.master_addr() if data is not None else None
        if addr is not None:
            result.add(addr)
    return list(result)


def all_addrs(info: ClusterInfo, cluster: str, out: TextIO) -> list[str]:
    """``fetchMasterAndSlaveAddrByClusterName``."""
    names = broker_names(info, cluster)
    if names is None:
        out.write(f"[error] {CLUSTER_ERROR}")
        return []
    result: JavaHashSet[str] = JavaHashSet()
    for name in names:
        data = (info.broker_addr_table or {}).get(name)
        if data is not None:
            for addr in (data.broker_addrs or {}).values():
                result.add(addr)
    return list(result)


def broker_name_of(info: ClusterInfo, addr: str) -> str:
    """``fetchBrokerNameByAddr``."""
    for name, data in (info.broker_addr_table or {}).items():
        if addr in (data.broker_addrs or {}).values():
            return name
    raise CommandFailed(CLUSTER_ERROR)


def _perm_string(perm: int) -> str:
    return (
        ("R" if perm & PERM_READ else "-")
        + ("W" if perm & PERM_WRITE else "-")
        + ("X" if perm & PERM_INHERIT else "-")
    )


def topic_config_string(config: TopicConfig) -> str:
    """``TopicConfig.toString()``."""
    return (
        f"TopicConfig [topicName={config.topic_name}, readQueueNums={config.read_queue_nums}, "
        f"writeQueueNums={config.write_queue_nums}, perm={_perm_string(config.perm)}, "
        f"topicFilterType={config.topic_filter_type.name}, topicSysFlag={config.topic_sys_flag}, "
        f"order={'true' if config.order else 'false'}]"
    )


# ---------------------------------------------------------------------------
# Commands


async def update_topic(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``updateTopic``: create or update a topic on a broker or a cluster's masters."""
    read = int_option("r", args.readQueueNums) if args.readQueueNums is not None else 8
    write = int_option("w", args.writeQueueNums) if args.writeQueueNums is not None else 8
    perm = int_option("p", args.perm) if args.perm is not None else PERM_READ | PERM_WRITE
    unit = java_bool(args.unit) if args.unit is not None else False
    has_unit_sub = java_bool(args.hasUnitSub) if args.hasUnitSub is not None else False
    order = java_bool(args.order) if args.order is not None else False
    config = TopicConfig(
        args.topic.strip(),
        read_queue_nums=read,
        write_queue_nums=write,
        perm=perm,
        topic_sys_flag=(1 if unit else 0) | (2 if has_unit_sub else 0),
        order=order,
    )
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await session.brokers.create_topic(addr, config)
        if order:
            name = broker_name_of(await session.namesrv.get_cluster_info(), addr)
            order_conf = f"{name}:{write}"
            await _update_order_conf(session, config.topic_name or "", order_conf)
            out.write(f"set broker orderConf. isOrder=true, orderConf=[{order_conf}]")
        out.write(f"create topic to {addr} success.\n")
        out.write(topic_config_string(config))
        return
    cluster = args.clusterName.strip()
    info = await session.namesrv.get_cluster_info()
    for addr in master_addrs(info, cluster, out):
        await session.brokers.create_topic(addr, config)
        out.write(f"create topic to {addr} success.\n")
    if order:
        names = broker_names(info, cluster) or []
        if not names:
            raise CommandFailed(CLUSTER_ERROR)
        order_conf = ";".join(f"{name}:{write}" for name in names)
        await _put_order_conf(session, config.topic_name or "", order_conf)
        out.write(f"set cluster orderConf. isOrder=true, orderConf=[{order_conf}]")
    out.write(topic_config_string(config))


async def _update_order_conf(session: Session, topic: str, value: str) -> None:
    # createOrUpdateOrderConf(isCluster=false): merge with the broker entries
    # the NameServer already has for the topic.
    try:
        old = await session.namesrv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
    except ResponseError:
        old = None
    merged: JavaHashMap[str, str] = JavaHashMap()
    if old and old.strip():
        for item in old.split(";"):
            merged[item.split(":")[0]] = item
    merged[value.split(":")[0]] = value
    await _put_order_conf(session, topic, ";".join(merged.values()))


async def _put_order_conf(session: Session, topic: str, value: str) -> None:
    await session.on_every_namesrv(
        lambda addr: session.namesrv.put_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic, value, addr)
    )


async def delete_topic(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``deleteTopic``: from every broker of a cluster, then from the NameServers."""
    topic = args.topic.strip()
    cluster = args.clusterName.strip()
    for addr in all_addrs(await session.namesrv.get_cluster_info(), cluster, out):
        await session.brokers.delete_topic_in_broker(addr, topic)
    out.write(f"delete topic [{topic}] from cluster [{cluster}] success.\n")
    for addr in JavaHashSet.copy_of(session.namesrv_addresses):
        await session.namesrv.delete_topic_in_namesrv(topic, addr)
    out.write(f"delete topic [{topic}] from NameServer success.\n")


async def broker_status(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``brokerStatus``: a broker's runtime figures, sorted by name."""
    if args.brokerAddr is not None:
        await _print_runtime(session, args.brokerAddr.strip(), out, with_addr=False)
    elif args.clusterName is not None:
        for addr in all_addrs(
            await session.namesrv.get_cluster_info(), args.clusterName.strip(), out
        ):
            try:
                await _print_runtime(session, addr, out, with_addr=True)
            except PyrocketError as exc:
                print(f"{addr}: {exc}", file=sys.stderr)


async def _print_runtime(session: Session, addr: str, out: TextIO, *, with_addr: bool) -> None:
    table = await session.brokers.get_broker_runtime_info(addr)
    for key in sorted(table, key=lambda k: k.encode("utf-16-be")):
        if with_addr:
            out.write(f"{addr:<24} {key:<32}: {table[key]}\n")
        else:
            out.write(f"{key:<32}: {table[key]}\n")


async def get_broker_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``getBrokerConfig``: every property of a broker, or of a cluster's brokers."""
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await _print_config(session, f"============{addr}============\n", addr, out)
    elif args.clusterName is not None:
        info = await session.namesrv.get_cluster_info()
        names = broker_names(info, args.clusterName.strip())
        if names is None:
            out.write(f"[error] {CLUSTER_ERROR}")
            return
        table: JavaHashMap[str, list[str]] = JavaHashMap(4)
        for name in names:
            data = (info.broker_addr_table or {}).get(name)
            if data is None or data.broker_addrs is None:
                continue
            master = data.broker_addrs.get(MASTER_ID)
            table[str(master)] = [
                a for i, a in data.broker_addrs.items() if i != MASTER_ID and a is not None
            ]
        for master, slaves in table.items():
            await _print_config(session, f"============Master: {master}============\n", master, out)
            for slave in slaves:
                prefix = f"============My Master: {master}=====Slave: {slave}============\n"
                await _print_config(session, prefix, slave, out)


async def _print_config(session: Session, prefix: str, addr: str, out: TextIO) -> None:
    out.write(prefix)
    entries, _ = await session.brokers.get_broker_config(addr)
    # mqadmin reloads the text into a java.util.Properties and walks its keys.
    for key, value in Properties.java_ordered(entries.items()).entries.items():
        out.write(f"{key:<50}=  {value}\n")
    out.write("\n")


async def update_broker_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``updateBrokerConfig``: set one key on a broker or a cluster's masters."""
    properties = {args.key.strip(): args.value.strip()}
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await session.brokers.update_broker_config(addr, properties)
        out.write(f"update broker config success, {addr}\n")
    elif args.clusterName is not None:
        for addr in master_addrs(
            await session.namesrv.get_cluster_info(), args.clusterName.strip(), out
        ):
            try:
                await session.brokers.update_broker_config(addr, properties)
                out.write(f"update broker config success, {addr}\n")
            except PyrocketError as exc:
                print(f"{addr}: {exc}", file=sys.stderr)
    else:
        raise CommandFailed("give -b or -c")


async def topic_status(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``topicStatus``: min/max offsets and last store time of every queue."""
    topic = args.topic.strip()
    route = await session.namesrv.get_route_info(topic)
    offsets: dict[MessageQueue, TopicOffset] = {}
    for data in route.broker_datas or ():
        addrs = data.broker_addrs or {}
        addr = addrs.get(MASTER_ID) or next(iter(addrs.values()), None)
        if addr is not None:
            table = await session.brokers.get_topic_stats_info(addr, topic)
            offsets.update(table.offset_table)
    if not offsets:
        raise CommandFailed("Not found the topic stats info")
    out.write(
        f"{'#Broker Name':<32}  {'#QID':<4}  {'#Min Offset':<20}  {'#Max Offset':<20}    "
        "#Last Updated\n"
    )
    for queue in sorted(offsets, key=_queue_order):
        offset = offsets[queue]
        when = ""
        if offset.last_update_timestamp > 0:
            when = human_time(offset.last_update_timestamp)
        name = (queue.broker_name or "")[:32]
        out.write(
            f"{name:<32}  {queue.queue_id:<4}  {offset.min_offset:<20}  {offset.max_offset:<20}    "
            f"{when}\n"
        )


def _queue_order(queue: MessageQueue) -> tuple[bytes, bytes, int]:
    return (
        (queue.topic or "").encode("utf-16-be"),
        (queue.broker_name or "").encode("utf-16-be"),
        queue.queue_id,
    )


def human_time(millis: int) -> str:
    """``UtilAll.timeMillisToHumanString2``: local time, ``2026-11-20 10:00:00,123``."""
    moment = datetime.datetime.fromtimestamp(millis / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f",{millis % 1000:03d}"


# ---------------------------------------------------------------------------
# Registration with argparse


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "updateTopic", "Update or create topic", update_topic, "UpdateTopicSubCommand"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-b", "--brokerAddr", help="create topic to which broker")
    where.add_argument("-c", "--clusterName", help="create topic to which cluster")
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-r", "--readQueueNums", help="set read queue nums")
    parser.add_argument("-w", "--writeQueueNums", help="set write queue nums")
    parser.add_argument("-p", "--perm", help="set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]")
    parser.add_argument("-o", "--order", help="set topic's order(true|false)")
    parser.add_argument("-u", "--unit", help="is unit topic (true|false)")
    parser.add_argument("-s", "--hasUnitSub", help="has unit sub (true|false)")

    parser = add_command(
        subparsers,
        "deleteTopic",
        "Delete topic from broker and NameServer.",
        delete_topic,
        "DeleteTopicSubCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument(
        "-c", "--clusterName", required=True, help="delete topic from which cluster"
    )

    parser = add_command(
        subparsers,
        "brokerStatus",
        "Fetch broker runtime status data",
        broker_status,
        "BrokerStatusSubCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="Broker address")
    parser.add_argument("-c", "--clusterName", help="which cluster")

    parser = add_command(
        subparsers,
        "getBrokerConfig",
        "Get broker config by cluster or special broker!",
        get_broker_config,
        "GetBrokerConfigCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="update which broker")
    parser.add_argument("-c", "--clusterName", help="update which cluster")

    parser = add_command(
        subparsers,
        "updateBrokerConfig",
        "Update broker's config",
        update_broker_config,
        "UpdateBrokerConfigSubCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="update which broker")
    parser.add_argument("-c", "--clusterName", help="update which cluster")
    parser.add_argument("-k", "--key", required=True, help="config key")
    parser.add_argument("-v", "--value", required=True, help="config value")

    parser = add_command(
        subparsers,
        "topicStatus",
        "Examine topic Status info",
        topic_status,
        "TopicStatusSubCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
