"""The ACL admin requests of Java's AdminBrokerProcessor:
UPDATE_AND_CREATE_ACL_CONFIG, DELETE_ACL_CONFIG, UPDATE_GLOBAL_WHITE_ADDRS_CONFIG
(each an edit of ``plain_acl.yml`` that bumps its dataVersion, written back
and in force at once), GET_BROKER_CLUSTER_ACL_INFO (the dataVersion) and
GET_BROKER_CLUSTER_ACL_CONFIG (white list and accounts).

With ``aclEnable`` off Java fails on a null validator (an empty failure
remark, or no answer at all for the two queries); pyrocket answers the
request's failure code, or SYSTEM_ERROR for the queries, saying ACL is off.
"""

from __future__ import annotations

import logging
from typing import Final

from pyrocket.acl.plain import (
    AccessConfigUpdate,
    cluster_acl_config_body,
    delete_account,
    split_list,
    update_account,
    update_global_white,
)
from pyrocket.aclserve import AclGuard
from pyrocket.broker.processors.ports import AclBroker
from pyrocket.errors import ConfigError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers.admin import (
    CreateAccessConfigRequestHeader,
    DeleteAccessConfigRequestHeader,
    GetBrokerAclConfigResponseHeader,
    UpdateGlobalWhiteAddrsConfigRequestHeader,
)
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")

ACL_OFF: Final = "ACL is not enabled on this broker (aclEnable=false)"

#: The codes that change the file (applied in arrival order).
ACL_EDIT_CODES: Final = frozenset(
    {
        RequestCode.UPDATE_AND_CREATE_ACL_CONFIG,
        RequestCode.DELETE_ACL_CONFIG,
        RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
    }
)


def _answer(code: int, remark: str | None = None) -> RemotingCommand:
    return RemotingCommand.response(code, remark)


class AclAdminProcessor:
    """Answers the five ACL admin requests (see the module docs)."""

    def __init__(self, broker: AclBroker) -> None:
        self.broker = broker

    def install(self) -> None:
        register = self.broker.register_processor
        register(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, self.update_and_create)
        register(RequestCode.DELETE_ACL_CONFIG, self.delete)
        register(RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, self.update_global_white)
        register(RequestCode.GET_BROKER_CLUSTER_ACL_INFO, self.get_version)
        register(RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG, self.get_config)

    def _acl(self) -> AclGuard | None:
        return self.broker.acl

    async def update_and_create(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        failed = ResponseCode.UPDATE_AND_CREATE_ACL_CONFIG_FAILED
        header = request.decode_header(CreateAccessConfigRequestHeader)
        acl = self._acl()
        if acl is None:
            return _answer(failed, ACL_OFF)
        update = AccessConfigUpdate(
            access_key=header.access_key,
            secret_key=header.secret_key,
            white_remote_address=header.white_remote_address,
            admin=header.admin,
            default_topic_perm=header.default_topic_perm,
            default_group_perm=header.default_group_perm,
            topic_perms=split_list(header.topic_perms),
            group_perms=split_list(header.group_perms),
        )
        now = self.broker.now_ms()
        try:
            changed = await acl.apply(lambda config: update_account(config, update, now))
        except ConfigError as exc:
            log.warning("UPDATE_AND_CREATE_ACL_CONFIG from %s failed: %s", conn.remote_address, exc)
            return _answer(failed, str(exc))
        if not changed:  # pragma: no cover (update_account raises instead)
            return _answer(failed, f"The accesskey[{header.access_key}] update failed.")
        log.info("ACL account %s created or updated by %s", header.access_key, conn.remote_address)
        return _answer(ResponseCode.SUCCESS)

    async def delete(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        failed = ResponseCode.DELETE_ACL_CONFIG_FAILED
        header = request.decode_header(DeleteAccessConfigRequestHeader)
        acl = self._acl()
        if acl is None:
            return _answer(failed, ACL_OFF)
        now = self.broker.now_ms()
        try:
            changed = await acl.apply(lambda config: delete_account(config, header.access_key, now))
        except ConfigError as exc:
            return _answer(failed, str(exc))
        if not changed:
            remark = (
                f"The accesskey[{header.access_key}] corresponding to accessConfig "
                "has been deleted failed."
            )
            return _answer(failed, remark)
        log.info("ACL account %s deleted by %s", header.access_key, conn.remote_address)
        return _answer(ResponseCode.SUCCESS)

    async def update_global_white(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        failed = ResponseCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED
        header = request.decode_header(UpdateGlobalWhiteAddrsConfigRequestHeader)
        acl = self._acl()
        if acl is None:
            return _answer(failed, ACL_OFF)
        addresses = split_list(header.global_white_addrs)
        now = self.broker.now_ms()
        try:
            changed = await acl.apply(lambda config: update_global_white(config, addresses, now))
        except ConfigError as exc:
            return _answer(failed, str(exc))
        if not changed:
            remark = (
                f"The globalWhiteAddresses[{header.global_white_addrs}] has been updated failed."
            )
            return _answer(failed, remark)
        log.info("ACL global white list set to %s by %s", addresses, conn.remote_address)
        return _answer(ResponseCode.SUCCESS)

    def get_version(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        acl = self._acl()
        if acl is None:
            return _answer(ResponseCode.SYSTEM_ERROR, ACL_OFF)
        broker = self.broker.settings.broker
        header = GetBrokerAclConfigResponseHeader(
            version=acl.config.version_json(),
            broker_name=broker.broker_name,
            broker_addr=self.broker.broker_addr,
            cluster_name=broker.broker_cluster_name,
        )
        return RemotingCommand.response(ResponseCode.SUCCESS, header=header)

    def get_config(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        acl = self._acl()
        if acl is None:
            return _answer(ResponseCode.SYSTEM_ERROR, ACL_OFF)
        return RemotingCommand.response(
            ResponseCode.SUCCESS, body=cluster_acl_config_body(acl.config)
        )


__all__ = ["ACL_EDIT_CODES", "ACL_OFF", "AclAdminProcessor"]
