"""The KV config store: Java's file layout, restart, damaged files, write errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.errors import ConfigError, ResponseError
from pyrocket.namesrv import NameServer
from pyrocket.namesrv.kvconfig import KVConfigManager
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import GetKVConfigRequestHeader, PutKVConfigRequestHeader
from pyrocket.protocol.javahash import hashmap_order
from pyrocket.remoting import RemotingClient
from tests.namesrv.helpers import address, namesrv_config, running_namesrv


def test_namespaces_and_keys_iterate_in_java_hashmap_order() -> None:
    kv = KVConfigManager()
    keys = [f"key{i}" for i in range(30)]
    for key in keys:
        kv.put_kv_config("NS", key, key.upper())
    kv.put_kv_config("Other", "x", "1")
    body = kv.get_kv_list_by_namespace("NS")
    assert body is not None
    expected = ",".join(f'"{k}":"{k.upper()}"' for k in hashmap_order(keys))
    assert body == ('{"table":{' + expected + "}}").encode()
    assert list(kv.namespaces()) == hashmap_order(["NS", "Other"])
    kv.delete_kv_config("NS", "key3")
    kv.delete_kv_config("NS", "absent")
    kv.delete_kv_config("nowhere", "key1")
    assert kv.get_kv_config("NS", "key3") is None
    assert kv.get_kv_config("NS", "key4") == "KEY4"
    assert kv.get_kv_list_by_namespace("nowhere") is None


def test_an_emptied_namespace_still_lists_as_an_empty_table() -> None:
    kv = KVConfigManager()
    kv.put_kv_config("NS", "k", "v")
    kv.delete_kv_config("NS", "k")
    assert kv.get_kv_list_by_namespace("NS") == b'{"table":{}}'


async def test_the_file_is_javas_kvconfig_json(tmp_path: Path) -> None:
    path = tmp_path / "kvConfig.json"
    kv = KVConfigManager(path)
    kv.put_kv_config("ORDER_TOPIC_CONFIG", "TopicA", "broker-a:4;broker-b:4")
    kv.put_kv_config("NS", "k", 'quote " and \\ backslash')
    await kv.persist()
    assert hashmap_order(["ORDER_TOPIC_CONFIG", "NS"]) == ["ORDER_TOPIC_CONFIG", "NS"]
    assert await trio.Path(path).read_text() == (
        '{"configTable":{"ORDER_TOPIC_CONFIG":{"TopicA":"broker-a:4;broker-b:4"},'
        '"NS":{"k":"quote \\" and \\\\ backslash"}}}'
    )
    again = KVConfigManager(path)
    again.load()
    assert again.namespaces() == kv.namespaces()


def test_a_file_written_by_java_loads_in_javas_order(tmp_path: Path) -> None:
    path = tmp_path / "kvConfig.json"
    keys = [f"k{i}" for i in range(20)]
    inner = ",".join(f'"{k}":"v"' for k in keys)
    path.write_text('{"configTable":{"B":{' + inner + '},"A":{"x":"y"}}}')
    kv = KVConfigManager(path)
    kv.load()
    assert list(kv.namespaces()) == hashmap_order(["B", "A"])
    assert list(kv.namespaces()["B"]) == hashmap_order(keys)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"configTable":{"NS":{"k":1}}}',
        '{"configTable":["NS"]}',
        "[1, 2]",
    ],
)
async def test_a_damaged_file_stops_the_namesrv_and_is_left_alone(
    tmp_path: Path, content: str
) -> None:
    config = namesrv_config(tmp_path)
    path = trio.Path(config.kv_config_path)
    await path.parent.mkdir(parents=True)
    await path.write_text(content)
    with trio.fail_after(10), pytest.raises(ConfigError) as caught:
        await NameServer(config).serve("127.0.0.1", 0)
    assert str(path) in str(caught.value)
    assert "cannot be parsed" in str(caught.value)
    assert await path.read_text() == content


async def test_restart_keeps_the_kv_config(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path)
    with trio.fail_after(20):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            api = NameServerAPI(client)
            addr = address(server)
            for i in range(12):
                await api.put_kv_config("NS_ALPHA", f"k{i}", f"v{i}", addr)
            await api.put_kv_config("ORDER_TOPIC_CONFIG", "TopicA", "broker-a:4", addr)
            await api.delete_kv_config("NS_ALPHA", "k3", addr)
            before = await api.get_kv_list_by_namespace("NS_ALPHA", addr)
        assert await trio.Path(config.kv_config_path).exists()
        assert await trio.Path(config.kv_config_path + ".bak").exists()
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            api = NameServerAPI(client)
            addr = address(server)
            after = await api.get_kv_list_by_namespace("NS_ALPHA", addr)
            assert list(after.items()) == list(before.items())
            assert "k3" not in after
            assert await api.get_kv_config("ORDER_TOPIC_CONFIG", "TopicA", addr) == "broker-a:4"


async def test_a_oneway_put_is_applied_and_saved_without_an_answer(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path)
    with trio.fail_after(10):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            addr = address(server)
            put = RemotingCommand.request(
                RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader("NS", "k", "v"), oneway=True
            )
            await client.invoke_oneway(addr, put)
            get = RemotingCommand.request(
                RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader("NS", "k")
            )
            answer = await client.invoke_sync(addr, get, 5)
            assert answer.code == ResponseCode.SUCCESS
            assert answer.ext_fields == {"value": "v"}
            path = trio.Path(config.kv_config_path)
            while not await path.exists():  # noqa: ASYNC110 (saved by a background task)
                await trio.sleep(0.01)
            assert '"k":"v"' in await path.read_text()


async def test_a_change_that_cannot_be_saved_is_answered_system_error(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path)
    with trio.fail_after(10):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            # The directory of kvConfig.json is a file now: nothing can be written.
            await trio.Path(config.kv_config_path).parent.write_text("")
            api = NameServerAPI(client)
            with pytest.raises(ResponseError) as caught:
                await api.put_kv_config("NS", "k", "v", address(server))
            assert caught.value.code == ResponseCode.SYSTEM_ERROR
            assert caught.value.remark is not None
            assert caught.value.remark.startswith("KV config applied but not saved:")
            # Applied in memory all the same, as the remark says.
            assert await api.get_kv_config("NS", "k", address(server)) == "v"
