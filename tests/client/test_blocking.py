"""pyrocket.client.blocking, the blocking API of PyPI's ``rocketmq`` package on
pyrocket's async clients, against a pyrocket NameServer and broker on
loopback.

The same small program (blocking_program.py) runs once with the C++ client
(``rocketmq.client``) and once with ``pyrocket.client.blocking``; both must
deliver the same. The other tests run the blocking API in a worker thread of
the test (the broker stays in the test's trio loop)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.blocking import (
    ConsumeStatus,
    Message,
    MessageModel,
    Producer,
    ProducerStartFailed,
    PushConsumer,
    PushConsumerStartFailed,
    RecvMessage,
    RocketMQException,
    SendStatus,
    TransactionMQProducer,
    TransactionStatus,
)
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.bodies.client import MessageModel as AsyncMessageModel
from tests.client.helpers import running_up

PROGRAM = Path(__file__).with_name("blocking_program.py")
ROOT = Path(__file__).resolve().parents[2]
COUNT = 30

T = TypeVar("T")


async def run_program(home: Path, module: str, namesrv: str, topic: str) -> list[dict[str, Any]]:
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT))
    with trio.fail_after(90):
        result = await trio.run_process(
            [sys.executable, str(PROGRAM), module, namesrv, topic, f"{topic}_group", str(COUNT)],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return [json.loads(line) for line in result.stdout.decode().splitlines() if line.strip()]


def deliveries(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert lines[0] == {"statuses": [0] * COUNT}
    assert lines[-1] == {"done": len(lines) - 2}
    return sorted(
        ({k: v for k, v in item.items() if k != "topic"} for item in lines[1:-1]),
        key=lambda item: int(item["idx"]),
    )


@pytest.mark.interop
async def test_the_same_program_delivers_the_same_with_both_clients(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.fail_after(200):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            cpp = deliveries(await run_program(home, "rocketmq.client", ns, "BlockingCpp"))
            ours = deliveries(await run_program(home, "pyrocket.client.blocking", ns, "BlockingPy"))
    assert [int(item["idx"]) for item in ours] == list(range(COUNT))
    assert len(cpp) == COUNT and ours == cpp
    assert ours[7] == {
        "body": "blocking message 7 " * 3,
        "keys": "KEY7",
        "tags": "Tag1",
        "idx": "7",
        "colour": "green",
        "missing": "",
        "id_set": True,
        "reconsume_times": 0,
    }


async def in_thread(function: Callable[[], T]) -> T:
    """Run blocking ``function`` in a worker thread; the threads it started
    must be gone when it returns. (Trio's idle worker threads are shared by
    every trio loop of the process, the test's broker included, so they do
    not count.)"""

    def run() -> T:
        before = set(threading.enumerate())
        result = function()
        leaked = [
            t.name
            for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("Trio thread")
        ]
        assert leaked == [], leaked
        return result

    with trio.fail_after(60):
        return await trio.to_thread.run_sync(run)


def message(topic: str, body: str, **properties: str) -> Message:
    msg = Message(topic)
    msg.set_body(body)
    msg.set_keys(f"k-{body}")
    for name, value in properties.items():
        msg.set_property(name, value)
    return msg


def consume(
    ns: str,
    group: str,
    topic: str,
    count: int,
    callback: Callable[[RecvMessage], object] | None = None,
    orderly: bool = False,
) -> list[RecvMessage]:
    """Messages of ``topic`` delivered to a blocking consumer until ``count``
    came (and a short quiet time after)."""
    seen: list[RecvMessage] = []
    lock = threading.Lock()

    def on_message(msg: RecvMessage) -> object:
        with lock:
            seen.append(msg)
        return callback(msg) if callback is not None else None

    consumer = PushConsumer(group, orderly=orderly)
    consumer.set_name_server_address(ns)
    consumer.subscribe(topic, on_message)
    consumer.start()
    try:
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        consumer.shutdown()
    return seen


async def test_send_orderly_oneway_and_batch(tmp_path: Path) -> None:
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr

        def program() -> tuple[list[Any], list[RecvMessage]]:
            producer = Producer("blocking_orderly", timeout=5000)
            producer.set_namesrv_addr(ns)
            producer.start()
            results = []
            for i in range(12):
                results.append(
                    producer.send_orderly(message("Ordered", f"o{i}", shard=str(i % 3)), i % 3)
                )
            for i in range(4):
                producer.send_orderly_with_sharding_key(
                    message("Ordered", f"s{i}", shard="s"), "order-1"
                )
            producer.send_oneway(message("Ordered", "oneway", shard="none"))
            producer.send_batch(
                [message("Ordered", "b0", shard="none"), message("Ordered", "b1", shard="none")]
            )
            producer.shutdown()
            return results, consume(ns, "blocking_orderly_group", "Ordered", 19, orderly=True)

        results, seen = await in_thread(program)
    assert all(r.status is SendStatus.OK and r.msg_id for r in results)
    bodies = sorted(m.body.decode() for m in seen)
    want = sorted(
        [f"o{i}" for i in range(12)] + [f"s{i}" for i in range(4)] + ["oneway", "b0", "b1"]
    )
    assert bodies == want
    queues: dict[bytes, set[int]] = {}
    for m in seen:
        queues.setdefault(m.get_property("shard"), set()).add(m.queue_id)
    for shard in (b"0", b"1", b"2", b"s"):
        assert len(queues[shard]) == 1, (shard, queues)
    # arg % queue count picks the queue, as the C++ client's hashing selector
    assert queues[b"1"] == {1} and queues[b"2"] == {2}
    # per shard, the order sent is the order delivered
    for shard in (b"0", b"1", b"2"):
        delivered = [m.body.decode() for m in seen if m.get_property("shard") == shard]
        assert delivered == sorted(delivered, key=lambda b: int(b[1:]))


async def test_transaction_producer_commits_and_rolls_back(tmp_path: Path) -> None:
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr

        def program() -> tuple[list[Any], list[tuple[str, int, object]], list[RecvMessage]]:
            calls: list[tuple[str, int, object]] = []

            def local_execute(msg: RecvMessage, user_args: object) -> TransactionStatus:
                calls.append((msg.body.decode(), threading.get_ident(), user_args))
                if msg.body == b"boom":
                    raise RuntimeError("local failure")
                return (
                    TransactionStatus.COMMIT if msg.body == b"yes" else TransactionStatus.ROLLBACK
                )

            producer = TransactionMQProducer("blocking_tx", lambda msg: TransactionStatus.ROLLBACK)
            producer.set_name_server_address(ns)
            producer.start()
            results = [
                producer.send_message_in_transaction(
                    message("TxBlocking", body), local_execute, body
                )
                for body in ("yes", "no", "boom", "yes")
            ]
            producer.shutdown()
            return results, calls, consume(ns, "blocking_tx_group", "TxBlocking", 2)

        results, calls, seen = await in_thread(program)
    assert [r.status for r in results] == [SendStatus.OK] * 4
    # local_execute ran in the caller's thread, with the message and the user's args
    assert [(body, arg) for body, _, arg in calls] == [
        ("yes", "yes"),
        ("no", "no"),
        ("boom", "boom"),
        ("yes", "yes"),
    ]
    assert len({ident for _, ident, _ in calls}) == 1
    assert sorted(m.body for m in seen) == [b"yes", b"yes"]
    assert {m.id for m in seen} == {results[0].msg_id, results[3].msg_id}


async def test_reconsume_later_gives_the_message_back(tmp_path: Path) -> None:
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr
        # The retry comes back after delay level 3 (10 s, the broker's default).

        def program() -> list[RecvMessage]:
            producer = Producer("blocking_retry")
            producer.set_namesrv_addr(ns)
            producer.start()
            producer.send_sync(message("RetryBlocking", "again"))
            producer.shutdown()

            def callback(msg: RecvMessage) -> ConsumeStatus:
                if msg.reconsume_times == 0:
                    return ConsumeStatus.RECONSUME_LATER
                return ConsumeStatus.CONSUME_SUCCESS

            return consume(ns, "blocking_retry_group", "RetryBlocking", 2, callback)

        seen = await in_thread(program)
    assert [(m.body, m.reconsume_times, m.topic) for m in seen] == [
        (b"again", 0, "RetryBlocking"),
        (b"again", 1, "RetryBlocking"),
    ]


async def test_broadcasting_consumers_each_get_every_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROCKETMQ_CLIENT_LOCAL_OFFSET_STORE_DIR", str(tmp_path / "offsets"))
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr

        def program() -> list[list[bytes]]:
            producer = Producer("blocking_bc_producer")
            producer.set_namesrv_addr(ns)
            producer.start()
            producer.send_sync(message("BroadcastBlocking", "one"))
            producer.shutdown()
            seen: list[list[bytes]] = [[], []]
            consumers = []
            for i in range(2):
                consumer = PushConsumer(
                    "blocking_bc_group", message_model=MessageModel.BROADCASTING
                )
                consumer.options["consume_from"] = ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
                consumer.set_namesrv_addr(ns)
                consumer.subscribe("BroadcastBlocking", lambda m, i=i: seen[i].append(m.body))
                consumer.start()
                consumers.append(consumer)
            deadline = time.monotonic() + 20
            while min(map(len, seen)) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            for consumer in consumers:
                consumer.shutdown()
            return seen

        seen = await in_thread(program)
    assert seen == [[b"one"], [b"one"]]
    assert len(list((tmp_path / "offsets").iterdir())) == 2  # one offsets folder each


async def test_start_and_shutdown_are_idempotent(tmp_path: Path) -> None:
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr

        def program() -> None:
            producer = Producer("blocking_idem")
            producer.shutdown()  # before start: nothing
            producer.set_namesrv_addr(ns)
            producer.start()
            producer.start()
            assert producer.send_sync(message("Idem", "one")).status is SendStatus.OK
            producer.shutdown()
            producer.shutdown()
            producer.start()  # after shutdown: stays down, as the C++ client
            with pytest.raises(RocketMQException):
                producer.send_sync(message("Idem", "two"))
            producer.shutdown()

            unstarted = Producer("blocking_no_ns")
            with pytest.raises(ProducerStartFailed):
                unstarted.start()

        await in_thread(program)


async def test_send_async_calls_back(tmp_path: Path) -> None:
    async with running_up(tmp_path) as running:
        ns = running.namesrv_addr

        def program() -> tuple[list[Any], list[Any], list[RecvMessage]]:
            done = threading.Event()
            results: list[Any] = []
            errors: list[Any] = []

            def on_success(result: Any) -> None:
                results.append(result)
                if len(results) == 5:
                    done.set()

            producer = Producer("blocking_async")
            producer.set_namesrv_addr(ns)
            producer.start()
            for i in range(5):
                producer.send_async(message("AsyncBlocking", f"a{i}"), on_success, errors.append)
            assert done.wait(10)
            producer.shutdown()
            return results, errors, consume(ns, "blocking_async_group", "AsyncBlocking", 5)

        results, errors, seen = await in_thread(program)
    assert errors == []
    assert {r.status for r in results} == {SendStatus.OK}
    assert sorted(m.body for m in seen) == [f"a{i}".encode() for i in range(5)]
    assert {m.id for m in seen} == {r.msg_id for r in results}


def test_settings_reach_the_async_clients() -> None:
    producer = Producer("blocking_settings", timeout=1500, compress_level=7, max_message_size=1024)
    producer.set_namesrv_addr("127.0.0.1:1;127.0.0.1:2")
    producer.set_session_credentials("AK", "SK", "ALIYUN")
    producer.set_instance_name("inst")
    opened = producer._open()
    assert opened.send_timeout == 1.5 and opened.compress_level == 7
    assert opened.max_message_size == 1024
    assert producer._client_options()["credentials"] == SessionCredentials("AK", "SK")
    assert producer._client_options()["instance_name"] == "inst"
    assert producer.namesrv_addresses == ["127.0.0.1:1", "127.0.0.1:2"]
    consumer = PushConsumer("blocking_settings_c")
    consumer.set_namesrv_addr("127.0.0.1:1")
    with pytest.raises(PushConsumerStartFailed):
        consumer.start()  # nothing subscribed
    broadcast = PushConsumer("blocking_broadcast", message_model=MessageModel.BROADCASTING)
    assert broadcast.message_model is AsyncMessageModel.BROADCASTING
    broadcast.set_message_model(MessageModel.CLUSTERING)
    assert broadcast.message_model is AsyncMessageModel.CLUSTERING
