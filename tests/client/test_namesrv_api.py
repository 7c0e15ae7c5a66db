"""NameServerAPI against a pyrocket NameServer over a real socket: one request
code after another, each answer decoded."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client.namesrv_api import BrokerIdentity, NameServerAPI
from pyrocket.errors import ResponseError
from pyrocket.protocol.bodies import DataVersion, TopicConfig
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import RemotingClient
from tests.namesrv.helpers import address, running_namesrv

MASTER = BrokerIdentity("DefaultCluster", "127.0.0.1:10911", "broker-a", 0, "127.0.0.1:10912")
SLAVE = BrokerIdentity("DefaultCluster", "127.0.0.1:10921", "broker-a", 1, "127.0.0.1:10922")
OTHER = BrokerIdentity("SecondCluster", "127.0.0.1:10941", "broker-c", 0, "127.0.0.1:10941")


async def test_every_namesrv_request_through_the_api(tmp_path: Path) -> None:
    unit = TopicConfig("UnitTopic", 2, 2, topic_sys_flag=1)
    version = DataVersion(1_600_000_000_000, 3)
    with trio.fail_after(20):
        async with running_namesrv(tmp_path) as server, RemotingClient() as client:
            addr = address(server)
            client.update_namesrv_addresses([addr])
            api = NameServerAPI(client)

            result = await api.register_broker(MASTER, [TopicConfig("T1", 8, 8)], version)
            assert (result.ha_server_addr, result.master_addr, result.kv_table) == (
                None,
                None,
                None,
            )
            result = await api.register_broker(SLAVE, [], version, compressed=True)
            assert result.master_addr == MASTER.broker_addr
            assert result.ha_server_addr == MASTER.ha_server_addr
            await api.register_broker(
                OTHER, [unit, TopicConfig("T1", 4, 4)], filter_servers=["f:1"]
            )

            assert await api.query_data_version(MASTER, version) == (False, version)
            changed, known = await api.query_data_version(MASTER, DataVersion(1, 1))
            assert changed and known == version

            route = await api.get_route_info("T1")
            assert {b.broker_name for b in route.broker_datas or ()} == {"broker-a", "broker-c"}
            assert route.filter_server_table == {"127.0.0.1:10941": ("f:1",)}
            info = await api.get_cluster_info()
            assert info.cluster_addr_table == {
                "DefaultCluster": ("broker-a",),
                "SecondCluster": ("broker-c",),
            }
            assert set((await api.get_all_topic_list()).topic_list) == {"T1", "UnitTopic"}
            assert set((await api.get_topics_by_cluster("SecondCluster")).topic_list) == {
                "T1",
                "UnitTopic",
            }
            system = await api.get_system_topic_list()
            assert set(system.topic_list) == {
                "DefaultCluster",
                "SecondCluster",
                "broker-a",
                "broker-c",
            }
            assert (await api.get_unit_topic_list()).topic_list == ("UnitTopic",)
            assert (await api.get_has_unit_sub_topic_list()).topic_list == ()
            assert (await api.get_has_unit_sub_ununit_topic_list()).topic_list == ()

            await api.put_kv_config("NS", "k", "v")
            assert await api.get_kv_config("NS", "k") == "v"
            assert await api.get_kv_list_by_namespace("NS") == {"k": "v"}
            await api.delete_kv_config("NS", "k")
            with pytest.raises(ResponseError) as caught:
                await api.get_kv_config("NS", "k")
            assert caught.value.code == ResponseCode.QUERY_NOT_FOUND
            assert caught.value.remark == "No config item, Namespace: NS Key: k"
            with pytest.raises(ResponseError) as caught:
                await api.get_kv_list_by_namespace("NOPE")
            assert caught.value.remark == "No config item, Namespace: NOPE"

            assert await api.wipe_write_perm_of_broker("broker-c") == 2
            route = await api.get_route_info("UnitTopic")
            assert [q.perm for q in route.queue_datas or ()] == [4]
            await api.delete_topic_in_namesrv("UnitTopic")
            with pytest.raises(ResponseError) as caught:
                await api.get_route_info("UnitTopic")
            assert caught.value.code == ResponseCode.TOPIC_NOT_EXIST

            config = await api.get_namesrv_config()
            assert config["orderMessageEnable"] == "false"
            await api.update_namesrv_config({"orderMessageEnable": "true"})
            assert (await api.get_namesrv_config(addr))["orderMessageEnable"] == "true"
            with pytest.raises(ResponseError) as caught:
                await api.update_namesrv_config({"listenPort": "1"})
            assert caught.value.code == ResponseCode.SYSTEM_ERROR

            await api.unregister_broker(OTHER)
            await api.unregister_broker(SLAVE)
            await api.unregister_broker(MASTER)
            assert (await api.get_cluster_info()).cluster_addr_table == {}
            assert (await api.get_all_topic_list()).topic_list == ()
