"""``pyrocket admin`` commands that talk to NameServers, with mqadmin's names,
flags and output: clusterList, topicRoute, topicList, topicClusterList,
updateKvConfig, deleteKvConfig, getNamesrvConfig, updateNamesrvConfig,
wipeWritePerm.

``-n`` names the NameServers (``;``-separated; default ``$NAMESRV_ADDR``).
Where mqadmin lists maps and sets it walks the Java collections it decoded the
answer into, so the same order is used here. Each command returns 0 on
success; a failure prints ``<Command> command failed: <reason>`` on stderr and
returns 1 (mqadmin prints a stack trace).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Final, TextIO

import trio

from pyrocket.cli.admin_session import CommandFailed, Session, add_command, int_option
from pyrocket.errors import PyrocketError
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import (
    MASTER_ID,
    BrokerData,
    ClusterInfo,
    Properties,
    TopicRouteData,
)
from pyrocket.protocol.javahash import JavaHashSet, hashmap_order

RETRY_GROUP_TOPIC_PREFIX: Final = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX: Final = "%DLQ%"


def _cluster_order(info: ClusterInfo) -> list[tuple[str, list[str]]]:
    """Clusters and their broker names as mqadmin walks them: the decoded
    ``HashMap`` of clusters (default capacity), names as a ``TreeSet``."""
    table = info.cluster_addr_table or {}
    return [
        (cluster, sorted(name for name in table[cluster] if name is not None))
        for cluster in hashmap_order(table)
    ]


def _addr_order(data: BrokerData) -> list[tuple[int, str]]:
    addrs = data.broker_addrs or {}
    return [(broker_id, addrs[broker_id]) for broker_id in hashmap_order(addrs)]


def _cluster_brokers(info: ClusterInfo) -> Iterator[tuple[str, str, int, str]]:
    """``(cluster, broker name, broker id, address)`` of every broker, in
    clusterList's order; names without broker data are skipped."""
    brokers = info.broker_addr_table or {}
    for cluster, names in _cluster_order(info):
        for name in names:
            data = brokers.get(name)
            if data is None:
                continue
            for broker_id, addr in _addr_order(data):
                yield cluster, name, broker_id, addr


# ---------------------------------------------------------------------------
# Commands


async def cluster_list(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    interval = 1.0
    if args.interval is not None:
        interval = float(int_option("interval", args.interval))
    first = True
    while True:
        if not first:
            await trio.sleep(interval)
        first = False
        info = await session.namesrv.get_cluster_info()
        if args.moreStats:
            await _print_cluster_more_stats(session, info, out)
        else:
            await _print_cluster_base_info(session, info, out)
        out.flush()
        if args.interval is None:
            return


def _load(tps: float, queue_size: str, head_wait: str) -> str:
    return f"{tps:9.2f}({queue_size},{head_wait}ms)"


def _number(text: str | None) -> float:
    try:
        return float((text or "").split(" ")[0])
    except ValueError:
        return 0.0


async def _print_cluster_base_info(session: Session, info: ClusterInfo, out: TextIO) -> None:
    row = "%-16s  %-22s  %-4s  %-22s %-16s %19s %19s %10s %5s %6s\n"
    out.write(
        row
        % (
            "#Cluster Name",
            "#Broker Name",
            "#BID",
            "#Addr",
            "#Version",
            "#InTPS(LOAD)",
            "#OutTPS(LOAD)",
            "#PCWait(ms)",
            "#Hour",
            "#SPACE",
        )
    )
    for cluster, name, broker_id, addr in _cluster_brokers(info):
        stats: dict[str, str] = {}
        try:
            stats = await session.brokers.get_broker_runtime_info(addr)
        except PyrocketError as exc:
            print(f"cannot fetch runtime info of {addr}: {exc}", file=sys.stderr)
        hour = 0.0
        earliest = stats.get("earliestMessageTimeStamp")
        if earliest:
            hour = (time.time() * 1000 - int(earliest)) / 1000 / 60 / 60
        space = float(stats.get("commitLogDiskRatio") or 0.0)
        in_tps = _number(stats.get("putTps"))
        out_tps = _number(stats.get("getTransferedTps"))
        out.write(
            row
            % (
                cluster,
                name,
                broker_id,
                addr,
                stats.get("brokerVersionDesc", ""),
                _load(
                    in_tps,
                    stats.get("sendThreadPoolQueueSize", ""),
                    stats.get("sendThreadPoolQueueHeadWaitTimeMills", ""),
                ),
                _load(
                    out_tps,
                    stats.get("pullThreadPoolQueueSize", ""),
                    stats.get("pullThreadPoolQueueHeadWaitTimeMills", ""),
                ),
                stats.get("pageCacheLockTimeMills", ""),
                f"{hour:2.2f}",
                f"{space:.4f}",
            )
        )


async def _print_cluster_more_stats(session: Session, info: ClusterInfo, out: TextIO) -> None:
    row = "%-16s  %-32s %14s %14s %14s %14s\n"
    out.write(
        row
        % (
            "#Cluster Name",
            "#Broker Name",
            "#InTotalYest",
            "#OutTotalYest",
            "#InTotalToday",
            "#OutTotalToday",
        )
    )
    for cluster, name, _, addr in _cluster_brokers(info):
        totals = [0, 0, 0, 0]
        try:
            stats = await session.brokers.get_broker_runtime_info(addr)
            put = [int(stats[k]) for k in _PUT_TOTALS]
            get = [int(stats[k]) for k in _GET_TOTALS]
            totals = [put[1] - put[0], get[1] - get[0], put[2] - put[1], get[2] - get[1]]
        except (PyrocketError, KeyError, ValueError):
            pass  # mqadmin prints zeros for a broker it cannot read
        out.write(row % (cluster, name, *totals))


_PUT_TOTALS: Final = (
    "msgPutTotalYesterdayMorning",
    "msgPutTotalTodayMorning",
    "msgPutTotalTodayNow",
)
_GET_TOTALS: Final = (
    "msgGetTotalYesterdayMorning",
    "msgGetTotalTodayMorning",
    "msgGetTotalTodayNow",
)


async def topic_route(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    route = await session.namesrv.get_route_info(args.topic.strip())
    out.write(fastjson.dumps_pretty(route) + "\n")


async def topic_list(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    if not args.clusterModel:
        topics = await session.namesrv.get_all_topic_list()
        for topic in topics.topic_list:
            out.write(f"{topic}\n")
        return
    info = await session.namesrv.get_cluster_info()
    row = "%-20s  %-48s  %-48s\n"
    out.write(row % ("#Cluster Name", "#Topic", "#Consumer Group"))
    topics = await session.namesrv.get_all_topic_list()
    for topic in topics.topic_list:
        if topic.startswith((RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX)):
            continue
        cluster: str | None = ""
        groups: list[str] = []
        try:
            route = await session.namesrv.get_route_info(topic)
            cluster = _cluster_of(route, info)
            groups = await _consumer_groups(session, route, topic)
        except PyrocketError:
            pass  # as mqadmin: the topic is listed without cluster or groups
        for group in groups or [""]:
            out.write(row % (_front(cluster, 20), _front(topic, 48), _front(group, 48)))


def _front(text: str | None, size: int) -> str:
    """``UtilAll.frontStringAtLeast``: at most ``size`` characters."""
    return "null" if text is None else text[:size]


def _cluster_of(route: TopicRouteData, info: ClusterInfo) -> str | None:
    datas = route.broker_datas or ()
    if not datas:
        return None
    name = datas[0].broker_name
    table = info.cluster_addr_table or {}
    for cluster in hashmap_order(table):
        if name in table[cluster]:
            return cluster
    return None


async def _consumer_groups(session: Session, route: TopicRouteData, topic: str) -> list[str]:
    for data in route.broker_datas or ():
        addrs = data.broker_addrs or {}
        addr = addrs.get(MASTER_ID) or next(iter(addrs.values()), None)
        if addr is not None:
            return await session.brokers.query_topic_consume_by_who(addr, topic)
        break
    return []


async def topic_cluster_list(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    topic = args.topic.strip()
    info = await session.namesrv.get_cluster_info()
    route = await session.namesrv.get_route_info(topic)
    datas = route.broker_datas or ()
    if not datas:
        raise CommandFailed(f"topic {topic} has no broker")
    name = datas[0].broker_name
    clusters: JavaHashSet[str] = JavaHashSet()
    table = info.cluster_addr_table or {}
    for cluster in hashmap_order(table):
        if name in table[cluster]:
            clusters.add(cluster)
    for cluster in clusters:
        out.write(f"{cluster}\n")


async def update_kv_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    namespace, key, value = args.namespace.strip(), args.key.strip(), args.value.strip()
    await session.on_every_namesrv(
        lambda addr: session.namesrv.put_kv_config(namespace, key, value, addr)
    )
    out.write("create or update kv config to namespace success.\n")


async def delete_kv_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    namespace, key = args.namespace.strip(), args.key.strip()
    await session.on_every_namesrv(
        lambda addr: session.namesrv.delete_kv_config(namespace, key, addr)
    )
    out.write("delete kv config from namespace success.\n")


async def get_namesrv_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    configs: dict[str, Mapping[str, str]] = {}
    for addr in session.namesrv_addresses:
        configs[addr] = await session.namesrv.get_namesrv_config(addr)
    # mqadmin keeps them in a HashMap(4) and re-reads each body into a Properties.
    for addr in hashmap_order(configs, 4):
        out.write(f"============{addr}============\n")
        entries = Properties.java_ordered(configs[addr].items()).entries
        for key, value in entries.items():
            out.write(f"{key:<50}=  {value}\n")


async def update_namesrv_config(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    key, value = args.key.strip(), args.value.strip()
    await session.on_every_namesrv(
        lambda addr: session.namesrv.update_namesrv_config({key: value}, addr)
    )
    servers = "[" + ", ".join(session.namesrv_addresses) + "]"
    out.write(f"update name server config success!{servers}\n{key} : {value}\n")


async def wipe_write_perm(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    broker_name = args.brokerName.strip()
    for addr in session.namesrv_addresses:
        try:
            count = await session.namesrv.wipe_write_perm_of_broker(broker_name, addr)
        except PyrocketError as exc:
            out.write(f"wipe write perm of broker[{broker_name}] in name server[{addr}] Failed\n")
            print(f"  {exc}", file=sys.stderr)
            continue
        out.write(f"wipe write perm of broker[{broker_name}] in name server[{addr}] OK, {count}\n")


# ---------------------------------------------------------------------------
# Registration with argparse


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "clusterList", "List all of clusters", cluster_list, "ClusterListSubCommand"
    )
    parser.add_argument("-m", "--moreStats", action="store_true", help="Print more stats")
    parser.add_argument("-i", "--interval", help="specify intervals numbers, it is in seconds")

    parser = add_command(
        subparsers, "topicRoute", "Examine topic route info", topic_route, "TopicRouteSubCommand"
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")

    parser = add_command(
        subparsers,
        "topicList",
        "Fetch all topic list from name server",
        topic_list,
        "TopicListSubCommand",
    )
    parser.add_argument("-c", "--clusterModel", action="store_true", help="clusterModel")

    parser = add_command(
        subparsers,
        "topicClusterList",
        "get cluster info for topic",
        topic_cluster_list,
        "TopicClusterSubCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")

    parser = add_command(
        subparsers,
        "updateKvConfig",
        "Create or update KV config.",
        update_kv_config,
        "UpdateKvConfigCommand",
    )
    parser.add_argument("-s", "--namespace", required=True, help="set the namespace")
    parser.add_argument("-k", "--key", required=True, help="set the key name")
    parser.add_argument("-v", "--value", required=True, help="set the key value")

    parser = add_command(
        subparsers, "deleteKvConfig", "Delete KV config.", delete_kv_config, "DeleteKvConfigCommand"
    )
    parser.add_argument("-s", "--namespace", required=True, help="set the namespace")
    parser.add_argument("-k", "--key", required=True, help="set the key name")

    add_command(
        subparsers,
        "getNamesrvConfig",
        "Get configs of name server.",
        get_namesrv_config,
        "GetNamesrvConfigCommand",
    )

    parser = add_command(
        subparsers,
        "updateNamesrvConfig",
        "Update configs of name server.",
        update_namesrv_config,
        "UpdateNamesrvConfigCommand",
    )
    parser.add_argument("-k", "--key", required=True, help="config key")
    parser.add_argument("-v", "--value", required=True, help="config value")

    parser = add_command(
        subparsers,
        "wipeWritePerm",
        "Wipe write perm of broker in all name server",
        wipe_write_perm,
        "WipeWritePermSubCommand",
    )
    parser.add_argument("-b", "--brokerName", required=True, help="broker name")
