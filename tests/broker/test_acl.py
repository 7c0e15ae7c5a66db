"""A broker with ``aclEnable=true``, over real sockets: every request
checked before its processor, Java's refusal codes and remarks, hot reload,
white lists, the ACL admin requests written back to plain_acl.yml, and
refusing to start without a good file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import yaml

from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.broker.app import Broker, serve_broker
from pyrocket.errors import ConfigError
from pyrocket.protocol import fastjson
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import CreateTopicRequestHeader
from pyrocket.protocol.headers.admin import (
    CreateAccessConfigRequestHeader,
    DeleteAccessConfigRequestHeader,
    UpdateGlobalWhiteAddrsConfigRequestHeader,
)
from pyrocket.remoting import ClientConfig, RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request
from tests.remoting.helpers import wait_until

ACL_YML = """\
globalWhiteRemoteAddresses:
- 10.10.103.*

accounts:
- accessKey: produceronly
  secretKey: producersecret
  whiteRemoteAddress:
  admin: false
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - TopicA=PUB
  - TopicDenied=DENY

- accessKey: adminaccount
  secretKey: adminsecret1
  admin: true
"""
PRODUCER = SessionCredentials("produceronly", "producersecret")
ADMIN = SessionCredentials("adminaccount", "adminsecret1")
MANAGER = "org.apache.rocketmq.acl.plain.PlainPermissionManager"
EXC = "org.apache.rocketmq.acl.common.AclException"


def acl_home(tmp_path: Path, text: str = ACL_YML) -> Path:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True, exist_ok=True)
    (home / "conf" / "plain_acl.yml").write_text(text)
    return home


@asynccontextmanager
async def acl_broker(tmp_path: Path) -> AsyncIterator[tuple[Broker, str]]:
    home = acl_home(tmp_path)
    settings = broker_settings(tmp_path, aclEnable="true", rocketmqHome=str(home))
    async with running_broker(settings) as broker:
        assert broker.acl is not None
        yield broker, broker.broker_addr


async def call(
    addr: str, request: RemotingCommand, credentials: SessionCredentials | None = None
) -> RemotingCommand:
    hook = None if credentials is None else (lambda r: sign_request(r, credentials))
    async with RemotingClient(ClientConfig(), rpc_hook=hook) as client:
        return await client.invoke_sync(addr, request, timeout=5)


def create_topic(topic: str) -> RemotingCommand:
    header = CreateTopicRequestHeader(
        topic=topic,
        default_topic="TBW102",
        read_queue_nums=4,
        write_queue_nums=4,
        perm=6,
        topic_filter_type="SINGLE_TAG",
    )
    return RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, header)


async def test_fail_closed_without_a_good_file(tmp_path: Path) -> None:
    cases = {
        "missing": None,
        "broken": "accounts: [",
        "short": "accounts:\n- accessKey: tiny\n  secretKey: 1234567890\n",
    }
    for name, text in cases.items():
        home = tmp_path / name
        (home / "conf").mkdir(parents=True)
        if text is not None:
            (home / "conf" / "plain_acl.yml").write_text(text)
        settings = broker_settings(tmp_path / name, aclEnable="true", rocketmqHome=str(home))
        with trio.fail_after(10), pytest.raises(ConfigError, match=r"plain_acl\.yml"):
            await serve_broker(settings, host="127.0.0.1")
    settings = broker_settings(tmp_path / "nohome", aclEnable="true", rocketmqHome="")
    with trio.fail_after(10), pytest.raises(ConfigError, match="rocketmqHome"):
        await serve_broker(settings, host="127.0.0.1")
    assert not (tmp_path / "nohome" / "store").exists()  # refused before the store


async def test_refusals_and_permissions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "pyrocket.acl")
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (broker, addr):
            # Admin-only: the producer account may not create topics.
            refused = await call(addr, create_topic("TopicA"), PRODUCER)
            assert refused.code == ResponseCode.SYSTEM_ERROR
            assert refused.remark == (
                f"{EXC}: Need admin permission for request code=17, but "
                "accessKey=produceronly is not, "
                f"{MANAGER}.checkPerm(PlainPermissionManager.java:316)"
            )
            for topic in ("TopicA", "TopicDenied", "TopicOther"):
                created = await call(addr, create_topic(topic), ADMIN)
                assert created.code == ResponseCode.SUCCESS, created.remark

            sent = await call(addr, send_request("TopicA", 0, b"hello"), PRODUCER)
            assert sent.code == ResponseCode.SUCCESS, sent.remark
            assert broker.store.get_max_offset_in_queue("TopicA", 0) == 1

            expectations = [
                (PRODUCER, "TopicDenied", "No default permission for topic:TopicDenied", 346),
                (PRODUCER, "TopicOther", "No default permission for topic:TopicOther", 341),
                (None, "TopicA", "No accessKey is configured", 394),
                (
                    SessionCredentials("nobodyhere", "whatever12"),
                    "TopicA",
                    "No acl config for nobodyhere",
                    398,
                ),
                (
                    SessionCredentials("produceronly", "wrongsecret"),
                    "TopicA",
                    "Check signature failed for accessKey=produceronly",
                    410,
                ),
            ]
            for credentials, topic, message, line in expectations:
                answer = await call(addr, send_request(topic, 0, b"x"), credentials)
                method = "checkPerm" if line in (341, 346) else "validate"
                assert answer.code == ResponseCode.SYSTEM_ERROR
                assert answer.remark == (
                    f"{EXC}: {message}, {MANAGER}.{method}(PlainPermissionManager.java:{line})"
                )
            assert broker.store.get_max_offset_in_queue("TopicA", 0) == 1
            assert broker.store.get_max_offset_in_queue("TopicDenied", 0) == 0
    refusals = [r for r in caplog.records if "ACL refused" in r.getMessage()]
    assert len(refusals) == 1  # the first refusal of this peer only
    assert "127.0.0.1" in refusals[0].getMessage()
    assert all("producersecret" not in r.getMessage() for r in caplog.records)


async def test_a_signature_computed_by_hand_is_accepted(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (_, addr):
            assert (await call(addr, create_topic("TopicA"), ADMIN)).code == ResponseCode.SUCCESS
            request = send_request("TopicA", 1, b"by hand")
            ext = dict(request.ext_fields or {})
            ext["AccessKey"] = "produceronly"
            content = "".join(ext[key] for key in sorted(ext)).encode() + b"by hand"
            digest = hmac.new(b"producersecret", content, hashlib.sha1).digest()
            ext["Signature"] = base64.b64encode(digest).decode()
            answer = await call(addr, request.replace(ext_fields=ext))
            assert answer.code == ResponseCode.SUCCESS, answer.remark
            # One byte of the body changed: the same signature no longer fits.
            answer = await call(addr, request.replace(ext_fields=ext, body=b"by hanD"))
            assert answer.code == ResponseCode.SYSTEM_ERROR
            assert "Check signature failed" in (answer.remark or "")


async def test_hot_reload_and_a_broken_file_keeps_the_last_good_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (broker, addr):
            assert broker.acl is not None
            path = broker.acl.path
            newcomer = SessionCredentials("newcomer1", "newsecret1")
            request = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
            assert (await call(addr, request, newcomer)).code == ResponseCode.SYSTEM_ERROR
            reloads = broker.acl.reloads
            document = yaml.safe_load(ACL_YML)
            document["accounts"].append({"accessKey": "newcomer1", "secretKey": "newsecret1"})
            path.write_text(yaml.safe_dump(document))
            await wait_until(lambda: broker.acl is not None and broker.acl.reloads > reloads)
            assert (await call(addr, request, newcomer)).code == ResponseCode.SUCCESS

            caplog.set_level(logging.ERROR, "pyrocket.acl")
            path.write_text("accounts: [\n")
            await wait_until(lambda: "not reloaded" in caplog.text)
            assert (await call(addr, request, newcomer)).code == ResponseCode.SUCCESS


async def test_global_white_list_lets_unsigned_requests_through(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (broker, addr):
            request = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
            assert (await call(addr, request)).code == ResponseCode.SYSTEM_ERROR
            header = UpdateGlobalWhiteAddrsConfigRequestHeader(global_white_addrs="127.0.0.*")
            update = RemotingCommand.request(RequestCode.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG, header)
            # Beyond Java: only an admin may change the white list.
            assert (await call(addr, update, PRODUCER)).code == ResponseCode.SYSTEM_ERROR
            answer = await call(addr, update, ADMIN)
            assert answer.code == ResponseCode.SUCCESS, answer.remark
            assert (await call(addr, request)).code == ResponseCode.SUCCESS
            assert broker.acl is not None
            written = yaml.safe_load(broker.acl.path.read_text())
            assert written["globalWhiteRemoteAddresses"] == ["127.0.0.*"]
            assert written["dataVersion"][0]["counter"] == 1


async def test_acl_admin_requests_persist(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (broker, addr):
            assert broker.acl is not None
            path = broker.acl.path
            version = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_ACL_INFO)
            answer = await call(addr, version, ADMIN)
            assert answer.code == ResponseCode.SUCCESS
            ext = answer.ext_fields or {}
            assert fastjson.loads(ext["version"])["counter"] == 0
            assert ext["brokerAddr"] == addr and ext["brokerName"] == "broker-a"
            assert ext["clusterName"] == "DefaultCluster"

            header = CreateAccessConfigRequestHeader(
                access_key="created1",
                secret_key="createdsecret",
                default_topic_perm="PUB",
                topic_perms="TopicX=DENY,TopicY=SUB",
            )
            create = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, header)
            answer = await call(addr, create, ADMIN)
            assert answer.code == ResponseCode.SUCCESS, answer.remark
            written = yaml.safe_load(path.read_text())
            account = written["accounts"][-1]
            assert account == {
                "accessKey": "created1",
                "secretKey": "createdsecret",
                "admin": False,
                "defaultTopicPerm": "PUB",
                "topicPerms": ["TopicX=DENY", "TopicY=SUB"],
            }
            runtime = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
            created = SessionCredentials("created1", "createdsecret")
            assert (await call(addr, runtime, created)).code == ResponseCode.SUCCESS

            short = CreateAccessConfigRequestHeader(access_key="tiny")
            answer = await call(
                addr,
                RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, short),
                ADMIN,
            )
            assert answer.code == ResponseCode.UPDATE_AND_CREATE_ACL_CONFIG_FAILED
            assert "length should longer than 6" in (answer.remark or "")

            config = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG)
            assert (await call(addr, config, PRODUCER)).code == ResponseCode.SYSTEM_ERROR
            answer = await call(addr, config, ADMIN)
            body = fastjson.loads(answer.body or b"")
            assert body["globalWhiteAddrs"] == ["10.10.103.*"]
            keys = [item["accessKey"] for item in body["plainAccessConfigs"]]
            assert keys == ["produceronly", "adminaccount", "created1"]

            delete = RemotingCommand.request(
                RequestCode.DELETE_ACL_CONFIG, DeleteAccessConfigRequestHeader("created1")
            )
            assert (await call(addr, delete, ADMIN)).code == ResponseCode.SUCCESS
            assert (await call(addr, runtime, created)).code == ResponseCode.SYSTEM_ERROR
            again = await call(addr, delete, ADMIN)
            assert again.code == ResponseCode.DELETE_ACL_CONFIG_FAILED
            assert yaml.safe_load(path.read_text())["dataVersion"][0]["counter"] == 2
            answer = await call(addr, version, ADMIN)
            assert fastjson.loads((answer.ext_fields or {})["version"])["counter"] == 2


async def test_secrets_are_not_in_the_broker_config(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with acl_broker(tmp_path) as (_, addr):
            request = RemotingCommand.request(RequestCode.GET_BROKER_CONFIG)
            answer = await call(addr, request, ADMIN)
            assert answer.code == ResponseCode.SUCCESS
            text = (answer.body or b"").decode()
            assert "aclEnable=true" in text
            assert "adminsecret1" not in text and "producersecret" not in text


async def test_acl_admin_requests_without_acl(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_broker(broker_settings(tmp_path)) as broker:
            addr = broker.broker_addr
            version = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_ACL_INFO)
            answer = await call(addr, version)
            assert answer.code == ResponseCode.SYSTEM_ERROR and "not enabled" in (
                answer.remark or ""
            )
            delete = RemotingCommand.request(
                RequestCode.DELETE_ACL_CONFIG, DeleteAccessConfigRequestHeader("someone1")
            )
            assert (await call(addr, delete)).code == ResponseCode.DELETE_ACL_CONFIG_FAILED


async def test_a_big_heartbeat_is_checked_off_the_event_loop(tmp_path: Path) -> None:
    from pyrocket.aclserve import INLINE_BODY_LIMIT
    from pyrocket.protocol.bodies.client import ConsumerData, HeartbeatData, SubscriptionData

    def heartbeat(topic: str) -> RemotingCommand:
        tags = " || ".join(f"tag{n:04d}-" + "x" * 80 for n in range(1000))
        data = HeartbeatData(
            client_id="127.0.0.1@big",
            consumer_data_set=(
                ConsumerData(
                    group_name="big_group",
                    subscription_data_set=(SubscriptionData.for_expression(topic, tags),),
                ),
            ),
        )
        body = data.encode()
        assert len(body) > INLINE_BODY_LIMIT
        return RemotingCommand(code=RequestCode.HEART_BEAT, ext_fields={}, body=body)

    with trio.fail_after(30):
        async with acl_broker(tmp_path) as (_, addr):
            denied = await call(addr, heartbeat("TopicDenied"), PRODUCER)
            assert denied.code == ResponseCode.SYSTEM_ERROR
            assert "No default permission for topic:TopicDenied" in (denied.remark or "")
            allowed = await call(addr, heartbeat("TopicDenied"), ADMIN)
            assert allowed.code == ResponseCode.SUCCESS, allowed.remark
