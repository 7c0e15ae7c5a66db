"""Orderly consumption over real sockets against ``pyrocket up``: queues
locked on the broker, strict order per queue with two consumers of a group
(one holder per queue, order kept across the rebalance when the second
joins), suspend-and-retry then the dead-letter topic, and a lock the broker
no longer grants stopping its queue."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio

from pyrocket.broker.processors import rebalance as broker_rebalance
from pyrocket.client import ConsumeOrderlyStatus, Producer, PushConsumer, new_message, process_queue
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.message import MessageExt
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.client.helpers import consumer, running_up
from tests.client.test_ack import committed
from tests.remoting.helpers import wait_until

TOPIC = "OrderTopic"


async def produce(ns: str, start: int, count: int) -> None:
    async with Producer("order_producers", [ns], client_ip="127.0.0.1") as producer:
        for i in range(start, start + count):
            message = new_message(TOPIC, f"m{i}".encode(), properties={"idx": str(i)})
            await producer.send_orderly(message, i % 4)


def orderly(ns: str, group: str, **options: object) -> PushConsumer:
    return consumer(
        ns, group, TOPIC, orderly=True, rebalance_interval=0.3, lock_interval=0.5, **options
    )


async def test_two_orderly_consumers_keep_each_queue_in_order(tmp_path: Path) -> None:
    # (client, queue id, offset, start, end) of every message handled
    records: list[tuple[str, int, int, float, float]] = []

    def handler_of(name: str):  # type: ignore[no-untyped-def]
        async def handle(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
            began = time.monotonic()
            await trio.sleep(0.01)
            for m in messages:
                records.append((name, m.queue_id, m.queue_offset, began, time.monotonic()))
            return ConsumeOrderlyStatus.SUCCESS

        return handle

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 40)
            first = orderly(ns, "order_group")
            second = orderly(ns, "order_group")
            async with first, trio.open_nursery() as nursery:
                nursery.start_soon(first.consume_orderly, handler_of("a"))
                await wait_until(lambda: len(records) >= 10, 0.02)
                async with second:
                    nursery.start_soon(second.consume_orderly, handler_of("b"))
                    await produce(ns, 40, 40)
                    ours = {q for q in first.assignment | second.assignment if q.topic == TOPIC}

                    def settled() -> bool:
                        a = {q for q in first.assignment if q.topic == TOPIC}
                        b = {q for q in second.assignment if q.topic == TOPIC}
                        return len(a) == len(b) == 2 and not a & b

                    await wait_until(settled, 0.05)
                    ends = {
                        q: running.broker.store.get_max_offset_in_queue(TOPIC, q)
                        for q in running.broker.store.queue_ids(TOPIC)
                    }
                    await wait_until(
                        lambda: (
                            {(r[1], r[2]) for r in records}
                            == {(q, o) for q, end in ends.items() for o in range(end)}
                        ),
                        0.05,
                    )
                    # The broker holds each queue's lock for its reader.
                    info = {**first.running_info().mq_table, **second.running_info().mq_table}
                    assert all(info[q].locked for q in ours)
                    nursery.cancel_scope.cancel()
    assert {r[0] for r in records} == {"a", "b"}
    per_queue: dict[int, list[tuple[str, int, int, float, float]]] = defaultdict(list)
    for r in records:
        per_queue[r[1]].append(r)
    for rs in per_queue.values():
        rs.sort(key=lambda r: r[3])
        for before, after in itertools.pairwise(rs):
            # In order (a message handled twice at a handover at most repeats)...
            assert after[2] >= before[2] or (after[0] != before[0] and after[2] >= before[2] - 1), (
                before,
                after,
            )
            # ...and never by two consumers at once.
            if after[0] != before[0]:
                assert after[3] >= before[4]
        # Each consumer alone sees the queue strictly in order.
        for name in ("a", "b"):
            offsets = [r[2] for r in rs if r[0] == name]
            assert offsets == sorted(set(offsets))


async def test_suspend_retries_then_the_dead_letter_topic(tmp_path: Path) -> None:
    attempts: dict[int, list[int]] = defaultdict(list)
    done: list[int] = []

    def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        (m,) = messages
        idx = int(m.properties["idx"])
        attempts[idx].append(m.reconsume_times)
        if idx == 1:
            return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT
        if idx == 5 and len(attempts[idx]) == 1:
            raise RuntimeError("once")
        done.append(idx)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with recording_namesrv(tmp_path / "ns") as namesrv, AsyncExitStack() as stack:
            ns = namesrv.addr
            levels = "1s 1s 1s 1s 1s 1s"
            settings = broker_settings(
                tmp_path, [ns], messageDelayLevel=levels, autoCreateTopicEnable="true"
            )
            broker = await stack.enter_async_context(running_broker(settings))
            await produce(ns, 0, 12)
            reader = orderly(
                ns, "dlq_group", max_reconsume_times=2, suspend_current_queue_time_millis=100
            )
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume_orderly, handler)
                await wait_until(lambda: len(done) == 11, 0.05)
                store = broker.store
                # Level 3 + 2 reconsumes: a second here, then in the DLQ.
                await wait_until(
                    lambda: store.get_max_offset_in_queue("%DLQ%dlq_group", 0) == 1, 0.05
                )
                nursery.cancel_scope.cancel()
    assert attempts[1] == [0, 1, 2]  # tried, suspended twice, then the DLQ
    assert attempts[5] == [0, 1]
    # Queue 1 holds 1, 5, 9: 5 and 9 came only after 1 was settled.
    assert [i for i in done if i % 4 == 1] == [5, 9]
    assert sorted(done) == [i for i in range(12) if i != 1]


async def test_a_lock_the_broker_refuses_stops_its_queue(tmp_path: Path) -> None:
    seen: list[int] = []

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        seen.extend(int(m.properties["idx"]) for m in messages)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            reader = orderly(ns, "lost_group")
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume_orderly, handler)
                await wait_until(lambda: len(seen) == 8, 0.02)
                # From now on the broker grants no renewal of queue 0: its
                # client id no longer matches the broker's holder.
                service = reader._orderly
                assert service is not None
                real = service.lock_batch

                async def refusing(broker: str, queues: list[MessageQueue]) -> set[MessageQueue]:
                    granted = await real(broker, queues)
                    return {q for q in granted if not (q.topic == TOPIC and q.queue_id == 0)}

                service.lock_batch = refusing  # type: ignore[method-assign]
                queue0 = next(q for q in reader.assignment if q.topic == TOPIC and q.queue_id == 0)
                await wait_until(lambda: not reader.running_info().mq_table[queue0].locked, 0.05)
                await produce(ns, 8, 8)
                await wait_until(lambda: len(seen) == 14, 0.02)
                with trio.move_on_after(1.5):
                    await wait_until(lambda: len(seen) > 14, 0.02)
                nursery.cancel_scope.cancel()
    assert sorted(seen) == [i for i in range(16) if i not in (8, 12)]


async def test_cancelling_an_orderly_consumer_commits_and_unlocks(tmp_path: Path) -> None:
    consumed: list[MessageExt] = []

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        consumed.extend(messages)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 20)
            reader = orderly(ns, "cancel_orderly", persist_interval=3600)
            with trio.CancelScope() as scope:
                async with reader, trio.open_nursery() as nursery:
                    with pytest.raises(RuntimeError):
                        await reader.receive()  # orderly: only the handler form
                    with trio.fail_after(5), pytest.raises(RuntimeError):
                        await reader.consume(lambda messages: None)
                    nursery.start_soon(reader.consume_orderly, handler)
                    await wait_until(lambda: len(consumed) == 20, 0.02)
                    scope.cancel()
            assert scope.cancelled_caught
            store = running.broker.store
            ends = {q: store.get_max_offset_in_queue(TOPIC, q) for q in store.queue_ids(TOPIC)}
            assert committed(running, "cancel_orderly", TOPIC) == ends
            # The locks were given back: a successor holds every queue at once
            # (not after the broker's 60 s expiry).
            successor = orderly(ns, "cancel_orderly")
            async with successor:

                def all_held() -> bool:
                    info = successor.running_info().mq_table
                    mine = [q for q in info if q.topic == TOPIC]
                    return len(mine) == 4 and all(info[q].locked for q in mine)

                with trio.fail_after(5):
                    await wait_until(all_held, 0.05)


async def test_a_queue_given_back_while_its_batch_runs_is_not_consumed_twice(
    tmp_path: Path,
) -> None:
    # Queue 0 is given away while its handler runs, then given back: the
    # batch still running keeps the queue until it ends; no second task
    # consumes queue 0 beside it.
    keep_queue0 = True
    release = trio.Event()
    blocked = trio.Event()
    active: defaultdict[int, int] = defaultdict(int)
    overlaps: list[int] = []

    def allocate(group: str, client: str, queues, clients):  # type: ignore[no-untyped-def]
        return [q for q in queues if keep_queue0 or q.queue_id != 0]

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        queue_id = messages[0].queue_id
        active[queue_id] += 1
        if active[queue_id] > 1:
            overlaps.append(queue_id)
        try:
            if queue_id == 0 and not release.is_set():
                blocked.set()
                await release.wait()
        finally:
            active[queue_id] -= 1
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            reader = consumer(
                ns, "regain_group", TOPIC, orderly=True, rebalance_interval=3600,
                lock_interval=3600, allocate=allocate,
            )  # fmt: skip
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume_orderly, handler)
                await blocked.wait()
                keep_queue0 = False
                await reader.rebalance()
                keep_queue0 = True
                await reader.rebalance()
                await trio.sleep(1.0)
                assert overlaps == []
                release.set()
                await wait_until(lambda: active[0] == 0, 0.02)
                # Once the batch is over the queue is read again.
                await reader.rebalance()
                await wait_until(
                    lambda: any(q.queue_id == 0 for q in reader.assignment if q.topic == TOPIC),
                    0.05,
                )
                nursery.cancel_scope.cancel()
    assert overlaps == []


async def test_a_lock_not_renewed_expires_and_its_queue_waits_for_a_new_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ProcessQueue.isLockExpired: a lock not renewed for the max live time
    # (30 s in Java; 0.5 s here) no longer lets its queue be consumed, even
    # though nothing said it was lost; a successful LOCK_BATCH_MQ resumes it.
    monkeypatch.setattr(process_queue, "REBALANCE_LOCK_MAX_LIVE_TIME", 0.5)
    seen: list[int] = []

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        seen.extend(int(m.properties["idx"]) for m in messages)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            # No periodic renewal: only the consume loop locks again.
            reader = consumer(
                ns, "expiry_group", TOPIC, orderly=True, rebalance_interval=3600,
                lock_interval=3600,
            )  # fmt: skip
            async with reader, trio.open_nursery() as nursery:
                service = reader._orderly
                assert service is not None
                real = service.lock_batch
                reachable = True

                async def lock_batch(broker: str, queues: list[MessageQueue]) -> set[MessageQueue]:
                    if not reachable:
                        raise PyrocketError("broker unreachable")
                    return await real(broker, queues)

                service.lock_batch = lock_batch  # type: ignore[method-assign]
                nursery.start_soon(reader.consume_orderly, handler)
                await wait_until(lambda: len(seen) == 8, 0.02)
                reachable = False
                await trio.sleep(0.7)  # every lock is now expired
                info = reader.running_info().mq_table
                assert all(info[q].locked for q in info if q.topic == TOPIC)  # never "lost"
                await produce(ns, 8, 8)
                await trio.sleep(1.0)
                assert len(seen) == 8  # pulled, but not consumed without a lock
                reachable = True
                await wait_until(lambda: len(seen) == 16, 0.05)
                nursery.cancel_scope.cancel()
    assert sorted(seen) == list(range(16))
    for queue_id in range(4):
        mine = [i for i in seen if i % 4 == queue_id]
        assert mine == sorted(mine)


async def test_a_queue_given_away_keeps_its_lock_renewed_while_its_batch_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker's locks lapse after 1.5 s here (60 s in Java). Queue 0 is
    # given away while its handler runs: the lock is still renewed until the
    # batch ends, so the consumer it went to cannot consume it beside it.
    monkeypatch.setattr(broker_rebalance, "REBALANCE_LOCK_MAX_LIVE_TIME_MS", 1500)
    keep_queue0 = True
    release = trio.Event()
    blocked = trio.Event()
    first_running = False
    overlaps: list[int] = []
    second_seen: list[int] = []

    def allocate_first(group: str, client: str, queues, clients):  # type: ignore[no-untyped-def]
        return [q for q in queues if keep_queue0 or q.queue_id != 0]

    def allocate_second(group: str, client: str, queues, clients):  # type: ignore[no-untyped-def]
        return [q for q in queues if q.queue_id == 0 and not keep_queue0]

    async def first(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        nonlocal first_running
        if messages[0].queue_id == 0 and not release.is_set():
            first_running = True
            blocked.set()
            await release.wait()
            first_running = False
        return ConsumeOrderlyStatus.SUCCESS

    async def second(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        if first_running:
            overlaps.append(messages[0].queue_id)
        second_seen.extend(m.queue_offset for m in messages)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            options: dict[str, object] = {
                "orderly": True, "rebalance_interval": 0.3, "lock_interval": 0.3,
            }  # fmt: skip
            one = consumer(ns, "keep_group", TOPIC, allocate=allocate_first, **options)
            two = consumer(ns, "keep_group", TOPIC, allocate=allocate_second, **options)
            async with one, two, trio.open_nursery() as nursery:
                nursery.start_soon(one.consume_orderly, first)
                nursery.start_soon(two.consume_orderly, second)
                await blocked.wait()
                keep_queue0 = False
                await one.rebalance()
                await trio.sleep(3.0)  # twice the broker's lock lifetime
                assert overlaps == []
                assert second_seen == []
                release.set()
                await wait_until(lambda: len(second_seen) > 0, 0.05)
                nursery.cancel_scope.cancel()
    assert overlaps == []


async def test_closing_gives_back_the_lock_of_a_queue_still_being_released(
    tmp_path: Path,
) -> None:
    # Queue 0 was given away while its handler ran and the consumer closes
    # before the batch ends: its lock is given back on close too, so a
    # later consumer can take it at once (not after the broker's 60 s expiry).
    keep_queue0 = True
    release = trio.Event()
    blocked = trio.Event()

    def allocate(group: str, client: str, queues, clients):  # type: ignore[no-untyped-def]
        return [q for q in queues if keep_queue0 or q.queue_id != 0]

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        if messages[0].queue_id == 0 and not release.is_set():
            blocked.set()
            await release.wait()
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            reader = consumer(
                ns, "close_release_group", TOPIC, orderly=True, rebalance_interval=3600,
                lock_interval=3600, allocate=allocate,
            )  # fmt: skip
            async with trio.open_nursery() as nursery:
                async with reader:
                    nursery.start_soon(reader.consume_orderly, handler)
                    await blocked.wait()
                    keep_queue0 = False
                    await reader.rebalance()
                release.set()
                nursery.cancel_scope.cancel()
            # The broker holds no lock of the closed consumer any more.
            table = running.broker.data_plane.lock_manager._table
            holders = {e.client_id for e in table.get("close_release_group", {}).values()}
            assert reader.instance.client_id not in holders


async def test_a_reset_while_a_batch_runs_does_not_start_a_second_task_on_the_queue(
    tmp_path: Path,
) -> None:
    release = trio.Event()
    blocked = trio.Event()
    active: defaultdict[int, int] = defaultdict(int)
    overlaps: list[int] = []
    seen: list[int] = []

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        queue_id = messages[0].queue_id
        active[queue_id] += 1
        if active[queue_id] > 1:
            overlaps.append(queue_id)
        try:
            if queue_id == 0 and not release.is_set():
                blocked.set()
                await release.wait()
        finally:
            active[queue_id] -= 1
        seen.extend(m.queue_offset for m in messages if m.queue_id == 0)
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            reader = consumer(
                ns, "reset_orderly", TOPIC, orderly=True, rebalance_interval=3600,
                lock_interval=3600,
            )  # fmt: skip
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume_orderly, handler)
                await blocked.wait()
                queue0 = next(q for q in reader.assignment if q.topic == TOPIC and q.queue_id == 0)
                await reader.reset_offset(TOPIC, {queue0: 0})
                await reader.rebalance()
                await trio.sleep(1.0)
                assert overlaps == []
                release.set()
                # Once the batch is over the queue is read again from 0.
                await wait_until(lambda: seen == [0], 0.02)
                await wait_until(
                    lambda: reader._orderly is not None and not reader._orderly._releasing, 0.02
                )
                await reader.rebalance()
                await wait_until(lambda: len(seen) == 3, 0.05)
                nursery.cancel_scope.cancel()
    assert overlaps == []
    assert seen == [0, 0, 1]


async def test_running_info_reports_when_each_orderly_queue_last_consumed(tmp_path: Path) -> None:
    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        return ConsumeOrderlyStatus.SUCCESS

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await produce(ns, 0, 8)
            reader = orderly(ns, "orderly_info")
            async with reader, trio.open_nursery() as nursery:
                await wait_until(lambda: len(reader.assignment) >= 4, 0.05)
                await trio.sleep(0.05)
                before = int(time.time() * 1000)
                nursery.start_soon(reader.consume_orderly, handler)
                ends = {q: running.broker.store.get_max_offset_in_queue(TOPIC, q) for q in range(4)}
                await wait_until(lambda: committed(running, "orderly_info", TOPIC) == ends, 0.05)
                info = reader.running_info().mq_table
                mine = [q for q in info if q.topic == TOPIC]
                assert len(mine) == 4
                assert all(info[q].last_consume_timestamp >= before for q in mine)
                nursery.cancel_scope.cancel()


async def test_a_batch_of_the_old_offsets_does_not_acknowledge_new_messages(
    tmp_path: Path,
) -> None:
    # The broker's queue restarts at 0 while the batch at offset 1 is being
    # consumed: the pull is answered OFFSET_ILLEGAL and the queue is read
    # again from 0. The old batch's end must not count the new message at
    # offset 1 as consumed: every new message is consumed.
    release = trio.Event()
    blocked = trio.Event()
    seen: list[bytes] = []

    async def handler(messages: list[MessageExt]) -> ConsumeOrderlyStatus:
        if messages[0].body == b"old1":
            blocked.set()
            await release.wait()
        seen.extend(m.body for m in messages)
        return ConsumeOrderlyStatus.SUCCESS

    async def send(prefix: str, count: int) -> None:
        async with Producer("reset_producers", [ns], client_ip="127.0.0.1") as producer:
            for i in range(count):
                await producer.send_orderly(new_message(TOPIC, f"{prefix}{i}".encode()), 0)

    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            await send("old", 2)
            reader = orderly(ns, "moved_orderly", broker_suspend_max=0.5)
            async with reader, trio.open_nursery() as nursery:
                nursery.start_soon(reader.consume_orderly, handler)
                await blocked.wait()
                state = next(
                    s for q, s in reader._queues.items() if q.topic == TOPIC and q.queue_id == 0
                )
                running.broker.store.clean_unused_topics([])
                await wait_until(lambda: state.next_offset == 0, 0.02)
                await send("new", 3)
                await wait_until(lambda: state.process.count == 3, 0.02)  # the new ones
                release.set()
                await wait_until(lambda: b"new2" in seen, 0.02)
                nursery.cancel_scope.cancel()
    assert seen == [b"old0", b"old1", b"new0", b"new1", b"new2"]
