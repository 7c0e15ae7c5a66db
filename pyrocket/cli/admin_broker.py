"""``pyrocket admin`` commands that talk to brokers, with mqadmin's names,
flags and output: updateTopic, deleteTopic, brokerStatus, getBrokerConfig,
updateBrokerConfig, topicStatus, updateSubGroup, deleteSubGroup,
consumerConnection, producerConnection, consumerStatus.

``-n`` names the NameServers (``;``-separated; default ``$NAMESRV_ADDR``),
used to find brokers by cluster and topic routes. Each command returns 0 on
success; a failure prints ``<Command> command failed: <reason>`` on stderr and
returns 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import random
import sys
from collections.abc import Mapping
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
from pyrocket.protocol.bodies.admin import (
    PROP_CONSUME_ORDERLY,
    PROP_CONSUME_TYPE,
    PROP_CONSUMER_START_TIMESTAMP,
    Connection,
    ConsumerRunningInfo,
    ProcessQueueInfo,
    SubscriptionGroupConfig,
    TopicOffset,
)
from pyrocket.protocol.bodies.client import ConsumeType, MessageQueue
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.route import MASTER_ID, BrokerData, ClusterInfo
from pyrocket.protocol.bodies.topic import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    TopicConfig,
)
from pyrocket.protocol.javahash import JavaHashMap, JavaHashSet
from pyrocket.protocol.version import version_desc

#: MixAll's prefixes of a consumer group's retry and dead-letter topics.
RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX = "%DLQ%"

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
# Subscription groups and client connections


def subscription_group_string(config: SubscriptionGroupConfig) -> str:
    """``SubscriptionGroupConfig.toString()``."""

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return (
        f"SubscriptionGroupConfig [groupName={config.group_name}, "
        f"consumeEnable={flag(config.consume_enable)}, "
        f"consumeFromMinEnable={flag(config.consume_from_min_enable)}, "
        f"consumeBroadcastEnable={flag(config.consume_broadcast_enable)}, "
        f"retryQueueNums={config.retry_queue_nums}, retryMaxTimes={config.retry_max_times}, "
        f"brokerId={config.broker_id}, "
        f"whichBrokerWhenConsumeSlowly={config.which_broker_when_consume_slowly}, "
        f"notifyConsumerIdsChangedEnable={flag(config.notify_consumer_ids_changed_enable)}]"
    )


def subscription_group_from_args(args: argparse.Namespace) -> SubscriptionGroupConfig:
    """The group updateSubGroup sends: broadcast and from-min off unless
    given, every other setting Java's default unless given."""
    config = SubscriptionGroupConfig(
        args.groupName.strip(), consume_broadcast_enable=False, consume_from_min_enable=False
    )
    changes: dict[str, object] = {}
    if args.consumeEnable is not None:
        changes["consume_enable"] = java_bool(args.consumeEnable)
    if args.consumeFromMinEnable is not None:
        changes["consume_from_min_enable"] = java_bool(args.consumeFromMinEnable)
    if args.consumeBroadcastEnable is not None:
        changes["consume_broadcast_enable"] = java_bool(args.consumeBroadcastEnable)
    if args.retryQueueNums is not None:
        changes["retry_queue_nums"] = int_option("q", args.retryQueueNums)
    if args.retryMaxTimes is not None:
        changes["retry_max_times"] = int_option("r", args.retryMaxTimes)
    if args.brokerId is not None:
        changes["broker_id"] = int_option("i", args.brokerId)
    if args.whichBrokerWhenConsumeSlowly is not None:
        changes["which_broker_when_consume_slowly"] = int_option(
            "w", args.whichBrokerWhenConsumeSlowly
        )
    if args.notifyConsumerIdsChanged is not None:
        changes["notify_consumer_ids_changed_enable"] = java_bool(args.notifyConsumerIdsChanged)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def update_sub_group(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``updateSubGroup``: create or update a consumer group on a broker or a
    cluster's masters."""
    config = subscription_group_from_args(args)
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await session.brokers.create_subscription_group(addr, config)
        out.write(f"create subscription group to {addr} success.\n")
    elif args.clusterName is not None:
        info = await session.namesrv.get_cluster_info()
        for addr in master_addrs(info, args.clusterName.strip(), out):
            try:
                await session.brokers.create_subscription_group(addr, config)
            except PyrocketError as exc:
                # mqadmin reports the broker and goes on with the next one.
                print(f"{addr}: {exc}", file=sys.stderr)
                continue
            out.write(f"create subscription group to {addr} success.\n")
    else:
        raise CommandFailed("give -b or -c")
    out.write(subscription_group_string(config))


async def delete_sub_group(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``deleteSubGroup``: from a broker, or from a cluster's masters along
    with the group's retry and dead-letter topics."""
    group = args.groupName.strip()
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await session.brokers.delete_subscription_group(addr, group)
        out.write(f"delete subscription group [{group}] from broker [{addr}] success.\n")
        return
    if args.clusterName is None:
        raise CommandFailed("give -b or -c")
    cluster = args.clusterName.strip()
    for addr in master_addrs(await session.namesrv.get_cluster_info(), cluster, out):
        await session.brokers.delete_subscription_group(addr, group)
        out.write(
            f"delete subscription group [{group}] from broker [{addr}] in cluster "
            f"[{cluster}] success.\n"
        )
    try:
        for prefix in (RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX):
            await _delete_topic_everywhere(session, cluster, prefix + group, out)
    except PyrocketError:
        # mqadmin ignores failures here (the topics may never have existed).
        pass


async def _delete_topic_everywhere(session: Session, cluster: str, topic: str, out: TextIO) -> None:
    for addr in all_addrs(await session.namesrv.get_cluster_info(), cluster, out):
        await session.brokers.delete_topic_in_broker(addr, topic)
    out.write(f"delete topic [{topic}] from cluster [{cluster}] success.\n")
    for addr in JavaHashSet.copy_of(session.namesrv_addresses):
        await session.namesrv.delete_topic_in_namesrv(topic, addr)
    out.write(f"delete topic [{topic}] from NameServer success.\n")


def select_broker_addr(data: BrokerData) -> str | None:
    """``BrokerData.selectBrokerAddr``: the master, else any slave."""
    addrs = data.broker_addrs or {}
    master = addrs.get(MASTER_ID)
    if master is not None:
        return master
    return random.choice(list(addrs.values())) if addrs else None


async def _route_addr(session: Session, topic: str) -> str | None:
    # DefaultMQAdminExtImpl asks one broker of the route, picked at random.
    brokers = list((await session.namesrv.get_route_info(topic)).broker_datas or ())
    if not brokers:
        return None
    addr = select_broker_addr(random.choice(brokers))
    return addr if addr and addr.strip() else None


def _connection_line(index: str, conn: Connection) -> str:
    language = conn.language.name if conn.language is not None else "null"
    return (
        f"{index}  {conn.client_id or 'null':<32} {conn.client_addr or 'null':<22} "
        f"{language:<8} {version_desc(conn.version)}\n"
    )


async def consumer_connection(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``consumerConnection``: a consumer group's clients, subscriptions and
    settings, from one broker of the group's retry topic."""
    group = args.consumerGroup.strip()
    addr = await _route_addr(session, RETRY_GROUP_TOPIC_PREFIX + group)
    if addr is None:
        raise CommandFailed("Not found the consumer group connection")
    connection = await session.brokers.get_consumer_connection_list(addr, group)
    if not connection.connection_set:
        raise CommandFailed("Not found the consumer group connection")
    for number, conn in enumerate(connection.connection_set, 1):
        out.write(_connection_line(f"{number:03d}", conn))
    out.write("\nBelow is subscription:")
    for number, sub in enumerate(connection.subscription_table.values(), 1):
        out.write(
            f"{number:03d}  Topic: {sub.topic or 'null':<40} SubExpression: {sub.sub_string}\n"
        )

    def name(value: object) -> str:
        member = getattr(value, "name", None)
        return member if isinstance(member, str) else "null"

    out.write(f"ConsumeType: {name(connection.consume_type)}\n")
    out.write(f"MessageModel: {name(connection.message_model)}\n")
    out.write(f"ConsumeFromWhere: {name(connection.consume_from_where)}\n")


async def producer_connection(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``producerConnection``: a producer group's clients, from one broker of
    the topic's route."""
    group = args.producerGroup.strip()
    addr = await _route_addr(session, args.topic.strip())
    if addr is None:
        raise CommandFailed("Not found the producer group connection")
    connection = await session.brokers.get_producer_connection_list(addr, group)
    if not connection.connection_set:
        raise CommandFailed("Not found the producer group connection")
    for number, conn in enumerate(connection.connection_set, 1):
        out.write(_connection_line(f"{number:04d}", conn))


def _jbool(value: bool) -> str:
    return "true" if value else "false"


def _human_time(millis: int) -> str:
    """``UtilAll.timeMillisToHumanString``: local ``yyyyMMddHHmmssSSS``."""
    moment = datetime.datetime.fromtimestamp(millis / 1000).astimezone()
    return moment.strftime("%Y%m%d%H%M%S") + f"{millis % 1000:03d}"


def process_queue_string(pq: ProcessQueueInfo) -> str:
    """``ProcessQueueInfo.toString()``."""
    return (
        f"ProcessQueueInfo [commitOffset={pq.commit_offset}, "
        f"cachedMsgMinOffset={pq.cached_msg_min_offset}, "
        f"cachedMsgMaxOffset={pq.cached_msg_max_offset}, "
        f"cachedMsgCount={pq.cached_msg_count}, cachedMsgSizeInMiB={pq.cached_msg_size_in_mib}, "
        f"transactionMsgMinOffset={pq.transaction_msg_min_offset}, "
        f"transactionMsgMaxOffset={pq.transaction_msg_max_offset}, "
        f"transactionMsgCount={pq.transaction_msg_count}, locked={_jbool(pq.locked)}, "
        f"tryUnlockTimes={pq.try_unlock_times}, "
        f"lastLockTimestamp={_human_time(pq.last_lock_timestamp)}, "
        f"droped={_jbool(pq.droped)}, "
        f"lastPullTimestamp={_human_time(pq.last_pull_timestamp)}, "
        f"lastConsumeTimestamp={_human_time(pq.last_consume_timestamp)}]"
    )


def running_info_string(info: ConsumerRunningInfo) -> str:
    """``ConsumerRunningInfo.formatString()``."""
    lines = ["#Consumer Properties#\n"]
    lines += [f"{key:<40}: {value}\n" for key, value in info.properties.items()]
    lines.append("\n\n#Consumer Subscription#\n")
    for number, sub in enumerate(info.subscription_set, 1):
        lines.append(
            f"{number:03d} Topic: {sub.topic or 'null':<40} "
            f"ClassFilter: {_jbool(sub.class_filter_mode):<8} SubExpression: {sub.sub_string}\n"
        )
    header = f"{'#Topic':<32}  {'#Broker Name':<32}  {'#QID':<4}  {{:<20}}\n"
    lines.append("\n\n#Consumer Offset#\n")
    lines.append(header.format("#Consumer Offset"))
    for queue, pq in info.mq_table.items():
        lines.append(
            f"{queue.topic or 'null':<32}  {queue.broker_name or 'null':<32}  "
            f"{queue.queue_id:<4}  {pq.commit_offset:<20}\n"
        )
    lines.append("\n\n#Consumer MQ Detail#\n")
    lines.append(header.format("#ProcessQueueInfo"))
    for queue, pq in info.mq_table.items():
        lines.append(
            f"{queue.topic or 'null':<32}  {queue.broker_name or 'null':<32}  "
            f"{queue.queue_id:<4}  {process_queue_string(pq)}\n"
        )
    lines.append("\n\n#Consumer RT&TPS#\n")
    lines.append(
        f"{'#Topic':<32}  {'#Pull RT':>14} {'#Pull TPS':>14} {'#Consume RT':>14} "
        f"{'#ConsumeOK TPS':>14} {'#ConsumeFailed TPS':>18} {'#ConsumeFailedMsgsInHour':>25}\n"
    )
    for topic, status in info.status_table.items():
        lines.append(
            f"{topic:<32}  {status.pull_rt:14.2f} {status.pull_tps:14.2f} "
            f"{status.consume_rt:14.2f} {status.consume_ok_tps:14.2f} "
            f"{status.consume_failed_tps:18.2f} {status.consume_failed_msgs:25d}\n"
        )
    if info.jstack is not None:
        lines.append("\n\n#Consumer jstack#\n")
        lines.append(info.jstack)
    return "".join(lines)


def subscriptions_agree(table: Mapping[str, ConsumerRunningInfo], now_ms: int) -> bool:
    """``ConsumerRunningInfo.analyzeSubscription``: for push consumers
    started over two minutes ago, whether every client subscribes the same
    way (and to something)."""
    infos = list(table.values())
    first = infos[0].properties
    push = first.get(PROP_CONSUME_TYPE) == ConsumeType.CONSUME_PASSIVELY.name
    started = int(first.get(PROP_CONSUMER_START_TIMESTAMP, "0"))
    if not (push and now_ms - started > 2 * 60 * 1000):
        return True
    subscriptions = set(infos[0].subscription_set)
    if any(set(info.subscription_set) != subscriptions for info in infos):
        return False
    return bool(infos[-1].subscription_set)


def process_queue_warnings(client_id: str, info: ConsumerRunningInfo, now_ms: int) -> str:
    """``ConsumerRunningInfo.analyzeProcessQueue``: queues of a push
    consumer that look stuck."""
    if info.properties.get(PROP_CONSUME_TYPE) != ConsumeType.CONSUME_PASSIVELY.name:
        return ""
    orderly = info.properties.get(PROP_CONSUME_ORDERLY, "").lower() == "true"
    lines = []
    for queue, pq in info.mq_table.items():
        if orderly:
            if not pq.locked:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} can't lock for a while, "
                    f"{now_ms - pq.last_lock_timestamp}ms\n"
                )
            elif pq.droped and pq.try_unlock_times > 0:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} unlock "
                    f"{pq.try_unlock_times} times, still failed\n"
                )
        else:
            diff = now_ms - pq.last_consume_timestamp
            if diff > 60 * 1000 and pq.cached_msg_count > 0:
                lines.append(
                    f"{client_id} {message_queue_string(queue)} can't consume for a while, "
                    f"maybe blocked, {diff}ms\n"
                )
    return "".join(lines)


def message_queue_string(queue: MessageQueue) -> str:
    """``MessageQueue.toString()``."""
    return (
        f"MessageQueue [topic={queue.topic}, brokerName={queue.broker_name}, "
        f"queueId={queue.queue_id}]"
    )


async def _running_info(
    session: Session, group: str, client_id: str, jstack: bool
) -> ConsumerRunningInfo | None:
    # DefaultMQAdminExtImpl asks the first broker of the retry topic's route.
    route = await session.namesrv.get_route_info(RETRY_GROUP_TOPIC_PREFIX + group)
    for data in route.broker_datas or ():
        addr = select_broker_addr(data)
        if addr is not None:
            return await session.brokers.get_consumer_running_info(addr, group, client_id, jstack)
    return None


async def consumer_status(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """``consumerStatus``: with ``-i``, what one client of a consumer group
    reports of itself; without, each client's report saved to
    ``<now>/<clientId>`` and whether the group's clients subscribe alike."""
    group = args.consumerGroup.strip()
    jstack = bool(args.jstack)
    if args.clientId is not None:
        info = await _running_info(session, group, args.clientId.strip(), jstack)
        if info is not None:
            out.write(running_info_string(info))
        return
    addr = await _route_addr(session, RETRY_GROUP_TOPIC_PREFIX + group)
    if addr is None:
        raise CommandFailed("Not found the consumer group connection")
    connection = await session.brokers.get_consumer_connection_list(addr, group)
    now = int(datetime.datetime.now().timestamp() * 1000)
    table: dict[str, ConsumerRunningInfo] = {}
    number = 1
    for conn in connection.connection_set:
        client_id = conn.client_id or "null"
        try:
            info = await _running_info(session, group, client_id, jstack)
        except PyrocketError as exc:
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if info is None:
            continue
        table[client_id] = info
        path = f"{now}/{client_id}"
        _write_file(path, running_info_string(info))
        out.write(f"{number:03d}  {client_id:<40} {version_desc(conn.version):<20} {path}\n")
        number += 1
    if not table:
        return
    ordered = {key: table[key] for key in sorted(table, key=lambda k: k.encode("utf-16-be"))}
    now_ms = int(datetime.datetime.now().timestamp() * 1000)
    if subscriptions_agree(ordered, now_ms):
        out.write("\n\nSame subscription in the same group of consumer")
        out.write("\n\nRebalance OK\n")
        for client_id, info in ordered.items():
            out.write(process_queue_warnings(client_id, info, now_ms))
    else:
        out.write("\n\nWARN: Different subscription in the same group of consumer!!!")


def _write_file(path: str, content: str) -> None:
    """``MixAll.string2FileNotSafe``: write ``content``, making the folders."""
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")


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

    parser = add_command(
        subparsers,
        "updateSubGroup",
        "Update or create subscription group",
        update_sub_group,
        "UpdateSubGroupSubCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="create subscription group to which broker")
    parser.add_argument("-c", "--clusterName", help="create subscription group to which cluster")
    parser.add_argument("-g", "--groupName", required=True, help="consumer group name")
    parser.add_argument("-s", "--consumeEnable", help="consume enable")
    parser.add_argument("-m", "--consumeFromMinEnable", help="from min offset")
    parser.add_argument("-d", "--consumeBroadcastEnable", help="broadcast")
    parser.add_argument("-q", "--retryQueueNums", help="retry queue nums")
    parser.add_argument("-r", "--retryMaxTimes", help="retry max times")
    parser.add_argument("-i", "--brokerId", help="consumer from which broker id")
    parser.add_argument(
        "-w", "--whichBrokerWhenConsumeSlowly", help="which broker id when consume slowly"
    )
    parser.add_argument("-a", "--notifyConsumerIdsChanged", help="notify consumerId changed")

    parser = add_command(
        subparsers,
        "deleteSubGroup",
        "Delete subscription group from broker.",
        delete_sub_group,
        "DeleteSubscriptionGroupCommand",
    )
    parser.add_argument("-b", "--brokerAddr", help="delete subscription group from which broker")
    parser.add_argument("-c", "--clusterName", help="delete subscription group from which cluster")
    parser.add_argument("-g", "--groupName", required=True, help="subscription group name")

    parser = add_command(
        subparsers,
        "consumerConnection",
        "Query consumer's socket connection, client version and subscription",
        consumer_connection,
        "ConsumerConnectionSubCommand",
    )
    parser.add_argument("-g", "--consumerGroup", required=True, help="consumer group name")

    parser = add_command(
        subparsers,
        "producerConnection",
        "Query producer's socket connection and client version",
        producer_connection,
        "ProducerConnectionSubCommand",
    )
    parser.add_argument("-g", "--producerGroup", required=True, help="producer group name")
    parser.add_argument("-t", "--topic", required=True, help="topic name")

    parser = add_command(
        subparsers,
        "consumerStatus",
        "Query consumer's internal data structure",
        consumer_status,
        "ConsumerStatusSubCommand",
    )
    parser.add_argument("-g", "--consumerGroup", required=True, help="consumer group name")
    parser.add_argument("-i", "--clientId", help="The consumer's client id")
    parser.add_argument(
        "-s", "--jstack", action="store_true", help="Run jstack command in the consumer progress"
    )
