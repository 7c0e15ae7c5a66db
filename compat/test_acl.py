"""ACL against Java RocketMQ 4.7 (skipped without ROCKETMQ_HOME):

- Java's producer and pull consumer with AclClientRPCHook through a pyrocket
  broker with ``aclEnable=true``: the right keys pass; a wrong secret, an
  account the broker does not know and a DENY topic are refused with Java's
  AclException texts.
- pyrocket's producer and consumer with keys through a Java broker with ACL.
- mqadmin's ACL commands (signing with the install's conf/tools.yml, account
  ``rocketmq2``) against a pyrocket broker: updateAclConfig,
  clusterAclConfigVersion, updateGlobalWhiteAddr, getAccessConfigSubCommand,
  deleteAccessConfig, each changing the broker's plain_acl.yml.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import trio
import yaml

from compat.java_cluster import JavaCluster, _java_major, free_port, java_cluster
from compat.test_broker_control import mqadmin, pyrocket_broker, settings, wait_for_route
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.acl.signing import SessionCredentials
from pyrocket.broker.config import BrokerSettings
from pyrocket.client.admin import Admin
from pyrocket.client.producer import Producer, new_message
from pyrocket.protocol.bodies.topic import TopicConfig
from tests.client.helpers import consumer

CLIENT = Path(__file__).with_name("java") / "AclClient.java"
EXC = "org.apache.rocketmq.acl.common.AclException"
ACL_YML = """\
globalWhiteRemoteAddresses: []
accounts:
- accessKey: appaccount
  secretKey: appsecret1
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - AclTopic=PUB|SUB
  - DeniedTopic=DENY
- accessKey: rocketmq2
  secretKey: 12345678
  admin: true
"""
ADMIN = SessionCredentials("rocketmq2", "12345678")


def acl_settings(tmp_path: Path, ns: str, port: int) -> tuple[BrokerSettings, Path]:
    """A pyrocket broker's settings with ACL on, and its plain_acl.yml."""
    home = tmp_path / "pyhome"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL_YML)
    base = settings(tmp_path, ns, port)
    broker = dataclasses.replace(base.broker, acl_enable=True, rocketmq_home=str(home))
    return dataclasses.replace(base, broker=broker), home / "conf" / "plain_acl.yml"


async def run_client(java: JavaCluster, *args: str) -> dict[str, object]:
    result = await trio.to_thread.run_sync(lambda: java.run_class(str(CLIENT), args, timeout=120))
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1]))


async def test_java_clients_with_acl_through_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    if _java_major() < 11:
        pytest.skip("running AclClient.java from source needs Java 11 or newer")
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    config, _ = acl_settings(tmp_path, ns, free_port())
    with trio.fail_after(400):
        async with pyrocket_broker(config) as broker:
            async with Admin([ns], credentials=ADMIN) as admin:
                for topic in ("AclTopic", "DeniedTopic"):
                    await admin.update_topic_on_broker(
                        broker.broker_addr,
                        TopicConfig(topic_name=topic, read_queue_nums=4, write_queue_nums=4),
                    )
            await wait_for_route(java, ns, "DeniedTopic", broker.broker_addr)
            good = ("appaccount", "appsecret1")
            sent = await run_client(java, "produce", ns, "AclTopic", "acl_pg", *good, "20")
            assert sent == {"sent": 20}
            pulled = await run_client(java, "pull", ns, "AclTopic", "acl_cg", *good, "0")
            assert pulled == {"pulled": 20}
            cases = [
                (
                    ("appaccount", "wrongsecret"),
                    "AclTopic",
                    "Check signature failed for accessKey=appaccount",
                ),
                (("nobodyhere", "whatever12"), "AclTopic", "No acl config for nobodyhere"),
                (good, "DeniedTopic", "No default permission for topic:DeniedTopic"),
            ]
            for keys, topic, message in cases:
                refused = await run_client(java, "produce", ns, topic, "acl_pg", *keys, "1")
                assert refused["sent"] == 0
                assert f"{EXC}: {message}" in str(refused["error"])
            assert broker.store.get_max_offset_in_queue("DeniedTopic", 0) == 0


def java_home_with_acl(install: Path, workdir: Path) -> Path:
    """An install directory whose conf/plain_acl.yml is the test's (lib/ linked)."""
    home = workdir / "javahome"
    (home / "conf").mkdir(parents=True)
    (home / "lib").symlink_to(install / "lib")
    for item in (install / "conf").iterdir():
        if item.is_file():
            shutil.copy(item, home / "conf" / item.name)
    (home / "conf" / "plain_acl.yml").write_text(ACL_YML)
    return home


async def test_pyrocket_clients_with_keys_through_a_java_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    home = java_home_with_acl(java.home, tmp_path)
    (tmp_path / "aclcluster").mkdir()
    with java_cluster(home, tmp_path / "aclcluster") as acl_java:
        ns_port, broker_port = free_port(), free_port(2)
        ns = f"127.0.0.1:{ns_port}"
        await trio.to_thread.run_sync(lambda: acl_java.start_namesrv(ns_port))
        await trio.to_thread.run_sync(
            lambda: acl_java.start_broker("javaacl", broker_port, ns, {"aclEnable": "true"})
        )
        app = SessionCredentials("appaccount", "appsecret1")
        with trio.fail_after(300):
            async with Admin([ns], credentials=ADMIN) as admin:
                await admin.update_topic_on_broker(
                    f"127.0.0.1:{broker_port}",
                    TopicConfig(topic_name="AclTopic", read_queue_nums=2, write_queue_nums=2),
                )
            await wait_for_route(acl_java, ns, "AclTopic", f"127.0.0.1:{broker_port}")
            async with Producer("py_acl_pg", [ns], client_ip="127.0.0.1", credentials=app) as p:
                for i in range(10):
                    await p.send(new_message("AclTopic", f"py{i}".encode()))
            wrong = SessionCredentials("appaccount", "wrongsecret")
            async with Producer("py_acl_pg", [ns], client_ip="127.0.0.1", credentials=wrong) as p:
                with pytest.raises(Exception) as raised:
                    await p.send(new_message("AclTopic", b"no"))
            text = repr(raised.value) + repr(raised.value.__cause__ or raised.value.__context__)
            assert "Check signature failed" in text
            reader = consumer(ns, "py_acl_cg", "AclTopic", credentials=app)
            async with reader:
                bodies = sorted([(await reader.receive()).body for _ in range(10)])
            assert bodies == sorted(f"py{i}".encode() for i in range(10))


async def test_mqadmin_acl_commands_against_a_pyrocket_broker(
    java: JavaCluster, tmp_path: Path
) -> None:
    ns_port = free_port()
    await start_java_namesrv(java, ns_port)
    ns = f"127.0.0.1:{ns_port}"
    config, path = acl_settings(tmp_path, ns, free_port())
    with trio.fail_after(400):
        async with pyrocket_broker(config) as broker:
            addr = broker.broker_addr
            out = await mqadmin(
                java,
                "updateAclConfig",
                "-n",
                ns,
                "-b",
                addr,
                "-a",
                "mqadminmade",
                "-s",
                "mqadminsecret",
                "-t",
                "TopicX=PUB,TopicY=SUB",
                "-i",
                "DENY",
            )
            assert f"create or update plain access config to {addr} success." in out
            account = yaml.safe_load(path.read_text())["accounts"][-1]
            assert account["accessKey"] == "mqadminmade"
            assert account["topicPerms"] == ["TopicX=PUB", "TopicY=SUB"]
            out = await mqadmin(java, "clusterAclConfigVersion", "-n", ns, "-b", addr)
            assert "get broker's plain access config version success." in out
            assert addr in out
            out = await mqadmin(
                java, "updateGlobalWhiteAddr", "-n", ns, "-b", addr, "-g", "10.0.0.*,10.0.1.*"
            )
            assert f"update global white remote addresses to {addr} success." in out
            document = yaml.safe_load(path.read_text())
            assert document["globalWhiteRemoteAddresses"] == ["10.0.0.*", "10.0.1.*"]
            out = await mqadmin(java, "getAccessConfigSubCommand", "-n", ns, "-b", addr)
            assert "mqadminmade" in out and "10.0.0.*" in out
            out = await mqadmin(
                java, "deleteAccessConfig", "-n", ns, "-b", addr, "-a", "mqadminmade"
            )
            assert f"delete plain access config account to {addr} success." in out
            keys = [a["accessKey"] for a in yaml.safe_load(path.read_text())["accounts"]]
            assert "mqadminmade" not in keys
            assert yaml.safe_load(path.read_text())["dataVersion"][0]["counter"] == 3
