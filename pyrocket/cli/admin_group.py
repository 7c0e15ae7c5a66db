"""``pyrocket admin`` commands about consumer and producer groups, with
mqadmin's names, flags and output: updateSubGroup, deleteSubGroup,
consumerConnection, producerConnection, consumerStatus.

The work is done by :class:`~pyrocket.client.admin.Admin`; this module parses
arguments and prints as mqadmin does (the ``toString`` of the group config,
of a process queue and of a running-info report included). They register
after :mod:`pyrocket.cli.admin_broker`'s commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import pathlib
import sys
from typing import TextIO

from pyrocket.cli.admin_session import (
    CommandFailed,
    add_command,
    delete_topic_everywhere,
    int_option,
    java_bool,
    write_unknown_cluster,
)
from pyrocket.client.admin import (
    DLQ_GROUP_TOPIC_PREFIX,
    RETRY_GROUP_TOPIC_PREFIX,
    Admin,
    UnknownClusterError,
    process_queue_warnings,
    subscriptions_agree,
)
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.admin import (
    Connection,
    ConsumerRunningInfo,
    ProcessQueueInfo,
    SubscriptionGroupConfig,
)
from pyrocket.protocol.version import version_desc

# ---------------------------------------------------------------------------
# Subscription groups


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


async def update_sub_group(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateSubGroup``: create or update a consumer group on a broker or a
    cluster's masters."""
    config = subscription_group_from_args(args)
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await admin.update_sub_group_on_broker(addr, config)
        out.write(f"create subscription group to {addr} success.\n")
    elif args.clusterName is not None:
        try:
            outcomes = await admin.update_sub_group_in_cluster(args.clusterName.strip(), config)
        except UnknownClusterError:
            write_unknown_cluster(out)
            outcomes = []
        for outcome in outcomes:
            if outcome.ok:
                out.write(f"create subscription group to {outcome.addr} success.\n")
            else:
                # mqadmin reports the broker and goes on with the next one.
                print(f"{outcome.addr}: {outcome.error}", file=sys.stderr)
    else:
        raise CommandFailed("give -b or -c")
    out.write(subscription_group_string(config))


async def delete_sub_group(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``deleteSubGroup``: from a broker, or from a cluster's masters along
    with the group's retry and dead-letter topics."""
    group = args.groupName.strip()
    if args.brokerAddr is not None:
        addr = args.brokerAddr.strip()
        await admin.delete_sub_group_on_broker(addr, group)
        out.write(f"delete subscription group [{group}] from broker [{addr}] success.\n")
        return
    if args.clusterName is None:
        raise CommandFailed("give -b or -c")
    cluster = args.clusterName.strip()
    try:
        await admin.delete_sub_group_in_cluster(
            cluster,
            group,
            on_broker=lambda addr: out.write(
                f"delete subscription group [{group}] from broker [{addr}] in cluster "
                f"[{cluster}] success.\n"
            ),
        )
    except UnknownClusterError:
        write_unknown_cluster(out)
    try:
        for prefix in (RETRY_GROUP_TOPIC_PREFIX, DLQ_GROUP_TOPIC_PREFIX):
            await delete_topic_everywhere(admin, cluster, prefix + group, out)
    except PyrocketError:
        # mqadmin ignores failures here (the topics may never have existed).
        pass


# ---------------------------------------------------------------------------
# Client connections and running information


def _connection_line(index: str, conn: Connection) -> str:
    language = conn.language.name if conn.language is not None else "null"
    return (
        f"{index}  {conn.client_id or 'null':<32} {conn.client_addr or 'null':<22} "
        f"{language:<8} {version_desc(conn.version)}\n"
    )


async def consumer_connection(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``consumerConnection``: a consumer group's clients, subscriptions and
    settings, from one broker of the group's retry topic."""
    connection = await admin.consumer_connection(args.consumerGroup.strip())
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


async def producer_connection(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``producerConnection``: a producer group's clients, from one broker of
    the topic's route."""
    connection = await admin.producer_connection(args.producerGroup.strip(), args.topic.strip())
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


async def consumer_status(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``consumerStatus``: with ``-i``, what one client of a consumer group
    reports of itself; without, each client's report saved to
    ``<now>/<clientId>`` and whether the group's clients subscribe alike."""
    group = args.consumerGroup.strip()
    jstack = bool(args.jstack)
    if args.clientId is not None:
        info = await admin.consumer_running_info(group, args.clientId.strip(), jstack)
        if info is not None:
            out.write(running_info_string(info))
        return
    reports = await admin.consumer_running_infos(group, jstack)
    now = int(datetime.datetime.now().timestamp() * 1000)
    table: dict[str, ConsumerRunningInfo] = {}
    number = 1
    for report in reports:
        if report.error is not None:
            print(f"{type(report.error).__name__}: {report.error}", file=sys.stderr)
            continue
        if report.info is None:
            continue
        table[report.client_id] = report.info
        path = f"{now}/{report.client_id}"
        _write_file(path, running_info_string(report.info))
        out.write(
            f"{number:03d}  {report.client_id:<40} {version_desc(report.version):<20} {path}\n"
        )
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


def register_group_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register the group and connection commands (after the broker ones,
    so ``pyrocket admin --help`` lists them in mqadmin's order)."""
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
