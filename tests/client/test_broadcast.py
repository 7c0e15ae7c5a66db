"""Broadcasting push consumers over real sockets against ``pyrocket up``:
every client of the group reads every queue and gets every message, the
heartbeat says BROADCASTING, no retry topic is read or written, offsets live
in ``<dir>/<clientId>/<group>/offsets.json`` and a restart under the same
client id resumes from it; and the offset file's read rules (.bak fallback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.client.consumer import PushConsumer
from pyrocket.client.local_offsets import (
    LOCAL_OFFSET_STORE_DIR_ENV,
    LocalOffsetStore,
    read_offset_file,
    store_path,
)
from pyrocket.client.producer import Producer, new_message
from pyrocket.errors import ConfigError
from pyrocket.protocol.bodies.client import ConsumeFromWhere, MessageModel, MessageQueue
from pyrocket.protocol.bodies.offset_file import decode_offset_file, encode_offset_file
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import running_up
from tests.remoting.helpers import wait_until

TOPIC = "BroadcastTopic"
GROUP = "bcast_group"


def broadcaster(ns: str, instance: str, store: Path, **options: object) -> PushConsumer:
    result = PushConsumer(
        GROUP,
        [ns],
        client_ip="127.0.0.1",
        instance_name=instance,
        message_model=MessageModel.BROADCASTING,
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        local_offset_store_dir=str(store),
        **options,  # type: ignore[arg-type]
    )
    result.subscribe(TOPIC)
    return result


async def produce(ns: str, start: int, count: int) -> None:
    async with Producer("bcast_pg", [ns], client_ip="127.0.0.1") as producer:
        for i in range(start, start + count):
            await producer.send(new_message(TOPIC, f"m{i}".encode()))


async def take(source: PushConsumer, count: int) -> list[MessageExt]:
    return [await source.receive() for _ in range(count)]


async def nothing_more(source: PushConsumer) -> None:
    with trio.move_on_after(0.3):
        extra = await source.receive()
        pytest.fail(f"unexpected {extra}")


async def test_every_consumer_gets_every_message_and_resumes_from_its_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "offsets"
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 20)
            broker = running.broker
            queue_ids = broker.store.queue_ids(TOPIC)
            name = broker.settings.broker.broker_name
            every = {MessageQueue(TOPIC, name, q) for q in queue_ids}
            async with (
                broadcaster(ns, "one", store, persist_interval=0.2) as one,
                broadcaster(ns, "two", store) as two,
            ):
                # Each reads every queue, and nothing of a retry topic.
                await wait_until(lambda: one.assignment == every == two.assignment)
                first = await take(one, 20)
                second = await take(two, 20)
                await nothing_more(one)
                plane = broker.data_plane
                assert plane is not None
                info = plane.consumer_manager.get_consumer_group_info(GROUP)
                assert info is not None
                assert info.message_model is MessageModel.BROADCASTING
                assert len(info.channel_info_table) == 2
                # Failure in broadcasting is dropped, not sent back.
                await one.reconsume_later(first[0])
                assert "BROADCASTING" in caplog.text and first[0].msg_id in caplog.text
                # The periodic persist writes one's file while it runs.
                path_one = store_path(store, one.client_id, GROUP)
                await wait_until(lambda: path_one.exists())
            assert broker.store.queue_ids("%RETRY%" + GROUP) == []
            ends = {
                MessageQueue(TOPIC, name, q): broker.store.get_max_offset_in_queue(TOPIC, q)
                for q in queue_ids
            }
            for client_id in (one.client_id, two.client_id):
                path = store_path(store, client_id, GROUP)
                assert decode_offset_file(path.read_text()) == ends
            assert path_one.with_name("offsets.json.bak").exists()
            assert not path_one.with_name("offsets.json.tmp").exists()

            # A restart under the same client id resumes from the file; a
            # new client id starts per consume_from (here the first offset).
            await produce(ns, 20, 5)
            async with (
                broadcaster(ns, "one", store) as again,
                broadcaster(ns, "three", store) as fresh,
            ):
                assert again.client_id == one.client_id
                resumed = await take(again, 5)
                await nothing_more(again)
                everything = await take(fresh, 25)
    bodies = {f"m{i}".encode() for i in range(20)}
    assert {m.body for m in first} == bodies == {m.body for m in second}
    assert {m.body for m in resumed} == {f"m{i}".encode() for i in range(20, 25)}
    assert len({m.body for m in everything}) == 25


def queue(i: int) -> MessageQueue:
    return MessageQueue("T", "broker-a", i)


def test_the_backup_is_read_when_the_file_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "c" / "g" / "offsets.json"
    path.parent.mkdir(parents=True)
    assert read_offset_file(path) == {}
    bak = path.with_name("offsets.json.bak")
    bak.write_text(encode_offset_file({queue(0): 7}))
    for damaged in ("", "{not json", '{"offsetTable":[1]}'):
        path.write_text(damaged)
        assert read_offset_file(path) == {queue(0): 7}
    path.write_text(encode_offset_file({queue(0): 9, queue(1): 3}))
    assert read_offset_file(path) == {queue(0): 9, queue(1): 3}
    path.write_text("garbage")
    bak.write_text("garbage too")
    with pytest.raises(ConfigError, match=r"offsets\.json\.bak"):
        read_offset_file(path)


async def test_persist_keeps_the_previous_content_as_backup(tmp_path: Path) -> None:
    path = store_path(tmp_path, "127.0.0.1@x", "g")
    store = LocalOffsetStore(path)
    await store.load()
    await store.persist([])  # nothing assigned: nothing written
    assert not path.exists()
    store.update(queue(0), 4)
    store.update(queue(1), 2)
    await store.persist([queue(0), queue(1)])
    first = path.read_text()
    store.update(queue(0), 6)
    await store.persist([queue(0)])  # only the assigned queues are written
    assert decode_offset_file(path.read_text()) == {queue(0): 6}
    assert path.with_name("offsets.json.bak").read_text() == first
    reloaded = LocalOffsetStore(path)
    await reloaded.load()
    assert reloaded.read(queue(0)) == 6
    assert reloaded.read(queue(1)) is None


def test_the_store_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOCAL_OFFSET_STORE_DIR_ENV, str(tmp_path / "env"))
    assert (
        store_path(None, "1.2.3.4@9", "g") == tmp_path / "env" / "1.2.3.4@9" / "g" / "offsets.json"
    )
    assert store_path(tmp_path / "arg", "c", "g") == tmp_path / "arg" / "c" / "g" / "offsets.json"
    monkeypatch.delenv(LOCAL_OFFSET_STORE_DIR_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        store_path(None, "c", "g")
        == tmp_path / "home" / ".rocketmq_offsets" / "c" / "g" / "offsets.json"
    )


async def test_a_cancelled_broadcaster_still_writes_its_offsets(tmp_path: Path) -> None:
    store = tmp_path / "offsets"
    with trio.fail_after(30):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 5)
            with trio.CancelScope() as scope:
                async with broadcaster(ns, "cancelled", store) as reader:
                    await take(reader, 5)
                    scope.cancel()  # before any periodic persist (every 5 s)
                    await trio.sleep_forever()
            path = store_path(store, reader.client_id, GROUP)
            ends = {
                MessageQueue(TOPIC, running.broker.settings.broker.broker_name, q): (
                    running.broker.store.get_max_offset_in_queue(TOPIC, q)
                )
                for q in running.broker.store.queue_ids(TOPIC)
            }
    assert decode_offset_file(path.read_text()) == ends
