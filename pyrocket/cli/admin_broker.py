"""``pyrocket admin`` commands that talk to brokers about topics and their
configuration, with mqadmin's names, flags and output: updateTopic,
deleteTopic, brokerStatus, getBrokerConfig, updateBrokerConfig, topicStatus.
The group and connection commands are in :mod:`pyrocket.cli.admin_group`.

``-n`` names the NameServers (``;``-separated; default ``$NAMESRV_ADDR``),
used to find brokers by cluster and topic routes. The work is done by
:class:`~pyrocket.client.admin.Admin`; this module parses and prints. Each
command returns 0 on success; a failure prints ``<Command> command failed:
<reason>`` on stderr and returns 1.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import TextIO

from pyrocket.cli.admin_group import register_group_commands
from pyrocket.cli.admin_session import (
    CommandFailed,
    add_command,
    delete_topic_everywhere,
    int_option,
    java_bool,
    write_unknown_cluster,
)
from pyrocket.client.admin import Admin, UnknownClusterError
from pyrocket.protocol.bodies.topic import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    TopicConfig,
)


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


async def update_topic(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
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
        update = await admin.update_topic_on_broker(addr, config)
        if update.order_conf is not None:
            out.write(f"set broker orderConf. isOrder=true, orderConf=[{update.order_conf}]")
        out.write(f"create topic to {addr} success.\n")
        out.write(topic_config_string(config))
        return
    try:
        update = await admin.update_topic_in_cluster(
            args.clusterName.strip(),
            config,
            on_broker=lambda addr: out.write(f"create topic to {addr} success.\n"),
        )
    except UnknownClusterError:
        write_unknown_cluster(out)
        if order:
            raise
    else:
        if update.order_conf is not None:
            out.write(f"set cluster orderConf. isOrder=true, orderConf=[{update.order_conf}]")
    out.write(topic_config_string(config))


async def delete_topic(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``deleteTopic``: from every broker of a cluster, then from the NameServers."""
    await delete_topic_everywhere(admin, args.clusterName.strip(), args.topic.strip(), out)


async def broker_status(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``brokerStatus``: a broker's runtime figures, sorted by name."""
    if args.brokerAddr is not None:
        table = await admin.broker_runtime_info(args.brokerAddr.strip())
        for key in _sorted_keys(table):
            out.write(f"{key:<32}: {table[key]}\n")
    elif args.clusterName is not None:
        try:
            outcomes = await admin.cluster_runtime_info(args.clusterName.strip())
        except UnknownClusterError:
            write_unknown_cluster(out)
            return
        for outcome in outcomes:
            if outcome.value is None:
                print(f"{outcome.addr}: {outcome.error}", file=sys.stderr)
                continue
            for key in _sorted_keys(outcome.value):
                out.write(f"{outcome.addr:<24} {key:<32}: {outcome.value[key]}\n")


def _sorted_keys(table: dict[str, str]) -> list[str]:
    # As a Java TreeMap: UTF-16 code units.
    return sorted(table, key=lambda k: k.encode("utf-16-be"))


async def get_broker_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``getBrokerConfig``: every property of a broker, or of a cluster's brokers."""
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await _print_config(admin, f"============{addr}============\n", addr, out)
    elif args.clusterName is not None:
        try:
            layout = await admin.cluster_masters_and_slaves(args.clusterName.strip())
        except UnknownClusterError:
            write_unknown_cluster(out)
            return
        for master, slaves in layout:
            await _print_config(admin, f"============Master: {master}============\n", master, out)
            for slave in slaves:
                prefix = f"============My Master: {master}=====Slave: {slave}============\n"
                await _print_config(admin, prefix, slave, out)


async def _print_config(admin: Admin, prefix: str, addr: str, out: TextIO) -> None:
    out.write(prefix)
    for key, value in (await admin.broker_config(addr)).items():
        out.write(f"{key:<50}=  {value}\n")
    out.write("\n")


async def update_broker_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateBrokerConfig``: set one key on a broker or a cluster's masters."""
    properties = {args.key.strip(): args.value.strip()}
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await admin.update_broker_config(addr, properties)
        out.write(f"update broker config success, {addr}\n")
    elif args.clusterName is not None:
        try:
            outcomes = await admin.update_cluster_config(args.clusterName.strip(), properties)
        except UnknownClusterError:
            write_unknown_cluster(out)
            return
        for outcome in outcomes:
            if outcome.ok:
                out.write(f"update broker config success, {outcome.addr}\n")
            else:
                print(f"{outcome.addr}: {outcome.error}", file=sys.stderr)
    else:
        raise CommandFailed("give -b or -c")


async def topic_status(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``topicStatus``: min/max offsets and last store time of every queue."""
    offsets = await admin.topic_status(args.topic.strip())
    out.write(
        f"{'#Broker Name':<32}  {'#QID':<4}  {'#Min Offset':<20}  {'#Max Offset':<20}    "
        "#Last Updated\n"
    )
    for queue, offset in offsets.items():
        when = ""
        if offset.last_update_timestamp > 0:
            when = human_time(offset.last_update_timestamp)
        name = (queue.broker_name or "")[:32]
        out.write(
            f"{name:<32}  {queue.queue_id:<4}  {offset.min_offset:<20}  {offset.max_offset:<20}    "
            f"{when}\n"
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

    register_group_commands(subparsers)
