"""A slave copying its master's tables (SlaveSynchronize) over real sockets:
a NameServer, a pyrocket master and a pyrocket slave of the same broker
name on 127.0.0.1; the slave learns its master from the registration."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from pyrocket.broker.app import Broker
from pyrocket.broker.slave_sync import SlaveSynchronize, SlaveSyncTiming
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies import SubscriptionGroupConfig
from pyrocket.protocol.bodies.topic import KVTable, TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request
from tests.namesrv.helpers import address as namesrv_address
from tests.namesrv.helpers import running_namesrv
from tests.remoting.helpers import wait_until

FAST_SYNC = SlaveSyncTiming(first_delay=0.05, period=0.1)


@asynccontextmanager
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Broker, Broker]]:
    async with running_namesrv(tmp_path / "ns") as namesrv:
        ns = [namesrv_address(namesrv)]
        async with running_broker(broker_settings(tmp_path / "m", ns)) as master:
            settings = broker_settings(tmp_path / "s", ns, brokerId=1, brokerRole="SLAVE")
            async with running_broker(settings, slave_sync=FAST_SYNC) as slave:
                yield master, slave


async def test_slave_copies_topics_offsets_delay_offsets_and_groups(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with pair(tmp_path) as (master, slave):
            assert master.data_plane is not None and slave.data_plane is not None
            await master.topic_config_manager.update_topic_config(
                TopicConfig(topic_name="SyncTopic", read_queue_nums=3, write_queue_nums=3)
            )
            await master.subscription_group_manager.update_subscription_group_config(
                SubscriptionGroupConfig("SyncGroup", retry_max_times=5)
            )
            master.data_plane.consumer_offset_manager.commit_offset(
                "127.0.0.1", "SyncGroup", "SyncTopic", 2, 42
            )
            master.store.schedule.offset_table[3] = 17
            await wait_until(lambda: slave.registration.master_addr.value == master.broker_addr)
            rounds = slave.slave_sync.rounds
            await wait_until(lambda: slave.slave_sync.rounds >= rounds + 2)

            topic = slave.topic_config_manager.select_topic_config("SyncTopic")
            assert topic is not None and topic.read_queue_nums == 3
            assert (
                slave.topic_config_manager.data_version == master.topic_config_manager.data_version
            )
            assert list(slave.topic_config_manager.topic_config_table) == list(
                master.topic_config_manager.topic_config_table
            )
            group = slave.subscription_group_manager.subscription_group_table.get("SyncGroup")
            assert group is not None and group.retry_max_times == 5
            assert (
                slave.subscription_group_manager.data_version
                == master.subscription_group_manager.data_version
            )
            offsets = slave.data_plane.consumer_offset_manager
            assert offsets.query_offset("SyncGroup", "SyncTopic", 2) == 42

            # Persisted as Java does: the slave's own files hold the copies.
            config = Path(slave.settings.store.store_path_root_dir) / "config"
            topics_file = fastjson.loads((config / "topics.json").read_text())
            assert "SyncTopic" in topics_file["topicConfigTable"]
            groups_file = fastjson.loads((config / "subscriptionGroup.json").read_text())
            assert "SyncGroup" in groups_file["subscriptionGroupTable"]
            offsets_file = fastjson.loads((config / "consumerOffset.json").read_text())
            assert offsets_file["offsetTable"]["SyncTopic@SyncGroup"] == {2: 42}
            delay_file = fastjson.loads((config / "delayOffset.json").read_text())
            assert delay_file["offsetTable"] == {3: 17}

            # A later change on the master follows; a deletion too (the
            # table is replaced when the data version differs).
            await master.topic_config_manager.update_topic_config(
                TopicConfig(topic_name="SyncTopic", read_queue_nums=6, write_queue_nums=6)
            )
            await master.topic_config_manager.delete_topic_config("SyncTopic")
            await master.topic_config_manager.update_topic_config(
                TopicConfig(topic_name="LaterTopic")
            )
            await wait_until(
                lambda: slave.topic_config_manager.select_topic_config("LaterTopic") is not None
            )
            assert slave.topic_config_manager.select_topic_config("SyncTopic") is None


async def test_same_data_version_leaves_the_slave_table_alone(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with pair(tmp_path) as (master, slave):
            await wait_until(lambda: slave.registration.master_addr.value == master.broker_addr)
            rounds = slave.slave_sync.rounds
            await wait_until(lambda: slave.slave_sync.rounds >= rounds + 1)
            # A slave-local topic without a version change survives the next
            # rounds: Java copies only when the versions differ.
            slave.topic_config_manager.topic_config_table["LocalOnly"] = TopicConfig("LocalOnly")
            rounds = slave.slave_sync.rounds
            await wait_until(lambda: slave.slave_sync.rounds >= rounds + 2)
            assert slave.topic_config_manager.select_topic_config("LocalOnly") is not None


async def test_a_master_copies_nothing(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            ns = [namesrv_address(namesrv)]
            settings = broker_settings(tmp_path / "m", ns)
            async with running_broker(settings, slave_sync=FAST_SYNC) as master:
                await trio.sleep(0.3)
                assert master.slave_sync.rounds == 0
                assert master.slave_sync.master() is None


async def runtime_info(addr: str) -> dict[str, str]:
    async with RemotingClient() as client:
        request = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO)
        answer = await client.invoke_sync(addr, request, 5)
    assert answer.code == ResponseCode.SUCCESS, answer.remark
    return dict(KVTable.decode(answer.body or b"{}").table)


async def test_runtime_info_of_master_and_slave(tmp_path: Path, caplog: Any) -> None:
    with trio.fail_after(30):
        async with pair(tmp_path) as (master, slave):
            await master.topic_config_manager.update_topic_config(
                TopicConfig(topic_name="InfoTopic", read_queue_nums=4, write_queue_nums=4)
            )
            async with RemotingClient() as client:
                for n in range(20):
                    request = send_request("InfoTopic", n % 4, b"x" * 512)
                    answer = await client.invoke_sync(master.broker_addr, request, 5)
                    assert answer.code == ResponseCode.SUCCESS, answer.remark
            await wait_until(lambda: slave.store.max_phy_offset == master.store.max_phy_offset)
            await wait_until(lambda: master.ha_service.slave_fall_behind_much() == 0)

            on_master = await runtime_info(master.broker_addr)
            on_slave = await runtime_info(slave.broker_addr)
            # The slave's commit log ends where the master's does: what
            # mqadmin brokerStatus shows of replication (commitLogMaxOffset).
            assert on_master["commitLogMaxOffset"] == str(master.store.max_phy_offset)
            assert on_slave["commitLogMaxOffset"] == on_master["commitLogMaxOffset"]
            # Replicated bytes are no puts: Java counts only sends.
            assert on_master["msgPutTotalTodayNow"] == "20"
            assert on_slave["msgPutTotalTodayNow"] == "0"
            assert on_master["putMessageTimesTotal"] == "20"
            # (Java reports 1 for no put at all.)
            assert on_slave["putMessageTimesTotal"] == "1"
            # Java 4.7.0 adds no HA keys: the same table on both roles.
            assert set(on_slave) == set(on_master)

            caplog.set_level(logging.INFO, "pyrocket.broker.ha")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(master.ha_service.log_fall_behind, 0, 0.01)
                await wait_until(lambda: "Slave fall behind master: 0 bytes" in caplog.text)
                nursery.cancel_scope.cancel()


async def test_a_refusing_master_changes_nothing_and_rounds_go_on(
    tmp_path: Path, caplog: Any
) -> None:
    """A "master" that answers every table request with an error (here a
    NameServer: REQUEST_CODE_NOT_SUPPORTED): each step logs, the slave's
    tables stay as they were, the next round runs."""
    with trio.fail_after(20):
        async with running_namesrv(tmp_path / "ns") as namesrv:
            settings = broker_settings(tmp_path / "s", brokerId=1, brokerRole="SLAVE")
            async with running_broker(settings, timing=None) as slave:
                sync = slave.slave_sync
                before = dict(slave.topic_config_manager.topic_config_table)
                version = slave.topic_config_manager.data_version
                refusing = SlaveSynchronize(
                    sync.client,
                    master_addr=lambda: namesrv_address(namesrv),
                    broker_addr=lambda: slave.broker_addr,
                    topics=slave.topic_config_manager,
                    groups=slave.subscription_group_manager,
                    offsets=lambda: None,
                    delay_offset_path=slave.store.schedule.path,
                )
                caplog.set_level(logging.ERROR, "pyrocket.broker")
                await refusing.sync_all()
                await refusing.sync_all()
                assert refusing.rounds == 2
                assert "sync_topic_config from master" in caplog.text
                assert "sync_subscription_group_config from master" in caplog.text
                assert dict(slave.topic_config_manager.topic_config_table) == before
                assert slave.topic_config_manager.data_version == version
                assert not slave.store.schedule.path.exists()
