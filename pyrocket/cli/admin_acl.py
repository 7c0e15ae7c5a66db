"""mqadmin's ACL commands: updateAclConfig, deleteAccessConfig,
updateGlobalWhiteAddr, clusterAclConfigVersion and
getAccessConfigSubCommand, each on one broker (``-b``) or every master of a
cluster (``-c``), with mqadmin's options and success lines. They need an
admin account's keys (see :mod:`pyrocket.cli.credentials`)."""

from __future__ import annotations

import argparse
import datetime
from typing import TextIO

from pyrocket.acl.plain import AccessConfigUpdate, split_list
from pyrocket.cli.admin_session import CommandFailed, add_command, java_bool
from pyrocket.client.acl_api import (
    acl_config,
    acl_version,
    delete_access_config,
    update_access_config,
    update_global_white_addrs,
)
from pyrocket.client.admin import Admin


async def _targets(admin: Admin, args: argparse.Namespace) -> tuple[list[str], bool]:
    """The broker addresses ``-b`` / ``-c`` name, and whether it was a cluster."""
    if args.brokerAddr is not None:
        return [args.brokerAddr.strip()], False
    return await admin.master_addrs(args.clusterName.strip()), True


def _where(parser: argparse.ArgumentParser, what: str) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("-b", "--brokerAddr", help=f"{what} which broker")
    where.add_argument("-c", "--clusterName", help=f"{what} which cluster")


async def update_acl_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateAclConfig``."""
    if not args.accessKey:
        raise CommandFailed("-a accessKey is required")
    update = AccessConfigUpdate(
        access_key=args.accessKey.strip(),
        secret_key=args.secretKey.strip() if args.secretKey else None,
        white_remote_address=args.whiteRemoteAddress.strip() if args.whiteRemoteAddress else None,
        admin=java_bool(args.admin) if args.admin is not None else False,
        default_topic_perm=args.defaultTopicPerm.strip() if args.defaultTopicPerm else None,
        default_group_perm=args.defaultGroupPerm.strip() if args.defaultGroupPerm else None,
        topic_perms=split_list(args.topicPerms),
        group_perms=split_list(args.groupPerms),
    )
    addrs, _ = await _targets(admin, args)
    for addr in addrs:
        await update_access_config(admin.brokers, addr, update)
        out.write(f"create or update plain access config to {addr} success.\n")


async def delete_acl_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``deleteAccessConfig``."""
    addrs, _ = await _targets(admin, args)
    for addr in addrs:
        await delete_access_config(admin.brokers, addr, args.accessKey.strip())
        out.write(f"delete plain access config account to {addr} success.\n")
    out.write(f"account's accesskey is:{args.accessKey.strip()}")


async def update_global_white(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``updateGlobalWhiteAddr``."""
    addresses = split_list(args.globalWhiteRemoteAddresses)
    addrs, _ = await _targets(admin, args)
    for addr in addrs:
        await update_global_white_addrs(admin.brokers, addr, addresses)
        out.write(f"update global white remote addresses to {addr} success.\n")


def _time(millis: int) -> str:
    moment = datetime.datetime.fromtimestamp(millis / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def cluster_acl_version(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``clusterAclConfigVersion``."""
    addrs, cluster = await _targets(admin, args)
    if cluster:  # mqadmin prints the titles for a cluster only
        out.write(
            f"{'#Cluster Name':<16}  {'#Broker Name':<22}  {'#Broker Addr':<22}  "
            f"{'#AclConfigVersionNum':<20}  {'#AclLastUpdateTime':<22}\n"
        )
    for addr in addrs:
        version = await acl_version(admin.brokers, addr)
        out.write(
            f"{version.cluster_name:<16}  {version.broker_name:<22}  {version.broker_addr:<22}  "
            f"{version.counter:<20}  {_time(version.timestamp):<22}\n"
        )
    if cluster:
        out.write("get cluster's plain access config version success.\n")
    else:
        out.write("get broker's plain access config version success.\n")


async def get_access_config(admin: Admin, args: argparse.Namespace, out: TextIO) -> None:
    """``getAccessConfigSubCommand``: the white list and every account."""
    addrs, _ = await _targets(admin, args)
    for addr in addrs:
        whites, accounts = await acl_config(admin.brokers, addr)
        out.write(f"\n{'globalWhiteRemoteAddresses':<20}: [{', '.join(whites)}]\n\naccounts:\n")
        for account in accounts:
            for field in (
                "accessKey",
                "secretKey",
                "whiteRemoteAddress",
                "admin",
                "defaultTopicPerm",
                "defaultGroupPerm",
                "topicPerms",
                "groupPerms",
            ):
                value = account.get(field)
                if isinstance(value, list):
                    text = "[" + ", ".join(str(item) for item in value) + "]"
                elif isinstance(value, bool):
                    text = "true" if value else "false"
                else:
                    text = "" if value is None else str(value)
                out.write(f"  {field:<18}: {text}\n")
            out.write("\n")


def register_admin(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "updateAclConfig",
        "Update acl config yaml file in broker",
        update_acl_config,
        "UpdateAccessConfigSubCommand",
    )
    _where(parser, "update acl config file to")
    parser.add_argument("-a", "--accessKey", help="set accessKey in acl config file")
    parser.add_argument("-s", "--secretKey", help="set secretKey in acl config file")
    parser.add_argument("-w", "--whiteRemoteAddress", help="set white ip Address for account")
    parser.add_argument("-i", "--defaultTopicPerm", help="set default topicPerm")
    parser.add_argument("-u", "--defaultGroupPerm", help="set default GroupPerm")
    parser.add_argument("-t", "--topicPerms", help="set topicPerms list,eg: topicA=DENY,topicD=SUB")
    parser.add_argument("-g", "--groupPerms", help="set groupPerms list,eg: groupD=DENY,groupD=SUB")
    parser.add_argument("-m", "--admin", help="set admin flag in acl config file")

    parser = add_command(
        subparsers,
        "deleteAccessConfig",
        "Delete Acl Config Account in broker",
        delete_acl_config,
        "DeleteAccessConfigSubCommand",
    )
    _where(parser, "delete acl config account to")
    parser.add_argument("-a", "--accessKey", required=True, help="the account's accessKey")

    parser = add_command(
        subparsers,
        "updateGlobalWhiteAddr",
        "Update global white address for acl Config File in broker",
        update_global_white,
        "UpdateGlobalWhiteAddrSubCommand",
    )
    _where(parser, "update global white address to")
    parser.add_argument(
        "-g",
        "--globalWhiteRemoteAddresses",
        required=True,
        help="set globalWhiteRemoteAddress list,eg: 10.10.103.*,192.168.0.*",
    )

    parser = add_command(
        subparsers,
        "clusterAclConfigVersion",
        "List all of acl config version information in cluster",
        cluster_acl_version,
        "ClusterAclConfigVersionListSubCommand",
    )
    _where(parser, "query acl config version for")

    parser = add_command(
        subparsers,
        "getAccessConfigSubCommand",
        "List all of acl config information in cluster",
        get_access_config,
        "GetAccessConfigSubCommand",
    )
    _where(parser, "query acl config for")


__all__ = ["register_admin"]
