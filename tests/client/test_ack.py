"""Per-message outcome for concurrent consumption, over real sockets: only
acknowledged messages advance the committed offset (the smallest
unacknowledged offset), handler outcomes, flow control, redelivery of what
was not acknowledged, and cancellation safety."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.client import ConsumeConcurrentlyStatus, PushConsumer
from pyrocket.client.process_queue import FlowControl, ProcessQueue
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.message import MessageExt
from pyrocket.remoting import Connection
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.client.helpers import consumer, running_up
from tests.client.test_consumer import produce
from tests.remoting.helpers import wait_until

TOPIC = "AckTopic"
CRASH_PROGRAM = Path(__file__).with_name("crash_program.py")
ROOT = Path(__file__).resolve().parents[2]


def message_at(offset: int, body: bytes = b"x") -> MessageExt:
    return MessageExt(topic=TOPIC, body=body, queue_offset=offset)


def test_the_committable_offset_is_the_smallest_unacknowledged() -> None:
    pq = ProcessQueue()
    assert pq.committable() == -1
    batch = [message_at(o, b"ab") for o in range(10, 15)]
    pq.put(batch, after=17)  # 15 and 16 were filtered out on the client
    assert (pq.count, pq.size, pq.max_span()) == (5, 10, 4)
    assert pq.remove([batch[1], batch[3]]) == 10
    assert pq.remove([batch[0]]) == 12
    assert pq.head(2) == [batch[2], batch[4]]
    assert pq.remove([batch[2], batch[4]]) == 17
    assert pq.count == 0 and pq.size == 0
    # A copy of a held message is not the message itself.
    pq.put([message_at(17)], after=18)
    assert not pq.holds(message_at(17))


def test_the_span_is_between_the_unacknowledged_ends() -> None:
    # getMaxSpan / cachedMsgMaxOffset read the largest offset still held,
    # not the largest ever pulled: acknowledged newest messages shrink it.
    pq = ProcessQueue()
    batch = [message_at(o) for o in range(11)]
    pq.put(batch, after=11)
    pq.remove(batch[5:])
    assert (pq.max_span(), pq.max_offset) == (4, 4)
    pq.remove(batch[1:5])
    assert (pq.max_span(), pq.max_offset) == (0, 0)
    pq.remove(batch[:1])
    assert (pq.max_span(), pq.max_offset) == (0, -1)
    # One message stuck at 20 while everything after it was consumed.
    flow = FlowControl(consume_concurrently_max_span=5)
    later = [message_at(o) for o in range(21, 40)]
    pq.put([message_at(20), *later], after=40)
    assert flow.over(pq, orderly=False)
    pq.remove(later)
    assert not flow.over(pq, orderly=False)


def test_flow_control_thresholds() -> None:
    flow = FlowControl(
        pull_threshold_for_queue=3,
        pull_threshold_size_for_queue=1,
        consume_concurrently_max_span=5,
    )
    pq = ProcessQueue()
    pq.put([message_at(0), message_at(1), message_at(2)], after=3)
    assert not flow.over(pq, orderly=False)
    pq.put([message_at(3)], after=4)
    assert flow.over(pq, orderly=False)  # four messages
    pq = ProcessQueue()
    pq.put([message_at(0), message_at(9)], after=10)
    assert flow.over(pq, orderly=False) and not flow.over(pq, orderly=True)  # span 9
    pq = ProcessQueue()
    pq.put([message_at(0, b"x" * (1024 * 1024 + 1))], after=1)
    assert flow.over(pq, orderly=True)  # over 1 MiB


def committed(running: object, group: str, topic: str) -> dict[int, int]:
    broker = running.broker  # type: ignore[attr-defined]
    dp = broker.data_plane
    return {
        q: dp.consumer_offset_manager.query_offset(group, topic, q)
        for q in broker.store.queue_ids(topic)
    }


async def test_only_acknowledged_messages_advance_the_offset(tmp_path: Path) -> None:
    count = 40
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, count, TOPIC)
            first = consumer(ns, "ack_group", TOPIC, auto_ack=False, persist_interval=0.2)
            unacked: dict[int, list[MessageExt]] = defaultdict(list)
            async with trio.open_nursery() as nursery:

                async def run_first(task_status: trio.TaskStatus[None]) -> None:
                    async with first:
                        got = [await first.receive() for _ in range(count)]
                        for m in got:
                            if int(m.properties["idx"]) % 7 == 3:
                                unacked[m.queue_id].append(m)
                            else:
                                assert first.ack(m) == 1
                        assert first.ack(got[0]) == 0 or got[0] in unacked[got[0].queue_id]
                        task_status.started()
                        await trio.sleep_forever()

                await nursery.start(run_first)
                smallest = {q: min(m.queue_offset for m in ms) for q, ms in unacked.items()}
                ends = {
                    q: running.broker.store.get_max_offset_in_queue(TOPIC, q)
                    for q in running.broker.store.queue_ids(TOPIC)
                }
                expected = {q: smallest.get(q, ends[q]) for q in ends}
                # The periodic commit stores the smallest unacknowledged offset.
                await wait_until(lambda: committed(running, "ack_group", TOPIC) == expected, 0.05)
                # Cancelling the consumer's task closes it: the same offsets.
                nursery.cancel_scope.cancel()
            assert committed(running, "ack_group", TOPIC) == expected
            async with consumer(ns, "ack_group", TOPIC, auto_ack=False) as second:
                again: list[MessageExt] = []
                redelivered = sum(ends[q] - smallest[q] for q in smallest)
                while len(again) < redelivered:
                    again.append(await second.receive())
                with trio.move_on_after(0.5):
                    extra = await second.receive()
                    raise AssertionError(f"unexpected {extra}")
    want = {(m.queue_id, m.queue_offset) for ms in unacked.values() for m in ms}
    got_keys = {(m.queue_id, m.queue_offset) for m in again}
    assert want <= got_keys  # every unacknowledged message again
    assert all(m.queue_offset >= smallest[m.queue_id] for m in again)  # nothing before


async def test_handler_outcomes(tmp_path: Path) -> None:
    attempts: dict[int, int] = defaultdict(int)
    done: list[int] = []
    threads: set[str] = set()

    def sync_handler(messages: list[MessageExt]) -> ConsumeConcurrentlyStatus | None:
        threads.add(threading.current_thread().name)
        (message,) = messages
        idx = int(message.properties["idx"])
        attempts[idx] += 1
        if idx == 1 and attempts[idx] == 1:
            return ConsumeConcurrentlyStatus.RECONSUME_LATER
        if idx == 2 and attempts[idx] == 1:
            raise RuntimeError("boom")
        if idx == 3 and attempts[idx] == 1:
            return None
        done.append(idx)
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    with trio.fail_after(40):
        async with recording_namesrv(tmp_path / "ns") as ns:
            levels = "1s 1s 1s 1s 1s"
            settings = broker_settings(
                tmp_path, [ns.addr], messageDelayLevel=levels, autoCreateTopicEnable="true"
            )
            async with running_broker(settings):
                await produce(ns.addr, 6, TOPIC)
                reader = consumer(ns.addr, "handler_group", TOPIC, rebalance_interval=0.5)
                async with reader, trio.open_nursery() as nursery:
                    nursery.start_soon(reader.consume, sync_handler)
                    await wait_until(lambda: len(done) == 6, 0.05)
                    nursery.cancel_scope.cancel()
    assert sorted(done) == list(range(6))
    assert attempts[1] == attempts[2] == attempts[3] == 2
    assert attempts[0] == attempts[4] == attempts[5] == 1
    assert threading.current_thread().name not in threads  # ran in workers


async def test_an_async_handler_runs_concurrently_and_its_batches(tmp_path: Path) -> None:
    running_now = 0
    most = 0
    seen: list[int] = []
    batch_sizes: list[int] = []

    async def handler(messages: list[MessageExt]) -> ConsumeConcurrentlyStatus:
        nonlocal running_now, most
        running_now += 1
        most = max(most, running_now)
        batch_sizes.append(len(messages))
        await trio.sleep(0.05)
        seen.extend(int(m.properties["idx"]) for m in messages)
        running_now -= 1
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 60, TOPIC)
            reader = consumer(
                ns, "async_group", TOPIC, consume_thread_max=3, consume_message_batch_max_size=4
            )
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume, handler)
                await wait_until(lambda: len(seen) == 60, 0.02)
                nursery.cancel_scope.cancel()
            ends = {
                q: running.broker.store.get_max_offset_in_queue(TOPIC, q)
                for q in running.broker.store.queue_ids(TOPIC)
            }
            assert committed(running, "async_group", TOPIC) == ends
    assert sorted(seen) == list(range(60))
    assert most == 3 and max(batch_sizes) <= 4 and max(batch_sizes) > 1


async def test_flow_control_holds_pulls_until_acknowledged(tmp_path: Path) -> None:
    flow = FlowControl(pull_threshold_for_queue=5)
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 80, TOPIC)
            reader = consumer(
                ns, "flow_group", TOPIC, auto_ack=False, pull_batch_size=4, flow_control=flow
            )
            got: list[MessageExt] = []
            async with reader:
                with trio.move_on_after(1.0):
                    while True:
                        got.append(await reader.receive())
                # Each queue stops pulling once over 5 unacknowledged (2 pulls of 4).
                queues = {m.queue_id for m in got}
                assert 0 < len(got) <= 8 * len(queues) and len(queues) <= 4
                for m in got:
                    reader.ack(m)
                rest = [await reader.receive() for _ in range(8)]
    assert len({(m.queue_id, m.queue_offset) for m in got + rest}) == len(got) + 8


async def test_cancelling_never_loses_an_acknowledged_offset(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 30, TOPIC)
            reader: PushConsumer = consumer(
                ns, "cancel_group", TOPIC, auto_ack=False, persist_interval=3600
            )
            acked: list[MessageExt] = []
            with trio.CancelScope() as scope:
                async with reader:
                    while len(acked) < 30:
                        m = await reader.receive()
                        reader.ack(m)
                        acked.append(m)
                        if len(acked) == 30:
                            scope.cancel()
                        await trio.lowlevel.checkpoint()
            assert scope.cancelled_caught
            ends = {
                q: running.broker.store.get_max_offset_in_queue(TOPIC, q)
                for q in running.broker.store.queue_ids(TOPIC)
            }
            assert committed(running, "cancel_group", TOPIC) == ends


async def test_a_killed_consumer_leaves_exactly_the_unacknowledged_to_its_successor(
    tmp_path: Path,
) -> None:
    count = 40
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, count, TOPIC)
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            command = [sys.executable, str(CRASH_PROGRAM), ns, TOPIC, "crash_group", str(count)]
            unacked: set[tuple[int, int]] = set()
            async with trio.open_nursery() as nursery:
                run = functools.partial(
                    trio.run_process, command, stdout=subprocess.PIPE, env=env, check=False
                )
                process: trio.Process = await nursery.start(run)
                assert process.stdout is not None
                buffer = b""
                while b'"ready"' not in buffer:
                    chunk = await process.stdout.receive_some()
                    assert chunk, "the program ended early"
                    buffer += chunk
                for line in buffer.decode().splitlines():
                    item = json.loads(line)
                    if "queue" in item:
                        unacked.add((item["queue"], item["offset"]))
                smallest: dict[int, int] = {}
                for q, o in unacked:
                    smallest[q] = min(smallest.get(q, o), o)
                store = running.broker.store
                ends = {q: store.get_max_offset_in_queue(TOPIC, q) for q in store.queue_ids(TOPIC)}
                expected = {q: smallest.get(q, ends[q]) for q in ends}
                await wait_until(lambda: committed(running, "crash_group", TOPIC) == expected, 0.05)
                process.send_signal(signal.SIGKILL)  # no close: only what was committed
                await process.wait()
            assert process.returncode == -signal.SIGKILL
            assert committed(running, "crash_group", TOPIC) == expected
            async with consumer(ns, "crash_group", TOPIC) as second:
                again: list[MessageExt] = []
                redelivered = sum(ends[q] - smallest[q] for q in smallest)
                while len(again) < redelivered:
                    again.append(await second.receive())
                with trio.move_on_after(0.5):
                    extra = await second.receive()
                    raise AssertionError(f"unexpected {extra}")
    got = {(m.queue_id, m.queue_offset) for m in again}
    assert unacked and unacked <= got
    assert all(m.queue_offset >= smallest[m.queue_id] for m in again)


async def test_a_message_not_taken_back_is_resent_or_consumed_again_here(tmp_path: Path) -> None:
    # The broker refuses CONSUMER_SEND_MSG_BACK: the consumer sends a copy to
    # the retry topic itself (Java's fallback). Once sends are refused too,
    # the message is consumed again here 5 s later, reconsume times + 1.
    refuse_sends = False

    def install(broker: Broker) -> None:
        registration = broker.server.processors.lookup(RequestCode.SEND_MESSAGE_V2)
        assert registration is not None
        original = registration.processor

        async def send(conn: Connection, request: RemotingCommand) -> RemotingCommand | None:
            if refuse_sends:
                return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "sends refused")
            answer = original(conn, request)
            return await answer if inspect.isawaitable(answer) else answer

        def refuse(conn: Connection, request: RemotingCommand) -> RemotingCommand:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "not taken back")

        broker.register_processor(RequestCode.SEND_MESSAGE_V2, send)
        broker.register_processor(RequestCode.CONSUMER_SEND_MSG_BACK, refuse)

    attempts: dict[int, list[tuple[int, float]]] = defaultdict(list)

    async def handler(messages: list[MessageExt]) -> ConsumeConcurrentlyStatus:
        nonlocal refuse_sends
        (m,) = messages
        idx = int(m.properties["idx"])
        attempts[idx].append((m.reconsume_times, trio.current_time()))
        if idx == 1 and len(attempts[1]) == 1:
            return ConsumeConcurrentlyStatus.RECONSUME_LATER
        if idx == 2 and len(attempts[2]) == 1:
            await wait_until(lambda: len(attempts[1]) == 2, 0.02)
            refuse_sends = True
            return ConsumeConcurrentlyStatus.RECONSUME_LATER
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    with trio.fail_after(40):
        async with recording_namesrv(tmp_path / "ns") as ns:
            levels = "1s 1s 1s 1s 1s"
            settings = broker_settings(
                tmp_path, [ns.addr], messageDelayLevel=levels, autoCreateTopicEnable="true"
            )
            async with running_broker(settings, install=[install]):
                await produce(ns.addr, 3, TOPIC)
                reader = consumer(
                    ns.addr, "back_group", TOPIC, rebalance_interval=0.5, consume_thread_max=4
                )
                async with reader, trio.open_nursery() as nursery:
                    nursery.start_soon(reader.consume, handler)
                    await wait_until(lambda: len(attempts[2]) == 2, 0.05)
                    nursery.cancel_scope.cancel()
    # 1 came back through %RETRY%back_group, sent there by the consumer.
    assert [n for n, _ in attempts[1]] == [0, 1]
    # 2 was kept and handed to the handler again after 5 s.
    (first, _), (second, later) = attempts[2][0], attempts[2][1]
    assert (first, second) == (0, 1)
    assert later - attempts[2][0][1] >= 4.9


async def test_a_message_left_unacknowledged_too_long_is_given_back(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with recording_namesrv(tmp_path / "ns") as ns:
            levels = "1s 1s 1s 1s 1s"
            settings = broker_settings(
                tmp_path, [ns.addr], messageDelayLevel=levels, autoCreateTopicEnable="true"
            )
            async with running_broker(settings) as broker:
                await produce(ns.addr, 1, TOPIC)
                reader = consumer(
                    ns.addr,
                    "expiry_group",
                    TOPIC,
                    auto_ack=False,
                    consume_timeout=0.5,
                    rebalance_interval=0.5,
                )
                async with reader:
                    first = await reader.receive()  # and never acknowledged
                    again = await reader.receive()
                    assert reader.ack(again) == 1
                    await reader.commit()
                dp = broker.data_plane
                assert dp is not None
                offset = dp.consumer_offset_manager.query_offset(
                    "expiry_group", TOPIC, first.queue_id
                )
    # cleanExpireMsg gave it back (delay level 3) and took it off the queue.
    assert again.uniq_key == first.uniq_key and again.reconsume_times == 1
    assert offset == first.queue_offset + 1


async def test_an_offset_moved_back_by_the_broker_is_not_committed_past(tmp_path: Path) -> None:
    # The broker's queue restarts at 0 (its messages left the commit log):
    # the pull at the old offset is answered OFFSET_ILLEGAL, the consumer
    # moves back to 0, and once the new messages are consumed the committed
    # offset is where reading stands, not the old queue's end.
    from pyrocket.client import Producer, new_message

    handled: list[int] = []

    async def handler(messages: list[MessageExt]) -> ConsumeConcurrentlyStatus:
        handled.extend(m.queue_offset for m in messages if m.queue_id == 0)
        return ConsumeConcurrentlyStatus.CONSUME_SUCCESS

    async def send(count: int) -> None:
        async with Producer("moved_producers", [ns], client_ip="127.0.0.1") as producer:
            for i in range(count):
                await producer.send_orderly(new_message(TOPIC, f"m{i}".encode()), 0)

    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await send(8)
            reader = consumer(
                ns, "moved_group", TOPIC, persist_interval=3600, broker_suspend_max=1.0
            )
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume, handler)
                await wait_until(lambda: len(handled) == 8, 0.02)
                await reader.commit()
                assert committed(running, "moved_group", TOPIC)[0] == 8
                running.broker.store.clean_unused_topics([])
                await send(3)
                await wait_until(lambda: len(handled) == 11, 0.02)
                await reader.commit()
                assert committed(running, "moved_group", TOPIC)[0] == 3
                nursery.cancel_scope.cancel()
    assert handled == [*range(8), 0, 1, 2]


async def test_a_message_handed_out_again_counts_its_consume_time_from_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Java stamps a message's consume start each time it is handed to the
    # listener: one handed out again after a failed give-back is not
    # "expired" for the time it waited before.
    from pyrocket.client import consume_concurrently
    from pyrocket.errors import PyrocketError

    monkeypatch.setattr(consume_concurrently, "CONSUME_LATER_DELAY", 0.05)
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 1, TOPIC)
            reader = consumer(ns, "restamp_group", TOPIC, auto_ack=False, consume_timeout=3600)
            async with reader:
                first = await reader.receive()
                await trio.sleep(1.0)

                async def unreachable(*args: object) -> None:
                    raise PyrocketError("broker unreachable")

                real = reader._back.send_back
                reader._back.send_back = unreachable  # type: ignore[method-assign]
                assert not await reader.reconsume_later(first)
                again = await reader.receive()
                reader._back.send_back = real  # type: ignore[method-assign]
                assert again.queue_offset == first.queue_offset
                await reader._concurrent.clean_expired(0.8)
                assert reader.ack(again) == 1  # still waiting: not given back
