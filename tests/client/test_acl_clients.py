"""pyrocket's producer, consumer and Admin with ACL keys, through a
pyrocket broker with ``aclEnable=true`` (the NameServer without ACL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.admin import Admin
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.topic import TopicConfig
from tests.broker.helpers import broker_settings, running_broker
from tests.client.helpers import consumer
from tests.namesrv.helpers import address, running_namesrv

ACL_YML = """\
accounts:
- accessKey: appaccount
  secretKey: appsecret1
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - AclTopic=PUB|SUB
- accessKey: adminaccount
  secretKey: adminsecret1
  admin: true
"""
APP = SessionCredentials("appaccount", "appsecret1")
ADMIN = SessionCredentials("adminaccount", "adminsecret1")


def cause(exc: BaseException) -> str:
    """The error and what caused it (the producer retries, then reports)."""
    text = []
    while exc is not None:
        text.append(str(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return " <- ".join(text)


async def test_clients_with_keys_through_an_acl_broker(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL_YML)
    with trio.fail_after(40):
        async with running_namesrv(tmp_path) as namesrv:
            ns = address(namesrv)
            settings = broker_settings(tmp_path, [ns], aclEnable="true", rocketmqHome=str(home))
            async with running_broker(settings) as broker:
                async with Admin([ns], credentials=APP) as refused_admin:
                    with pytest.raises(PyrocketError, match="Need admin permission"):
                        await refused_admin.update_topic_on_broker(
                            broker.broker_addr, TopicConfig(topic_name="AclTopic")
                        )
                async with Admin([ns], credentials=ADMIN) as admin:
                    await admin.update_topic_on_broker(
                        broker.broker_addr,
                        TopicConfig(topic_name="AclTopic", read_queue_nums=2, write_queue_nums=2),
                    )
                    await admin.update_topic_on_broker(
                        broker.broker_addr, TopicConfig(topic_name="OtherTopic")
                    )
                async with Producer(
                    "acl_producers", [ns], client_ip="127.0.0.1", credentials=APP
                ) as producer:
                    for i in range(5):
                        await producer.send(new_message("AclTopic", f"m{i}".encode()))
                    with pytest.raises(PyrocketError) as raised:
                        await producer.send(new_message("OtherTopic", b"no"))
                    assert "No default permission for topic:OtherTopic" in cause(raised.value)
                wrong = SessionCredentials("appaccount", "notthesecret")
                async with Producer(
                    "acl_producers", [ns], client_ip="127.0.0.1", credentials=wrong
                ) as producer:
                    with pytest.raises(PyrocketError) as raised:
                        await producer.send(new_message("AclTopic", b"no"))
                    assert "Check signature failed" in cause(raised.value)
                reader = consumer(ns, "acl_group", "AclTopic", credentials=APP)
                async with reader:
                    bodies = sorted([(await reader.receive()).body for _ in range(5)])
                assert bodies == [f"m{i}".encode() for i in range(5)]
