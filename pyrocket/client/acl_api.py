"""The ACL admin requests mqadmin sends to a broker (Java's
MQClientAPIImpl ``createPlainAccessConfig``, ``deletePlainAccessConfig``,
``updateGlobalWhiteAddrsConfig``, ``getBrokerClusterAclInfo``,
``getBrokerClusterConfig``). Each raises ResponseError with the broker's
code and remark when it refuses, and the remoting errors when no answer comes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyrocket.acl.plain import AccessConfigUpdate
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.calls import invoke_checked
from pyrocket.errors import ProtocolError
from pyrocket.protocol import fastjson
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers.admin import (
    CreateAccessConfigRequestHeader,
    DeleteAccessConfigRequestHeader,
    GetBrokerAclConfigResponseHeader,
    UpdateGlobalWhiteAddrsConfigRequestHeader,
)


@dataclass(frozen=True, slots=True)
class AclVersion:
    """GET_BROKER_CLUSTER_ACL_INFO's answer (Java's ClusterAclVersionInfo)."""

    cluster_name: str
    broker_name: str
    broker_addr: str
    counter: int
    timestamp: int


async def _call(brokers: BrokerAPI, addr: str, request: RemotingCommand) -> RemotingCommand:
    return await invoke_checked(brokers.client, addr, request, brokers.timeout)


async def update_access_config(brokers: BrokerAPI, addr: str, update: AccessConfigUpdate) -> None:
    """UPDATE_AND_CREATE_ACL_CONFIG."""
    header = CreateAccessConfigRequestHeader(
        access_key=update.access_key,
        secret_key=update.secret_key,
        white_remote_address=update.white_remote_address,
        admin=update.admin,
        default_topic_perm=update.default_topic_perm,
        default_group_perm=update.default_group_perm,
        topic_perms=",".join(update.topic_perms) if update.topic_perms else None,
        group_perms=",".join(update.group_perms) if update.group_perms else None,
    )
    request = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, header)
    await _call(brokers, addr, request)


async def delete_access_config(brokers: BrokerAPI, addr: str, access_key: str) -> None:
    """DELETE_ACL_CONFIG."""
    header = DeleteAccessConfigRequestHeader(access_key)
    await _call(brokers, addr, RemotingCommand.request(RequestCode.DELETE_ACL_CONFIG, header))


async def update_global_white_addrs(
    brokers: BrokerAPI, addr: str, addresses: Sequence[str]
) -> None:
    """UPDATE_GLOBAL_WHITE_ADDRS_CONFIG."""
    header = UpdateGlobalWhiteAddrsConfigRequestHeader(",".join(addresses))
    request = RemotingCommand.request(RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, header)
    await _call(brokers, addr, request)


async def acl_version(brokers: BrokerAPI, addr: str) -> AclVersion:
    """GET_BROKER_CLUSTER_ACL_INFO. Raises ProtocolError for an answer that
    does not decode."""
    request = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_ACL_INFO)
    header = (await _call(brokers, addr, request)).decode_header(GetBrokerAclConfigResponseHeader)
    version: Any = fastjson.loads(header.version)
    if not isinstance(version, dict):
        raise ProtocolError(f"ACL version {header.version!r} is not a DataVersion")
    return AclVersion(
        header.cluster_name,
        header.broker_name,
        header.broker_addr,
        int(version.get("counter") or 0),
        int(version.get("timestamp") or 0),
    )


async def acl_config(brokers: BrokerAPI, addr: str) -> tuple[list[str], list[dict[str, Any]]]:
    """GET_BROKER_CLUSTER_ACL_CONFIG: the global white list and the accounts
    (as PlainAccessConfig JSON objects). Raises ProtocolError for a bad body."""
    request = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG)
    body: Any = fastjson.loads((await _call(brokers, addr, request)).body or b"{}")
    if not isinstance(body, dict):
        raise ProtocolError("GetBrokerClusterAclConfigResponseBody is not a JSON object")
    whites = [str(item) for item in body.get("globalWhiteAddrs") or []]
    accounts = [item for item in body.get("plainAccessConfigs") or [] if isinstance(item, dict)]
    return whites, accounts


__all__ = [
    "AclVersion",
    "acl_config",
    "acl_version",
    "delete_access_config",
    "update_access_config",
    "update_global_white_addrs",
]
