"""The KV config store: Java's file layout, restart, damaged files, write errors."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc
from pathlib import Path

import pytest
import trio

from pyrocket import persist
from pyrocket.client.namesrv_api import NameServerAPI
from pyrocket.errors import ConfigError, ResponseError
from pyrocket.namesrv import NameServer
from pyrocket.namesrv.kvconfig import KVConfigManager
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import GetKVConfigRequestHeader, PutKVConfigRequestHeader
from pyrocket.protocol.javahash import hashmap_order
from pyrocket.remoting import RemotingClient, ServerConfig
from tests.namesrv.helpers import RawConnection, address, namesrv_config, running_namesrv


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


# ---------------------------------------------------------------------------
# Floods: one writer serves them, memory stays flat, other clients go on.

FLOOD_PUTS = 30_000
FLOOD_KEYS = 100


def put_frame(namespace: str, key: str, value: str, opaque: int, *, oneway: bool) -> bytes:
    request = RemotingCommand.request(
        RequestCode.PUT_KV_CONFIG, PutKVConfigRequestHeader(namespace, key, value), oneway=oneway
    )
    return encode(request.replace(opaque=opaque))


async def read_answers(conn: RawConnection, count: int) -> dict[int, RemotingCommand]:
    answers: dict[int, RemotingCommand] = {}
    while len(answers) < count:
        answer = decode(await conn.receive_frame())
        answers[answer.opaque] = answer
    return answers


async def test_a_flood_of_oneway_puts_keeps_memory_flat_and_others_are_answered(
    tmp_path: Path,
) -> None:
    config = namesrv_config(tmp_path)
    other_puts: list[float] = []
    with trio.fail_after(300):
        async with running_namesrv(config=config) as server, RemotingClient() as client:
            api = NameServerAPI(client)
            addr = address(server)
            assert server.port is not None
            kv = server.state.kv
            assert kv.writer is not None
            flooder = await RawConnection.open(server.port)
            await api.put_kv_config("OTHER", "warm-up", "0", addr)
            flooded = trio.Event()

            async def flood() -> None:
                batch = 500
                for start in range(0, FLOOD_PUTS, batch):
                    await flooder.send(
                        b"".join(
                            put_frame("FLOOD", f"k{i % FLOOD_KEYS}", str(i), i, oneway=True)
                            for i in range(start, start + batch)
                        )
                    )
                # Requests on a connection are handled in order: once this is
                # answered, every oneway PUT before it is applied.
                get = RemotingCommand.request(
                    RequestCode.GET_KV_CONFIG, GetKVConfigRequestHeader("FLOOD", "k0")
                )
                answer = await flooder.call(get, FLOOD_PUTS + 1)
                assert answer.ext_fields == {"value": str(FLOOD_PUTS - FLOOD_KEYS)}
                flooded.set()

            rounds_before = kv.writer.rounds
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flood)
                    number = 0
                    while not flooded.is_set():
                        started = trio.current_time()
                        # Each answer comes within a second or two of rounds;
                        # this generous bound only catches a starved client.
                        with trio.fail_after(10):
                            await api.put_kv_config("OTHER", f"o{number}", "v", addr)
                        other_puts.append(trio.current_time() - started)
                        number += 1
                        await trio.sleep(0.01)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            growth = peak - baseline
            rounds = kv.writer.rounds - rounds_before
            print(
                f"oneway flood of {FLOOD_PUTS} PUT_KV_CONFIG: {rounds} writes, other client's "
                f"PUT max {max(other_puts) * 1000:.0f} ms over {len(other_puts)}, "
                f"traced peak growth {growth / 2**20:.1f} MiB"
            )
            # The flood's changes are parked nowhere: the table is the state.
            assert growth < 16 * 2**20
            assert other_puts
            await kv.persist()
            await flooder.aclose()
        saved = json.loads(await trio.Path(config.kv_config_path).read_text())["configTable"]
        last = range(FLOOD_PUTS - FLOOD_KEYS, FLOOD_PUTS)
        assert saved["FLOOD"] == {f"k{i % FLOOD_KEYS}": str(i) for i in last}
        assert {f"o{n}" for n in range(len(other_puts))} <= set(saved["OTHER"])


async def test_pipelined_puts_are_answered_after_shared_writes(tmp_path: Path) -> None:
    config = namesrv_config(tmp_path)
    count, window = 5_000, 500
    with trio.fail_after(120):
        async with running_namesrv(config=config) as server:
            assert server.port is not None
            kv = server.state.kv
            assert kv.writer is not None
            conn = await RawConnection.open(server.port)
            path = trio.Path(config.kv_config_path)
            rounds_before = kv.writer.rounds
            for start in range(0, count, window):
                opaques = range(start + 1, start + window + 1)
                await conn.send(
                    b"".join(put_frame("P", f"k{o}", str(o), o, oneway=False) for o in opaques)
                )
                answers = await read_answers(conn, window)
                assert {o: a.code for o, a in answers.items()} == dict.fromkeys(
                    opaques, ResponseCode.SUCCESS
                )
                # Every answered change is in the file already.
                saved = json.loads(await path.read_text())["configTable"]["P"]
                assert all(saved[f"k{o}"] == str(o) for o in opaques)
            rounds = kv.writer.rounds - rounds_before
            assert 1 <= rounds <= count // 10
            await conn.aclose()


async def test_puts_beyond_the_in_flight_limit_are_busy_and_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = namesrv_config(tmp_path)
    limit = ServerConfig().max_in_flight_per_connection
    count = limit + 500
    # Writes wait for the test, so that no PUT is answered (and leaves the
    # connection's in-flight count) before every one has arrived.
    release = threading.Event()
    real_write = persist.write_atomically

    def held_write(path: str | os.PathLike[str], data: str | bytes) -> None:
        release.wait(60)
        real_write(path, data)

    monkeypatch.setattr(persist, "write_atomically", held_write)
    try:
        with trio.fail_after(120):
            async with running_namesrv(config=config) as server, RemotingClient() as client:
                assert server.port is not None
                conn = await RawConnection.open(server.port)
                await conn.send(
                    b"".join(put_frame("B", f"k{o}", "v", o, oneway=False) for o in range(count))
                )
                busy = await read_answers(conn, count - limit)
                assert {a.code for a in busy.values()} == {ResponseCode.SYSTEM_BUSY}
                release.set()
                done = await read_answers(conn, limit)
                assert {a.code for a in done.values()} == {ResponseCode.SUCCESS}
                assert set(busy) | set(done) == set(range(count))
                api = NameServerAPI(client)
                applied = await api.get_kv_list_by_namespace("B", address(server))
                # A change is applied exactly when it is answered SUCCESS.
                assert set(applied) == {f"k{o}" for o in done}
                await conn.aclose()
    finally:
        release.set()
