"""A NameServer with ``aclEnable=true`` (beyond Java, over real sockets):
its writes need an admin account, broker registrations a white-listed
address or a signature, route queries stay open; no start without a good
plain_acl.yml."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.errors import ConfigError
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import NamesrvConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import GetRouteInfoRequestHeader, PutKVConfigRequestHeader
from pyrocket.protocol.headers.namesrv import WipeWritePermOfBrokerRequestHeader
from pyrocket.remoting import ClientConfig, RemotingClient
from tests.namesrv.helpers import address, namesrv_config, register_request, running_namesrv

ACL_YML = """\
globalWhiteRemoteAddresses: []
accounts:
- accessKey: brokeraccount
  secretKey: brokersecret
- accessKey: adminaccount
  secretKey: adminsecret1
  admin: true
"""
BROKER = SessionCredentials("brokeraccount", "brokersecret")
ADMIN = SessionCredentials("adminaccount", "adminsecret1")


def acl_config(tmp_path: Path, text: str | None = ACL_YML) -> NamesrvConfig:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True, exist_ok=True)
    if text is not None:
        (home / "conf" / "plain_acl.yml").write_text(text)
    return namesrv_config(tmp_path, rocketmq_home=str(home), acl_enable=True)


async def call(
    addr: str, request: RemotingCommand, credentials: SessionCredentials | None = None
) -> RemotingCommand:
    hook = None if credentials is None else (lambda r: sign_request(r, credentials))
    async with RemotingClient(ClientConfig(), rpc_hook=hook) as client:
        return await client.invoke_sync(addr, request, timeout=5)


def writes() -> list[RemotingCommand]:
    put = PutKVConfigRequestHeader(namespace="ns", key="k", value="v")
    return [
        RemotingCommand.request(RequestCode.PUT_KV_CONFIG, put),
        RemotingCommand.request(
            RequestCode.WIPE_WRITE_PERM_OF_BROKER, WipeWritePermOfBrokerRequestHeader("broker-a")
        ),
        RemotingCommand(
            code=RequestCode.DELETE_TOPIC_IN_NAMESRV, ext_fields={"topic": "SomeTopic"}
        ),
        RemotingCommand(code=RequestCode.UPDATE_NAMESRV_CONFIG, body=b"orderMessageEnable=true\n"),
        RemotingCommand(
            code=RequestCode.DELETE_KV_CONFIG, ext_fields={"namespace": "ns", "key": "k"}
        ),
    ]


async def test_writes_need_an_admin_account(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_namesrv(config=acl_config(tmp_path)) as namesrv:
            addr = address(namesrv)
            for request in writes():
                unsigned = await call(addr, request)
                assert unsigned.code == ResponseCode.SYSTEM_ERROR
                assert "No accessKey is configured" in (unsigned.remark or "")
                plain = await call(addr, request, BROKER)
                assert plain.code == ResponseCode.SYSTEM_ERROR
                assert f"Need admin permission for request code={request.code}" in (
                    plain.remark or ""
                )
                forged = await call(addr, request, SessionCredentials("adminaccount", "nope1234"))
                assert "Check signature failed" in (forged.remark or "")
                done = await call(addr, request, ADMIN)
                assert done.code == ResponseCode.SUCCESS, (request.code, done.remark)
            assert namesrv.config.order_message_enable is True


async def test_queries_stay_open_and_brokers_register_signed(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_namesrv(config=acl_config(tmp_path)) as namesrv:
            addr = address(namesrv)
            route = RemotingCommand.request(
                RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader("AclTopic")
            )
            assert (await call(addr, route)).code == ResponseCode.TOPIC_NOT_EXIST
            register = register_request(topics=["AclTopic"])
            refused = await call(addr, register)
            assert refused.code == ResponseCode.SYSTEM_ERROR
            # The broker stays registered while its connection is open.
            hook = lambda r: sign_request(r, BROKER)  # noqa: E731
            async with RemotingClient(ClientConfig(), rpc_hook=hook) as broker:
                answer = await broker.invoke_sync(addr, register, timeout=5)
                assert answer.code == ResponseCode.SUCCESS
                assert (await call(addr, route)).code == ResponseCode.SUCCESS


async def test_white_listed_brokers_register_unsigned(tmp_path: Path) -> None:
    config = acl_config(tmp_path, ACL_YML.replace("[]", "[127.0.0.1]"))
    with trio.fail_after(20):
        async with running_namesrv(config=config) as namesrv:
            addr = address(namesrv)
            assert (await call(addr, register_request())).code == ResponseCode.SUCCESS


@pytest.mark.parametrize("text", [None, "accounts:\n- accessKey: abc\n  secretKey: x\n"])
async def test_no_start_without_a_good_file(tmp_path: Path, text: str | None) -> None:
    with trio.fail_after(10), pytest.raises(ConfigError, match=r"plain_acl\.yml"):
        await NameServer(acl_config(tmp_path, text)).serve("127.0.0.1", 0)
