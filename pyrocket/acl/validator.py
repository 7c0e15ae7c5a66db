"""Checking one request against the ACL, as Java's PlainAccessValidator
(``parse``: which resources a request code needs) and PlainPermissionManager
(``validate``: white lists, account, signature, permissions) do.

:func:`check` returns None when the request may run, else the refusal: the
SYSTEM_ERROR remark a Java broker sends (its AclException as
``RemotingHelper.exceptionSimpleDesc`` writes it, naming the Java frame that
threw) and a short reason for the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pyrocket.acl.addresses import peer_ip
from pyrocket.acl.plain import PUB, SUB, AclConfig, check_permission, retry_topic
from pyrocket.acl.signing import (
    ACCESS_KEY,
    SIGNATURE,
    calculate_signature,
    signed_content,
)
from pyrocket.errors import ProtocolError, PyrocketError
from pyrocket.protocol.bodies.client import HeartbeatData
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.javahash import hashmap_order

_EXCEPTION: Final = "org.apache.rocketmq.acl.common.AclException"
_MANAGER: Final = "org.apache.rocketmq.acl.plain.PlainPermissionManager"
_VALIDATOR: Final = "org.apache.rocketmq.acl.plain.PlainAccessValidator"
#: Where Java 4.7.0 throws each refusal (the first stack frame of the remark).
_AT_NO_ACCESS_KEY: Final = f"{_MANAGER}.validate(PlainPermissionManager.java:394)"
_AT_NO_ACCOUNT: Final = f"{_MANAGER}.validate(PlainPermissionManager.java:398)"
_AT_SIGNATURE: Final = f"{_MANAGER}.validate(PlainPermissionManager.java:410)"
_AT_ADMIN: Final = f"{_MANAGER}.checkPerm(PlainPermissionManager.java:316)"
_AT_DEFAULT_PERM: Final = f"{_MANAGER}.checkPerm(PlainPermissionManager.java:341)"
_AT_PERM: Final = f"{_MANAGER}.checkPerm(PlainPermissionManager.java:346)"
_AT_PARSE: Final = f"{_VALIDATOR}.parse(PlainAccessValidator.java:123)"

#: Java's Permission.ADMIN_CODE.
JAVA_ADMIN_CODES: Final = frozenset(
    {
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.UPDATE_BROKER_CONFIG,
        RequestCode.DELETE_TOPIC_IN_BROKER,
        RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        RequestCode.DELETE_SUBSCRIPTIONGROUP,
    }
)
#: Beyond Java: the ACL admin requests change accounts or return secrets,
#: so they need an admin account too.
ACL_ADMIN_CODES: Final = frozenset(
    {
        RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
        RequestCode.DELETE_ACL_CONFIG,
        RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
        RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG,
    }
)
BROKER_ADMIN_CODES: Final = JAVA_ADMIN_CODES | ACL_ADMIN_CODES

#: Beyond Java: the NameServer's writes, which need an admin account when
#: the NameServer runs with ACL.
NAMESRV_ADMIN_CODES: Final = frozenset(
    {
        RequestCode.PUT_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.UPDATE_NAMESRV_CONFIG,
    }
)
#: The NameServer requests only a broker sends: a white-listed address or a
#: valid signature of any account.
NAMESRV_BROKER_CODES: Final = frozenset(
    {RequestCode.REGISTER_BROKER, RequestCode.UNREGISTER_BROKER}
)
#: What a NameServer with ACL checks; everything else (route and KV queries)
#: stays open, as in Java.
NAMESRV_CHECKED_CODES: Final = NAMESRV_ADMIN_CODES | NAMESRV_BROKER_CODES


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: ``remark`` for the peer, ``reason`` for the log."""

    remark: str
    reason: str


class _Refused(PyrocketError):
    """Internal: carries a refusal out of the checks; never escapes :func:`check`."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(f"{_EXCEPTION}: {message}, {where}", message)


def needed_resources(request: RemotingCommand) -> dict[str, int]:
    """The topics (groups as their retry topics) a request needs, and how
    (PUB / SUB), as Java's ``PlainAccessValidator.parse`` lists them. Raises
    ProtocolError for a heartbeat body that does not decode or a header
    lacking a field Java requires."""
    ext = request.ext_fields or {}
    code = request.code
    needed: dict[str, int] = {}

    def add(resource: str | None, perm: int) -> None:
        if resource is not None:
            needed[resource] = perm

    def group(key: str, required: bool = True) -> str | None:
        value = ext.get(key)
        if value is None and required:
            raise ProtocolError(f"the custom field <{key}> is null")
        return None if value is None else retry_topic(value)

    if code == RequestCode.SEND_MESSAGE_V2 or code == RequestCode.SEND_BATCH_MESSAGE:
        add(ext.get("b"), PUB)
    elif code == RequestCode.SEND_MESSAGE or code == RequestCode.SEND_REPLY_MESSAGE:
        add(ext.get("topic"), PUB)
    elif code == RequestCode.SEND_REPLY_MESSAGE_V2:
        add(ext.get("b"), PUB)
    elif code == RequestCode.PULL_MESSAGE:
        add(ext.get("topic"), SUB)
        add(group("consumerGroup", required=False), SUB)
    elif code == RequestCode.CONSUMER_SEND_MSG_BACK:
        add(ext.get("originTopic"), PUB)
        add(group("group", required=False), SUB)
    elif code == RequestCode.QUERY_MESSAGE:
        add(ext.get("topic"), SUB)
    elif code == RequestCode.HEART_BEAT:
        heartbeat = HeartbeatData.decode(request.body or b"")
        for consumer in heartbeat.consumer_data_set:
            if consumer.group_name is not None:
                add(retry_topic(consumer.group_name), SUB)
            for subscription in consumer.subscription_data_set:
                add(subscription.topic, SUB)
    elif code == RequestCode.UNREGISTER_CLIENT:
        if ext.get("clientID") is None:
            raise ProtocolError("the custom field <clientID> is null")
        add(group("consumerGroup", required=False), SUB)
    elif code == RequestCode.GET_CONSUMER_LIST_BY_GROUP:
        add(group("consumerGroup"), SUB)
    elif code == RequestCode.UPDATE_CONSUMER_OFFSET:
        add(group("consumerGroup"), SUB)
        topic = ext.get("topic")
        if topic is None:
            raise ProtocolError("the custom field <topic> is null")
        add(topic, SUB)
    return needed


def _print(resource: str) -> str:
    if resource.startswith("%RETRY%"):
        return f"group:{resource[len('%RETRY%') :]}"
    return f"topic:{resource}"


def check(
    config: AclConfig,
    request: RemotingCommand,
    remote_address: str,
    admin_codes: frozenset[int] = BROKER_ADMIN_CODES,
    needed: dict[str, int] | None = None,
) -> Refusal | None:
    """None when ``request`` from ``remote_address`` ("ip:port") may run,
    else the refusal (see the module docs). ``needed`` replaces the
    resources Java's table gives for the code (the NameServer passes {})."""
    try:
        _validate(config, request, remote_address, admin_codes, needed)
    except _Refused as refused:
        return refused.refusal
    return None


def _validate(
    config: AclConfig,
    request: RemotingCommand,
    remote_address: str,
    admin_codes: frozenset[int],
    needed: dict[str, int] | None,
) -> None:
    ext = request.ext_fields
    if needed is None:
        # Java parses before it checks anything: a request it cannot read is
        # refused even from a white-listed address.
        try:
            needed = {} if ext is None else needed_resources(request)
        except ProtocolError as exc:
            raise _Refused(str(exc), _AT_PARSE) from exc
    ip = peer_ip(remote_address)
    for matcher in config.global_white:
        if matcher(ip):
            return
    access_key = None if ext is None else ext.get(ACCESS_KEY)
    if access_key is None:
        raise _Refused("No accessKey is configured", _AT_NO_ACCESS_KEY)
    account = config.accounts.get(access_key)
    if account is None:
        raise _Refused(f"No acl config for {access_key}", _AT_NO_ACCOUNT)
    if account.white(ip):
        return
    assert ext is not None
    expected = calculate_signature(signed_content(ext, request.body), account.secret_key)
    if ext.get(SIGNATURE) != expected:
        raise _Refused(f"Check signature failed for accessKey={access_key}", _AT_SIGNATURE)
    if request.code in admin_codes and not account.admin:
        raise _Refused(
            f"Need admin permission for request code={request.code}, "
            f"but accessKey={access_key} is not",
            _AT_ADMIN,
        )
    if not needed or (not account.perms and account.admin):
        return
    failed = []
    for resource, perm in needed.items():
        owned = account.perms.get(resource)
        if owned is None:
            is_group = resource.startswith("%RETRY%")
            owned = account.default_group_perm if is_group else account.default_topic_perm
            if not check_permission(perm, owned):
                failed.append((resource, _AT_DEFAULT_PERM))
        elif not check_permission(perm, owned):
            failed.append((resource, _AT_PERM))
    if failed:
        # Java walks a HashMap of the resources and throws at the first.
        where = dict(failed)
        first = next(key for key in hashmap_order(needed) if key in where)
        raise _Refused(f"No default permission for {_print(first)}", where[first])


__all__ = [
    "ACL_ADMIN_CODES",
    "BROKER_ADMIN_CODES",
    "JAVA_ADMIN_CODES",
    "NAMESRV_ADMIN_CODES",
    "NAMESRV_BROKER_CODES",
    "NAMESRV_CHECKED_CODES",
    "Refusal",
    "check",
    "needed_resources",
]
