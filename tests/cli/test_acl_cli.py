"""``pyrocket admin``, ``produce`` and ``consume`` sign with ACL keys (flags,
environment, tools.yml) against a broker with ``aclEnable=true``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio
import yaml

from tests.broker.helpers import broker_settings, running_broker
from tests.namesrv.helpers import address, running_namesrv

ROOT = Path(__file__).resolve().parents[2]
ACL_YML = """\
accounts:
- accessKey: cliaccount
  secretKey: clisecret1
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - CliAclTopic=PUB|SUB
- accessKey: rocketmq2
  secretKey: 12345678
  admin: true
"""


async def pyrocket(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    for key in ("NAMESRV_ADDR", "ROCKETMQ_ACCESS_KEY", "ROCKETMQ_SECRET_KEY"):
        if key not in env:
            full.pop(key, None)
    result = await trio.run_process(
        [sys.executable, "-m", "pyrocket", "--log-level", "ERROR", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
        env=full,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_commands_sign_with_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL_YML)
    tools = tmp_path / "tools"
    (tools / "conf").mkdir(parents=True)
    (tools / "conf" / "tools.yml").write_text("accessKey: rocketmq2\nsecretKey: 12345678\n")
    with trio.fail_after(90):
        async with running_namesrv(tmp_path) as namesrv:
            ns = address(namesrv)
            settings = broker_settings(tmp_path, [ns], aclEnable="true", rocketmqHome=str(home))
            async with running_broker(settings) as broker:
                addr = broker.broker_addr
                create = ("admin", "updateTopic", "-n", ns, "-b", addr, "-t", "CliAclTopic")
                status, _, err = await pyrocket(*create, env={"ROCKETMQ_HOME": str(tmp_path)})
                assert status == 1 and "No accessKey is configured" in err
                # mqadmin's way: $ROCKETMQ_HOME/conf/tools.yml.
                status, out, err = await pyrocket(*create, env={"ROCKETMQ_HOME": str(tools)})
                assert status == 0, err
                assert broker.topic_config_manager.select_topic_config("CliAclTopic") is not None

                keys = {"ROCKETMQ_ACCESS_KEY": "cliaccount", "ROCKETMQ_SECRET_KEY": "clisecret1"}
                produce = ("produce", "-n", ns, "-t", "CliAclTopic", "one", "two")
                status, out, err = await pyrocket(*produce, env=keys)
                assert status == 0, err
                assert out.count("SEND_OK") == 2
                status, out, err = await pyrocket(
                    *produce, "--acl-access-key", "cliaccount", "--acl-secret-key", "wrong1234",
                    env={},
                )  # fmt: skip
                assert status == 1 and "SEND_OK" not in out
                status, out, err = await pyrocket(
                    "consume", "-n", ns, "-t", "CliAclTopic", "-g", "cli_acl_group",
                    "--from-first", "-c", "2",
                    "--acl-access-key", "cliaccount", "--acl-secret-key", "clisecret1",
                    env={},
                )  # fmt: skip
                assert status == 0, err
                assert "body=one" in out and "body=two" in out


async def test_admin_acl_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    path = home / "conf" / "plain_acl.yml"
    path.write_text("globalWhiteRemoteAddresses: []\n" + ACL_YML)
    keys = {"ROCKETMQ_ACCESS_KEY": "rocketmq2", "ROCKETMQ_SECRET_KEY": "12345678"}
    with trio.fail_after(90):
        async with running_namesrv(tmp_path) as namesrv:
            ns = address(namesrv)
            settings = broker_settings(tmp_path, [ns], aclEnable="true", rocketmqHome=str(home))
            async with running_broker(settings) as broker:
                addr = broker.broker_addr
                status, out, err = await pyrocket(
                    "admin", "updateAclConfig", "-n", ns, "-b", addr, "-a", "madebycli",
                    "-s", "clisecret22", "-t", "T1=PUB,T2=SUB", "-m", "false", env=keys,
                )  # fmt: skip
                assert status == 0, err
                assert out == f"create or update plain access config to {addr} success.\n"
                account = yaml.safe_load(path.read_text())["accounts"][-1]
                assert account["accessKey"] == "madebycli"
                assert account["topicPerms"] == ["T1=PUB", "T2=SUB"]
                status, out, err = await pyrocket(
                    "admin", "updateGlobalWhiteAddr", "-n", ns, "-c", "DefaultCluster",
                    "-g", "10.1.1.*", env=keys,
                )  # fmt: skip
                assert status == 0, err
                assert yaml.safe_load(path.read_text())["globalWhiteRemoteAddresses"] == [
                    "10.1.1.*"
                ]
                status, out, err = await pyrocket(
                    "admin", "clusterAclConfigVersion", "-n", ns, "-b", addr, env=keys
                )
                assert status == 0, err
                row = out.splitlines()[0].split()
                assert row[:4] == ["DefaultCluster", "broker-a", addr, "2"]
                status, out, err = await pyrocket(
                    "admin", "clusterAclConfigVersion", "-n", ns, "-c", "DefaultCluster", env=keys
                )
                assert status == 0, err
                lines = out.splitlines()
                assert lines[0].split()[:2] == ["#Cluster", "Name"]
                assert lines[1].split()[:4] == ["DefaultCluster", "broker-a", addr, "2"]
                assert lines[-1] == "get cluster's plain access config version success."
                status, out, err = await pyrocket(
                    "admin", "getAccessConfigSubCommand", "-n", ns, "-b", addr, env=keys
                )
                assert status == 0, err
                assert "madebycli" in out and "10.1.1.*" in out
                status, out, err = await pyrocket(
                    "admin", "deleteAccessConfig", "-n", ns, "-b", addr, "-a", "madebycli",
                    env=keys,
                )  # fmt: skip
                assert status == 0, err
                keys_left = [a["accessKey"] for a in yaml.safe_load(path.read_text())["accounts"]]
                assert keys_left == ["cliaccount", "rocketmq2"]
                status, out, err = await pyrocket(
                    "admin", "deleteAccessConfig", "-n", ns, "-b", addr, "-a", "cliaccount",
                    env={"ROCKETMQ_ACCESS_KEY": "cliaccount", "ROCKETMQ_SECRET_KEY": "clisecret1"},
                )  # fmt: skip
                assert status == 1 and "Need admin permission" in err
