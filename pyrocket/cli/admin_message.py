"""``pyrocket admin`` commands that find messages, with mqadmin's names,
flags and output: queryMsgByKey, queryMsgByUniqueKey, queryMsgById.

The lookups are :class:`~pyrocket.client.admin.Admin`'s
(:mod:`pyrocket.client.admin.messages`); this module parses and prints. As
mqadmin, the by-id commands write the message body to
``/tmp/rocketmq/msgbodys/<msgId>`` and print that path. queryMsgById also
takes ``-t topic`` (pyrocket's): an id that is not an offset id, or that its
broker does not know, is then looked up as a client's unique id.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

import trio

from pyrocket.cli.admin_broker import human_time
from pyrocket.cli.admin_session import CommandFailed, add_command
from pyrocket.client.admin import Admin
from pyrocket.client.admin.messages import LONG_MAX, client_msg_id
from pyrocket.protocol.javahash import hashmap_order
from pyrocket.protocol.message import MessageExt

#: Where mqadmin writes message bodies.
BODY_DIR = Path("/tmp/rocketmq/msgbodys")


def java_map_string(table: dict[str, str]) -> str:
    """``HashMap.toString`` of a message's properties."""
    return "{" + ", ".join(f"{key}={table[key]}" for key in hashmap_order(table)) + "}"


def _java_str(value: str | None) -> str:
    return "null" if value is None else value


def _write_body(message: MessageExt, body_dir: Path) -> str:
    body_dir.mkdir(parents=True, exist_ok=True)
    path = body_dir / client_msg_id(message)
    path.write_bytes(message.uncompressed_body())
    return str(path)


async def print_message(
    message: MessageExt, out: TextIO, *, offset_id: bool, body_dir: Path | None = None
) -> None:
    """``QueryMsgByIdSubCommand.printMsg`` (with the OffsetID line) or
    ``QueryMsgByUniqueKeySubCommand.queryById`` (without)."""
    directory = BODY_DIR if body_dir is None else body_dir
    body_path = await trio.to_thread.run_sync(_write_body, message, directory)
    rows: list[tuple[str, object]] = []
    if offset_id:
        rows.append(("OffsetID:", message.msg_id))
    rows += [
        ("Topic:", message.topic),
        ("Tags:", f"[{_java_str(message.tags)}]"),
        ("Keys:", f"[{_java_str(message.keys)}]"),
        ("Queue ID:", message.queue_id),
        ("Queue Offset:", message.queue_offset),
        ("CommitLog Offset:", message.commit_log_offset),
        ("Reconsume Times:", message.reconsume_times),
        ("Born Timestamp:", human_time(message.born_timestamp)),
        ("Store Timestamp:", human_time(message.store_timestamp)),
        ("Born Host:", str(message.born_host)),
        ("Store Host:", str(message.store_host)),
        ("System Flag:", message.sys_flag),
        ("Properties:", java_map_string(dict(message.properties))),
        ("Message Body Path:", body_path),
    ]
    for label, value in rows:
        out.write(f"{label:<20} {value}\n")


async def query_msg_by_key(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    result = await admin.query_message(args.topic.strip(), args.msgKey.strip(), 64, 0, LONG_MAX)
    out.write(f"{'#Message ID':<50} {'#QID':>4} {'#Offset':>40}\n")
    for message in result.messages:
        out.write(
            f"{client_msg_id(message):<50} {message.queue_id:>4d} {message.queue_offset:>40d}\n"
        )


async def query_msg_by_unique_key(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    if args.consumerGroup and args.clientId:
        raise CommandFailed("consuming a message directly (-g/-d) is not supported here")
    message = await admin.view_message(args.msgId.strip(), args.topic.strip())
    if message is None:
        raise CommandFailed("query message by key finished, but no message.")
    await print_message(message, out, offset_id=False)


async def query_msg_by_id(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    if args.sendMessage or (args.consumerGroup and args.clientId):
        raise CommandFailed("resending (-s) and consuming directly (-g/-d) are not supported")
    topic = args.topic.strip() if args.topic else None
    for msg_id in (part.strip() for part in args.msgId.split(",")):
        if not msg_id:
            continue
        message = await admin.view_message(msg_id, topic)
        if message is None:
            out.write("\nMessage not found!")
            continue
        await print_message(message, out, offset_id=True)


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "queryMsgById",
        "Query Message by Id",
        query_msg_by_id,
        "QueryMsgByIdSubCommand",
    )
    parser.add_argument("-i", "--msgId", required=True, help="Message Id")
    parser.add_argument("-g", "--consumerGroup", help="consumer group name")
    parser.add_argument("-d", "--clientId", help="The consumer's client id")
    parser.add_argument("-s", "--sendMessage", help="resend message")
    parser.add_argument("-u", "--unitName", help="unit name")
    parser.add_argument(
        "-t", "--topic", help="topic to look a client (unique) message id up in (pyrocket's)"
    )

    parser = add_command(
        subparsers,
        "queryMsgByKey",
        "Query Message by Key",
        query_msg_by_key,
        "QueryMsgByKeySubCommand",
    )
    parser.add_argument("-t", "--topic", required=True, help="topic name")
    parser.add_argument("-k", "--msgKey", required=True, help="Message Key")

    parser = add_command(
        subparsers,
        "queryMsgByUniqueKey",
        "Query Message by Unique key",
        query_msg_by_unique_key,
        "QueryMsgByUniqueKeySubCommand",
    )
    parser.add_argument("-i", "--msgId", required=True, help="Message Id")
    parser.add_argument("-g", "--consumerGroup", help="consumer group name")
    parser.add_argument("-d", "--clientId", help="The consumer's client id")
    parser.add_argument("-t", "--topic", required=True, help="The topic of msg")


__all__ = [
    "BODY_DIR",
    "java_map_string",
    "print_message",
    "query_msg_by_id",
    "query_msg_by_key",
    "query_msg_by_unique_key",
    "register_admin",
]
