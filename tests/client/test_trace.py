"""Producer traces over real sockets: a traced send leaves a Pub record on
the trace topic, keyed by the message's msgId so QUERY_MESSAGE finds it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from pyrocket.client.admin import Admin, NoMessageError
from pyrocket.client.producer import Producer, SendResult, SendStatus, new_message
from pyrocket.client.trace import (
    RMQ_SYS_TRACE_TOPIC,
    MessageType,
    TraceContext,
    TraceType,
    decode_traces,
)
from pyrocket.client.trace.dispatcher import TraceDispatcher
from pyrocket.client.trace.encoder import TraceBean
from pyrocket.client.trace.hooks import SendTracer
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import consumer, running_up

LONG_MAX = (1 << 63) - 1


async def _find_trace(admin: Admin, topic: str, key: str) -> list[MessageExt]:
    # The index is written as the commit log is dispatched: ask until found.
    while True:
        try:
            return (await admin.query_message(topic, key, 32, 0, LONG_MAX)).messages
        except NoMessageError:
            await trio.sleep(0.05)


async def test_traced_send_leaves_a_pub_record_found_by_msg_id(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as up:
            addr = up.namesrv_addr
            async with Producer("pg_traced", [addr], client_ip="127.0.0.1", enable_trace=True) as p:
                assert p.tracer is not None
                sent = await p.send(new_message("TraceMe", b"hello", tags="TagA", keys="order-1"))
                later = await (await p.send_async(new_message("TraceMe", b"async")))
                dispatcher = p.tracer.dispatcher
            # Closing flushed the records.
            assert dispatcher.sent_messages >= 1 and dispatcher.dropped == 0
            async with Admin([addr]) as admin:
                found = await _find_trace(admin, RMQ_SYS_TRACE_TOPIC, sent.msg_id)
                assert len(found) == 1
                trace = found[0]
                # The async send's record may share this message.
                assert trace.topic == RMQ_SYS_TRACE_TOPIC
                assert set((trace.keys or "").split(" ")) >= {sent.msg_id, "order-1"}
                record = next(
                    r
                    for r in decode_traces(trace.body.decode())
                    if r.beans[0].msg_id == sent.msg_id
                )
                # And by the traced message's own key too.
                by_key = await _find_trace(admin, RMQ_SYS_TRACE_TOPIC, "order-1")
                assert [m.msg_id for m in by_key] == [trace.msg_id]
                # An async send is traced too.
                (async_trace,) = await _find_trace(admin, RMQ_SYS_TRACE_TOPIC, later.msg_id)
                assert any(
                    r.beans[0].msg_id == later.msg_id
                    for r in decode_traces(async_trace.body.decode())
                )
    assert record.trace_type is TraceType.Pub
    assert record.group_name == "pg_traced"
    assert record.region_id == "DefaultRegion"
    assert record.success is True
    assert record.cost_time >= 0
    bean = record.beans[0]
    assert (bean.topic, bean.msg_id, bean.offset_msg_id) == (
        "TraceMe",
        sent.msg_id,
        sent.offset_msg_id,
    )
    assert (bean.tags, bean.keys, bean.body_length) == ("TagA", "order-1", 5)
    assert bean.msg_type is MessageType.Normal_Msg
    assert bean.store_host == up.broker.broker_addr


async def test_custom_trace_topic_and_untraced_producer(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as up:
            addr = up.namesrv_addr
            async with Producer("pg_plain", [addr], client_ip="127.0.0.1") as plain:
                assert plain.tracer is None
                quiet = await plain.send(new_message("TraceMe", b"x"))
            async with Producer(
                "pg_custom", [addr], client_ip="127.0.0.1", enable_trace=True, trace_topic="MyTrace"
            ) as p:
                sent = await p.send(new_message("TraceMe", b"hello", delay_level=1))
            async with Admin([addr]) as admin:
                (trace,) = await _find_trace(admin, "MyTrace", sent.msg_id)
                (record,) = decode_traces(trace.body.decode())
                assert record.beans[0].msg_type is MessageType.Delay_Msg
                assert record.beans[0].keys == "null"
                # Nothing was traced for the plain producer's send.
                try:
                    await admin.query_message("MyTrace", quiet.msg_id, 32, 0, LONG_MAX)
                except NoMessageError:
                    pass
                else:
                    raise AssertionError("an untraced send left a trace")


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []
        self.gate = trio.Event()

    async def __aenter__(self) -> _Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: object) -> object:
        await self.gate.wait()
        assert hasattr(message, "topic")
        self.sent.append((message.topic, message.keys or "", message.body))  # type: ignore[attr-defined]
        return None


def _pub(topic: str, msg_id: str) -> TraceContext:
    return TraceContext(
        TraceType.Pub, 1, "R", "g", beans=[TraceBean(topic=topic, msg_id=msg_id, keys=None)]
    )


async def test_dispatcher_drops_when_full_batches_and_flushes_on_close() -> None:
    recorder = _Recorder()
    dispatcher = TraceDispatcher(lambda: recorder, queue_size=3, max_message_size=10_000)
    with trio.fail_after(10):
        async with dispatcher:
            # The worker takes the first record and waits in send; three more
            # fill the queue; the rest are dropped without waiting.
            assert dispatcher.append(_pub("T1", "ID0"))
            await trio.sleep(0.05)
            accepted = [
                dispatcher.append(_pub("T1" if i % 2 else "T2", f"ID{i}")) for i in range(1, 7)
            ]
            assert accepted == [True, True, True, False, False, False]
            assert dispatcher.dropped == 3
            recorder.gate.set()
    assert dispatcher.sent_messages == len(recorder.sent) == 3
    topics = {t for t, _, _ in recorder.sent}
    assert topics == {RMQ_SYS_TRACE_TOPIC}
    keys = sorted(k for _, k, _ in recorder.sent)
    # ID0 alone; then the batch of ID1..ID3 split by the traced topic.
    assert keys == ["ID0", "ID1 ID3", "ID2"]
    bodies = {k: b for _, k, b in recorder.sent}
    assert bodies["ID1 ID3"].count(b"\x02") == 2


async def test_dispatcher_close_is_bounded_when_sends_hang() -> None:
    recorder = _Recorder()  # never opens its gate
    dispatcher = TraceDispatcher(lambda: recorder, flush_timeout=0.2)
    with trio.fail_after(5):
        async with dispatcher:
            dispatcher.append(_pub("T", "ID"))
    assert dispatcher.sent_messages == 0
    assert not dispatcher.append(_pub("T", "late"))


async def test_traced_consumer_leaves_sub_before_and_sub_after(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with running_up(tmp_path) as up:
            addr = up.namesrv_addr
            async with Producer("pg_plain2", [addr], client_ip="127.0.0.1") as p:
                first = await p.send(new_message("Consumed", b"one", keys="k-one"))
                second = await p.send(new_message("Consumed", b"two!"))
            c = consumer(addr, "cg_traced", "Consumed", enable_trace=True)
            async with c:
                assert c.tracer is not None
                got = []
                for _ in range(2):
                    # Given back before asking for more, so not yet finished.
                    got.append(await c.receive())
                    if got[-1].uniq_key == second.msg_id:
                        await c.reconsume_later(got[-1])
                assert {m.uniq_key for m in got} == {first.msg_id, second.msg_id}
                dispatcher = c.tracer.dispatcher
            assert dispatcher.dropped == 0 and dispatcher.sent_messages >= 1
            async with Admin([addr]) as admin:
                records: list[TraceContext] = []
                for msg_id in (first.msg_id, second.msg_id):
                    while True:
                        found = await _find_trace(admin, RMQ_SYS_TRACE_TOPIC, msg_id)
                        mine = [
                            r
                            for m in found
                            for r in decode_traces(m.body.decode())
                            if r.beans[0].msg_id == msg_id
                        ]
                        if len(mine) == 2:
                            break
                        await trio.sleep(0.05)
                    records += mine
    kinds = {(r.beans[0].msg_id, r.trace_type): r for r in records}
    assert len(kinds) == 4
    b1 = kinds[(first.msg_id, TraceType.SubBefore)]
    a1 = kinds[(first.msg_id, TraceType.SubAfter)]
    a2 = kinds[(second.msg_id, TraceType.SubAfter)]
    assert b1.group_name == "cg_traced" and b1.request_id == a1.request_id != ""
    assert b1.beans[0].keys == "k-one" and b1.beans[0].retry_times == 0
    assert (a1.success, a1.context_code) == (True, 0)
    assert (a2.success, a2.context_code) == (False, 4)
    assert a2.request_id == kinds[(second.msg_id, TraceType.SubBefore)].request_id


def test_send_tracer_skips_what_java_skips() -> None:
    dispatcher = TraceDispatcher(lambda: _Recorder(), "MyTrace")
    tracer = SendTracer("g", dispatcher)
    queue = MessageQueue("T", "b", 0)
    ok = SendResult(SendStatus.SEND_OK, "ID", "OFF", queue, 0, region_id="R")
    message = new_message("T", b"abc", properties={"k": "v"})
    tracer.sent(message, 3, "h:1", ok, 0, {"TRACE_ON": "false"})
    tracer.sent(message, 3, "h:1", dataclasses.replace(ok, region_id=None), 0, {})
    tracer.sent(new_message("MyTraceX", b"t"), 1, "h:1", ok, 0, {})
    assert dispatcher.dropped == 0
    tracer.sent(message, 3, "h:1", ok, 0, {})
    tracer.sent(
        new_message("T", b"half", properties={}),
        4,
        "h:1",
        dataclasses.replace(ok, status=SendStatus.FLUSH_DISK_TIMEOUT),
        0,
        {"TRACE_ON": "true"},
    )
    records = [dispatcher._out.receive_nowait() for _ in range(2)]
    assert [r.success for r in records] == [True, False]
    assert [r.beans[0].body_length for r in records] == [3, 4]
    assert records[0].cost_time > 0  # begun at 0 ms (1970): the wall clock since then


async def test_dispatcher_joins_records_that_come_together() -> None:
    recorder = _Recorder()
    recorder.gate.set()
    dispatcher = TraceDispatcher(lambda: recorder)
    with trio.fail_after(10):
        async with dispatcher:
            for i in range(5):
                assert dispatcher.append(_pub("T", f"ID{i}"))
                await trio.sleep(0.001)
            await trio.sleep(0.2)
            # Then one more, closed while the worker lingers for company.
            dispatcher.append(_pub("T", "last"))
    assert [k for _, k, _ in recorder.sent] == ["ID0 ID1 ID2 ID3 ID4", "last"]
