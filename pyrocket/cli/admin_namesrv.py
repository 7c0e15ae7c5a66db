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
from typing import TextIO

import trio

from pyrocket.cli.admin_session import add_command, int_option
from pyrocket.client.admin import Admin, ClusterBroker, cluster_of, is_group_topic
from pyrocket.errors import PyrocketError
from pyrocket.protocol import fastjson

# ---------------------------------------------------------------------------
# Commands


async def cluster_list(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    interval = 1.0
    if args.interval is not None:
        interval = float(int_option("interval", args.interval))
    first = True
    while True:
        if not first:
            await trio.sleep(interval)
        first = False
        brokers = await admin.cluster_brokers()
        if args.moreStats:
            await _print_cluster_more_stats(admin, brokers, out)
        else:
            await _print_cluster_base_info(admin, brokers, out)
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


async def _print_cluster_base_info(admin: Admin, brokers: list[ClusterBroker], out: TextIO) -> None:
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
    for broker in brokers:
        addr = broker.addr
        stats: dict[str, str] = {}
        try:
            stats = await admin.broker_runtime_info(addr)
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
                broker.cluster,
                broker.broker_name,
                broker.broker_id,
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


async def _print_cluster_more_stats(
    admin: Admin, brokers: list[ClusterBroker], out: TextIO
) -> None:
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
    for broker in brokers:
        totals = [0, 0, 0, 0]
        try:
            got = await admin.broker_totals(broker.addr)
            totals = [got.in_yesterday, got.out_yesterday, got.in_today, got.out_today]
        except PyrocketError:
            pass  # mqadmin prints zeros for a broker it cannot read
        out.write(row % (broker.cluster, broker.broker_name, *totals))


async def topic_route(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    route = await admin.topic_route(args.topic.strip())
    out.write(fastjson.dumps_pretty(route) + "\n")


async def topic_list(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    if not args.clusterModel:
        for topic in await admin.topic_list():
            out.write(f"{topic}\n")
        return
    info = await admin.cluster_info()
    row = "%-20s  %-48s  %-48s\n"
    out.write(row % ("#Cluster Name", "#Topic", "#Consumer Group"))
    for topic in await admin.topic_list():
        if is_group_topic(topic):
            continue
        cluster: str | None = ""
        groups: list[str] = []
        try:
            route = await admin.topic_route(topic)
            cluster = cluster_of(route, info)
            groups = await admin.topic_consumer_groups(route, topic)
        except PyrocketError:
            pass  # as mqadmin: the topic is listed without cluster or groups
        for group in groups or [""]:
            out.write(row % (_front(cluster, 20), _front(topic, 48), _front(group, 48)))


def _front(text: str | None, size: int) -> str:
    """``UtilAll.frontStringAtLeast``: at most ``size`` characters."""
    return "null" if text is None else text[:size]


async def topic_cluster_list(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    for cluster in await admin.topic_clusters(args.topic.strip()):
        out.write(f"{cluster}\n")


async def update_kv_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    await admin.put_kv_config(args.namespace.strip(), args.key.strip(), args.value.strip())
    out.write("create or update kv config to namespace success.\n")


async def delete_kv_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    await admin.delete_kv_config(args.namespace.strip(), args.key.strip())
    out.write("delete kv config from namespace success.\n")


async def get_namesrv_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    for addr, config in (await admin.namesrv_configs()).items():
        out.write(f"============{addr}============\n")
        for key, value in config.items():
            out.write(f"{key:<50}=  {value}\n")


async def update_namesrv_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    key, value = args.key.strip(), args.value.strip()
    addresses = await admin.update_namesrv_config({key: value})
    servers = "[" + ", ".join(addresses) + "]"
    out.write(f"update name server config success!{servers}\n{key} : {value}\n")


async def wipe_write_perm(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    broker_name = args.brokerName.strip()
    for outcome in await admin.wipe_write_perm(broker_name):
        where = f"wipe write perm of broker[{broker_name}] in name server[{outcome.addr}]"
        if outcome.error is not None:
            out.write(f"{where} Failed\n")
            print(f"  {outcome.error}", file=sys.stderr)
            continue
        out.write(f"{where} OK, {outcome.value}\n")


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
