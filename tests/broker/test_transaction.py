"""Transactional messages over real sockets: a pyrocket NameServer and
broker, pyrocket's TransactionProducer and PushConsumer. Commit, rollback,
"unknown" answered by a check, a producer that goes away before answering,
the discard after ``transactionCheckMax`` and RESUME_CHECK_HALF_MESSAGE, a
broker restart with open transactions, and the END_TRANSACTION refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel

from pyrocket.broker.app import Broker
from pyrocket.broker.topic_config import (
    RMQ_SYS_TRANS_HALF_TOPIC,
    RMQ_SYS_TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
)
from pyrocket.broker.transaction import TRANSACTION_GROUP
from pyrocket.client import ClientError, LocalTransactionState, TransactionProducer, new_message
from pyrocket.client.consumer import PushConsumer
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    EndTransactionRequestHeader,
    ResumeCheckHalfMessageRequestHeader,
)
from pyrocket.protocol.message import MessageExt, MessageSysFlag, decode_message
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.remoting.helpers import wait_until

COMMIT = LocalTransactionState.COMMIT_MESSAGE
ROLLBACK = LocalTransactionState.ROLLBACK_MESSAGE
UNKNOW = LocalTransactionState.UNKNOW
TOPIC = "TxTopic"
GROUP = "tx_producers"
#: Checks every 250 ms of transactions open for 50 ms (the interval leaves
#: a check's answer ample time to land before the next round looks again).
FAST_CHECKS = {"transactionCheckInterval": 250, "transactionTimeOut": 50}


@asynccontextmanager
async def cluster(root: Path, **extra: Any) -> AsyncIterator[tuple[str, Broker]]:
    async with recording_namesrv(root / "ns") as ns:
        settings = broker_settings(root, [ns.addr], autoCreateTopicEnable="true", **extra)
        async with running_broker(settings) as broker:
            yield ns.addr, broker


def producer(
    namesrv: str,
    execute: Callable[..., Any],
    check: Callable[..., Any],
    group: str = GROUP,
) -> TransactionProducer:
    return TransactionProducer(
        group,
        [namesrv],
        client_ip="127.0.0.1",
        execute_local=execute,
        check_local=check,
        heartbeat_interval=0.1,
        poll_name_server_interval=0.1,
    )


def consumer(namesrv: str, group: str = "tx_consumers") -> PushConsumer:
    result = PushConsumer(
        group,
        [namesrv],
        client_ip="127.0.0.1",
        consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
        rebalance_interval=0.2,
        poll_name_server_interval=0.2,
    )
    result.subscribe(TOPIC, "*")
    return result


def by_body(message: Any, arg: object) -> LocalTransactionState | None:
    """A local transaction whose outcome is its body's first word."""
    word = message.body.split(b"-")[0]
    return {b"commit": COMMIT, b"rollback": ROLLBACK}.get(word, UNKNOW)


async def receive_until(consumer: PushConsumer, *wanted: bytes) -> list[bytes]:
    """Bodies consumed (queues interleave in any order) until each of
    ``wanted`` arrived, sorted."""
    bodies: list[bytes] = []
    while not set(wanted) <= set(bodies):
        bodies.append((await consumer.receive()).body)
    return sorted(bodies)


def queue_records(broker: Broker, topic: str) -> list[MessageExt]:
    store = broker.store
    found: list[MessageExt] = []
    for queue_id in store.queue_ids(topic):
        queue = store.consume_queue(topic, queue_id)
        assert queue is not None
        for offset in range(store.get_max_offset_in_queue(topic, queue_id)):
            entry = queue.entry(offset)
            assert entry is not None
            message = store.look_message_by_offset(entry[0], entry[1])
            assert message is not None
            found.append(message)
    return found


async def test_commit_is_delivered_and_rollback_never(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with cluster(tmp_path) as (namesrv, broker):
            async with producer(namesrv, by_body, lambda m: UNKNOW) as tx:
                first = await tx.send_in_transaction(new_message(TOPIC, b"commit-1"), "arg")
                rolled = await tx.send_in_transaction(new_message(TOPIC, b"rollback-1"))
                assert first.local_transaction_state is COMMIT
                assert rolled.local_transaction_state is ROLLBACK
                async with consumer(namesrv) as reader:
                    last = await tx.send_in_transaction(new_message(TOPIC, b"commit-2"))
                    assert last.local_transaction_state is COMMIT
                    bodies = await receive_until(reader, b"commit-1", b"commit-2")
            assert bodies == [b"commit-1", b"commit-2"]
            halves = queue_records(broker, RMQ_SYS_TRANS_HALF_TOPIC)
            assert [h.body for h in halves] == [b"commit-1", b"rollback-1", b"commit-2"]
            assert all(h.properties["REAL_TOPIC"] == TOPIC for h in halves)
            assert all(h.properties["PGROUP"] == GROUP for h in halves)
            assert {h.sys_flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE for h in halves} == {0}
            await wait_until(lambda: len(queue_records(broker, RMQ_SYS_TRANS_OP_HALF_TOPIC)) == 3)
            ops = queue_records(broker, RMQ_SYS_TRANS_OP_HALF_TOPIC)
            assert sorted(op.body for op in ops) == [b"0", b"1", b"2"]
            assert {op.tags for op in ops} == {"d"}
            committed = queue_records(broker, TOPIC)
            assert sorted(m.body for m in committed) == [b"commit-1", b"commit-2"]
            for message in committed:
                assert (
                    message.sys_flag & MessageSysFlag.TRANSACTION_ROLLBACK_TYPE
                    == MessageSysFlag.TRANSACTION_COMMIT_TYPE
                )
                half = next(h for h in halves if h.body == message.body)
                assert message.prepared_transaction_offset == half.commit_log_offset
                assert message.queue_id == int(half.properties["REAL_QID"])
                # Java drops these from the map only: the stored string keeps them.
                assert message.properties["TRAN_MSG"] == "true"
                assert message.properties["UNIQ_KEY"] == half.properties["UNIQ_KEY"]


async def test_unknown_is_settled_by_the_check(tmp_path: Path) -> None:
    checked: list[MessageExt] = []

    async def check(message: MessageExt) -> LocalTransactionState:
        checked.append(message)
        await trio.lowlevel.checkpoint()
        return COMMIT if message.body == b"later-commit" else ROLLBACK

    with trio.fail_after(30):
        async with cluster(tmp_path, **FAST_CHECKS) as (namesrv, broker):
            async with producer(namesrv, lambda m, a: UNKNOW, check) as tx:
                await tx.send_in_transaction(new_message(TOPIC, b"later-commit"))
                await tx.send_in_transaction(new_message(TOPIC, b"later-rollback"))
                async with consumer(namesrv) as reader:
                    assert await receive_until(reader, b"later-commit") == [b"later-commit"]
                    await wait_until(lambda: len(checked) >= 2)
                    plane = broker.data_plane
                    assert plane is not None
                    rounds = plane.transactions.rounds
                    await wait_until(lambda: plane.transactions.rounds >= rounds + 3)
                    with trio.move_on_after(0.3):
                        extra = await reader.receive()
                        raise AssertionError(f"{extra.body!r} was delivered")
            assert sorted(m.body for m in checked) == [b"later-commit", b"later-rollback"]
            for message in checked:
                assert message.topic == TOPIC
                assert message.properties["TRANSACTION_CHECK_TIMES"] == "1"
            assert [m.body for m in queue_records(broker, TOPIC)] == [b"later-commit"]
            plane = broker.data_plane
            assert plane is not None
            offsets = plane.consumer_offset_manager
            # Both half messages were put back once for the check, and all
            # four are behind the check's progress; both ends are ops.
            assert offsets.query_offset(TRANSACTION_GROUP, RMQ_SYS_TRANS_HALF_TOPIC, 0) == 4
            assert offsets.query_offset(TRANSACTION_GROUP, RMQ_SYS_TRANS_OP_HALF_TOPIC, 0) == 2


async def test_a_producer_gone_before_answering_is_replaced(tmp_path: Path) -> None:
    asked_first = trio.Event()
    answered_by: list[str] = []

    async def hang(message: MessageExt) -> LocalTransactionState:
        asked_first.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    def commit(message: MessageExt) -> LocalTransactionState:
        answered_by.append("second")
        return COMMIT

    with trio.fail_after(30):
        async with cluster(tmp_path, **FAST_CHECKS) as (namesrv, _broker):
            async with producer(namesrv, lambda m, a: UNKNOW, hang) as first:
                await first.send_in_transaction(new_message(TOPIC, b"orphan"))
                await asked_first.wait()
            async with producer(namesrv, by_body, commit) as second:
                await second.send_in_transaction(new_message(TOPIC, b"commit-route"))
                async with consumer(namesrv) as reader:
                    seen = await receive_until(reader, b"orphan", b"commit-route")
            assert seen == [b"commit-route", b"orphan"]
            assert answered_by and set(answered_by) == {"second"}


async def test_discarded_after_the_maximum_and_resumed(tmp_path: Path) -> None:
    checks: list[str] = []
    resumed: list[bool] = []

    def check(message: MessageExt) -> LocalTransactionState:
        checks.append(message.properties["TRANSACTION_CHECK_TIMES"])
        return COMMIT if resumed else UNKNOW

    with trio.fail_after(30):
        async with cluster(tmp_path, transactionCheckMax=2, **FAST_CHECKS) as (namesrv, broker):
            store = broker.store
            async with producer(namesrv, lambda m, a: UNKNOW, check) as tx:
                await tx.send_in_transaction(new_message(TOPIC, b"stubborn"))
                await wait_until(
                    lambda: store.get_max_offset_in_queue(TRANS_CHECK_MAX_TIME_TOPIC, 0) == 1
                )
                assert checks == ["1", "2"]
                [moved] = queue_records(broker, TRANS_CHECK_MAX_TIME_TOPIC)
                assert moved.body == b"stubborn"
                assert moved.properties["REAL_TOPIC"] == TOPIC
                async with RemotingClient() as client:
                    request = RemotingCommand.request(
                        RequestCode.RESUME_CHECK_HALF_MESSAGE,
                        ResumeCheckHalfMessageRequestHeader(msg_id=moved.msg_id),
                    )
                    resumed.append(True)
                    answer = await client.invoke_sync(broker.broker_addr, request, 3)
                    assert answer.code == ResponseCode.SUCCESS, answer.remark
                    bad = RemotingCommand.request(
                        RequestCode.RESUME_CHECK_HALF_MESSAGE,
                        ResumeCheckHalfMessageRequestHeader(msg_id="not an id"),
                    )
                    refused = await client.invoke_sync(broker.broker_addr, bad, 3)
                    assert refused.code == ResponseCode.SYSTEM_ERROR
                # Checked from scratch again, committed at the first check.
                await wait_until(lambda: len(queue_records(broker, TOPIC)) == 1)
            assert checks[:3] == ["1", "2", "1"]
            assert {m.body for m in queue_records(broker, TOPIC)} == {b"stubborn"}


async def test_open_transactions_survive_a_broker_restart(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with recording_namesrv(tmp_path / "ns") as ns:
            slow = broker_settings(tmp_path, [ns.addr], autoCreateTopicEnable="true")
            async with running_broker(slow) as broker:
                async with producer(ns.addr, lambda m, a: UNKNOW, lambda m: UNKNOW) as tx:
                    for body in (b"open-1", b"open-2"):
                        await tx.send_in_transaction(new_message(TOPIC, body))
                assert len(queue_records(broker, RMQ_SYS_TRANS_HALF_TOPIC)) == 2
                assert queue_records(broker, TOPIC) == []
            fast = broker_settings(tmp_path, [ns.addr], autoCreateTopicEnable="true", **FAST_CHECKS)
            async with running_broker(fast) as broker:
                async with producer(ns.addr, by_body, lambda m: COMMIT) as tx:
                    await tx.send_in_transaction(new_message(TOPIC, b"commit-after"))
                    async with consumer(ns.addr) as reader:
                        seen: set[bytes] = set()
                        while len(seen) < 3:
                            seen.add((await reader.receive()).body)
                assert seen == {b"open-1", b"open-2", b"commit-after"}


async def test_end_transaction_refusals(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with cluster(tmp_path) as (namesrv, broker):
            async with producer(namesrv, lambda m, a: UNKNOW, lambda m: UNKNOW) as tx:
                sent = await tx.send_in_transaction(new_message(TOPIC, b"held"))
                plain = await tx.send(new_message(TOPIC, b"plain"))
            [half] = queue_records(broker, RMQ_SYS_TRANS_HALF_TOPIC)
            [plain_record] = queue_records(broker, TOPIC)
            assert plain_record.body == b"plain" and "PGROUP" not in plain_record.properties

            def end(**changes: Any) -> RemotingCommand:
                fields: dict[str, Any] = {
                    "producer_group": GROUP,
                    "tran_state_table_offset": half.queue_offset,
                    "commit_log_offset": half.commit_log_offset,
                    "commit_or_rollback": MessageSysFlag.TRANSACTION_COMMIT_TYPE,
                    "msg_id": sent.msg_id,
                }
                fields.update(changes)
                return RemotingCommand.request(
                    RequestCode.END_TRANSACTION, EndTransactionRequestHeader(**fields)
                )

            async with RemotingClient() as client:
                cases = [
                    ({"producer_group": "other"}, "The producer group wrong"),
                    ({"tran_state_table_offset": 7}, "The transaction state table offset wrong"),
                    ({"commit_log_offset": 10**9}, "Find prepared transaction message failed"),
                    ({"commit_log_offset": -1}, "Find prepared transaction message failed"),
                    ({"commit_log_offset": 3}, "Find prepared transaction message failed"),
                    # Java: a NullPointerException on the missing PGROUP.
                    (
                        {
                            "commit_log_offset": plain_record.commit_log_offset,
                            "tran_state_table_offset": plain.queue_offset,
                        },
                        "The producer group wrong",
                    ),
                ]
                for changes, remark in cases:
                    answer = await client.invoke_sync(broker.broker_addr, end(**changes), 3)
                    assert (answer.code, answer.remark) == (ResponseCode.SYSTEM_ERROR, remark)
                assert queue_records(broker, TOPIC) == [plain_record]
                answer = await client.invoke_sync(broker.broker_addr, end(), 3)
                assert answer.code == ResponseCode.SUCCESS
            [stored] = [m for m in queue_records(broker, TOPIC) if m != plain_record]
            assert stored.body == b"held"
            record = broker.store.select_one_message_by_offset(stored.commit_log_offset)
            assert record is not None and decode_message(record)[0].topic == TOPIC


async def test_reject_transaction_message_refuses_prepared_sends(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with cluster(tmp_path, rejectTransactionMessage="true") as (namesrv, broker):
            ran: list[bool] = []
            async with producer(namesrv, lambda m, a: ran.append(True), lambda m: UNKNOW) as tx:
                try:
                    await tx.send_in_transaction(new_message(TOPIC, b"refused"))
                except ClientError as exc:
                    causes = []
                    cause: BaseException | None = exc
                    while cause is not None:
                        causes.append(str(cause))
                        cause = cause.__cause__
                    assert any("sending transaction message is forbidden" in c for c in causes)
                else:
                    raise AssertionError("a prepared send was accepted")
            assert ran == []
            assert queue_records(broker, RMQ_SYS_TRANS_HALF_TOPIC) == []


async def test_check_immunity_time_defers_the_first_check(tmp_path: Path) -> None:
    checked: list[tuple[float, MessageExt]] = []

    def check(message: MessageExt) -> LocalTransactionState:
        checked.append((trio.current_time(), message))
        return COMMIT

    with trio.fail_after(30):
        async with cluster(tmp_path, **FAST_CHECKS) as (namesrv, broker):
            async with producer(namesrv, lambda m, a: UNKNOW, check) as tx:
                immune = new_message(
                    TOPIC, b"immune", properties={"CHECK_IMMUNITY_TIME_IN_SECONDS": "1"}
                )
                sent_at = trio.current_time()
                await tx.send_in_transaction(immune)
                await wait_until(lambda: bool(checked))
            [(when, message)] = checked
            # transactionTimeOut is 50 ms; the message's own 1 s wins.
            assert when - sent_at >= 0.9
            # While immune it was stored again (once per round) carrying the
            # first copy's queue offset, then checked like any other.
            assert message.properties["TRAN_PREPARED_QUEUE_OFFSET"] == "0"
            halves = queue_records(broker, RMQ_SYS_TRANS_HALF_TOPIC)
            assert len(halves) >= 3
            assert all(h.body == b"immune" for h in halves)
            await wait_until(lambda: len(queue_records(broker, TOPIC)) == 1)
