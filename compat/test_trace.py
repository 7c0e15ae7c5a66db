"""Message traces against Java 4.7.0 itself: the trace messages a traced
pyrocket producer and consumer write (Pub, SubBefore, SubAfter) go through
Java's own ``TraceDataEncoder.decoderFromTraceDataString``
(``compat/java/TraceDecode.java``, run in source-file mode against the
install's jars), which must read every field as pyrocket meant it; and a
traced Java producer (``compat/java/TraceProducer.java``) sending through a
pyrocket broker leaves Pub records pyrocket reads and writes back unchanged.

(4.7.0's mqadmin has no trace command; the dashboard reads traces with the
same decoder.) Skipped when ROCKETMQ_HOME is unset.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major
from pyrocket.client.admin import Admin, NoMessageError
from pyrocket.client.producer import Producer, new_message
from pyrocket.client.trace import (
    RMQ_SYS_TRACE_TOPIC,
    TraceContext,
    TraceType,
    decode_traces,
    encode_trace,
)
from pyrocket.protocol.message import MessageExt
from tests.client.helpers import consumer, running_up

DECODER = Path(__file__).with_name("java") / "TraceDecode.java"
PRODUCER = Path(__file__).with_name("java") / "TraceProducer.java"
LONG_MAX = (1 << 63) - 1


def _row(ctx: TraceContext) -> str:
    bean = ctx.beans[0]
    ok = "true" if ctx.success else "false"
    if ctx.trace_type is TraceType.Pub:
        fields: list[object] = [
            "Pub", ctx.timestamp, ctx.region_id, ctx.group_name, bean.topic, bean.msg_id,
            bean.tags, bean.keys, bean.store_host, bean.body_length, ctx.cost_time,
            int(bean.msg_type), bean.offset_msg_id, ok,
        ]  # fmt: skip
    elif ctx.trace_type is TraceType.SubBefore:
        fields = [
            "SubBefore", ctx.timestamp, ctx.region_id, ctx.group_name, ctx.request_id,
            bean.msg_id, bean.retry_times, bean.keys,
        ]  # fmt: skip
    else:
        fields = [
            "SubAfter", ctx.request_id, bean.msg_id, ctx.cost_time, ok, bean.keys,
            ctx.context_code,
        ]  # fmt: skip
    return "\t".join(str(f) for f in fields)


async def _traces(admin: Admin, key: str, want: int) -> list[MessageExt]:
    # Trace messages holding ``key`` once ``want`` records for it arrived.
    while True:
        try:
            found = (await admin.query_message(RMQ_SYS_TRACE_TOPIC, key, 64, 0, LONG_MAX)).messages
        except NoMessageError:
            found = []
        records = [r for m in found for r in decode_traces(m.body.decode()) if key in _keys(r)]
        if len(records) >= want:
            return found
        await trio.sleep(0.05)


def _keys(ctx: TraceContext) -> set[str]:
    return {b.msg_id for b in ctx.beans}


async def _produce_and_consume(tmp_path: Path) -> tuple[list[bytes], list[str]]:
    with trio.fail_after(60):
        async with running_up(tmp_path) as up:
            addr = up.namesrv_addr
            async with Producer("pg_compat", [addr], client_ip="127.0.0.1", enable_trace=True) as p:
                one = await p.send(new_message("TracedT", b"first", tags="TagA", keys="k1 k2"))
                two = await p.send(new_message("TracedT", "zwei \u00e9".encode()))
            c = consumer(addr, "cg_compat", "TracedT", enable_trace=True)
            async with c:
                for _ in range(2):
                    # Given back before asking for more, so not yet finished.
                    got = await c.receive()
                    if got.uniq_key == two.msg_id:
                        await c.reconsume_later(got)
            bodies: dict[str, bytes] = {}
            async with Admin([addr]) as admin:
                for sent in (one, two):
                    for m in await _traces(admin, sent.msg_id, 3):
                        bodies[m.msg_id] = m.body
    return list(bodies.values()), [one.msg_id, two.msg_id]


def test_java_decodes_pyrocket_traces(java: JavaCluster, tmp_path: Path) -> None:
    if _java_major() < 11:
        pytest.skip("running TraceDecode.java from source needs Java 11 or newer")
    bodies, ids = trio.run(_produce_and_consume, tmp_path)
    result = subprocess.run(
        ["java", "-Xmx256m", "-cp", java.classpath, str(DECODER)],
        input="".join(body.hex() + "\n" for body in bodies),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    java_rows = result.stdout.split(".\n")[:-1]
    assert len(java_rows) == len(bodies)
    ours = ["".join(_row(r) + "\n" for r in decode_traces(b.decode())) for b in bodies]
    assert java_rows == ours
    rows = [row.split("\t") for text in java_rows for row in text.splitlines()]
    kinds = sorted((r[0], r[5] if r[0] != "SubAfter" else r[2]) for r in rows)
    for msg_id in ids:
        assert [k for k, i in kinds if i == msg_id] == ["Pub", "SubAfter", "SubBefore"]
    pub = next(r for r in rows if r[0] == "Pub" and r[5] == ids[0])
    assert pub[3:8] == ["pg_compat", "TracedT", ids[0], "TagA", "k1 k2"]
    failed = next(r for r in rows if r[0] == "SubAfter" and r[2] == ids[1])
    assert failed[4] == "false" and failed[6] == "4"


async def _java_traced_sends(java: JavaCluster, tmp_path: Path) -> tuple[list[str], list[str]]:
    with trio.fail_after(120):
        async with running_up(tmp_path) as up:
            args = [up.namesrv_addr, "JavaTraced", "3"]
            result = await trio.to_thread.run_sync(
                lambda: java.run_class(str(PRODUCER), args, timeout=90)
            )
            assert result.returncode == 0, result.stderr[-3000:]
            # The client's log may share its standard output.
            ids = re.findall(r"^[0-9A-F]{32}$", result.stdout, re.MULTILINE)
            texts: dict[str, str] = {}
            async with Admin([up.namesrv_addr]) as admin:
                for msg_id in ids:
                    for m in await _traces(admin, msg_id, 1):
                        texts[m.msg_id] = m.body.decode()
    return ids, list(texts.values())


def test_pyrocket_decodes_java_traces(java: JavaCluster, tmp_path: Path) -> None:
    if _java_major() < 11:
        pytest.skip("running TraceProducer.java from source needs Java 11 or newer")
    ids, texts = trio.run(_java_traced_sends, java, tmp_path)
    assert len(ids) == 3
    records = [r for text in texts for r in decode_traces(text)]
    pubs = {r.beans[0].msg_id: r for r in records if r.trace_type is TraceType.Pub}
    assert set(pubs) == set(ids)
    for i, msg_id in enumerate(ids):
        pub = pubs[msg_id]
        bean = pub.beans[0]
        assert (pub.group_name, pub.region_id, pub.success) == (
            "compat_java_traced",
            "DefaultRegion",
            True,
        )
        assert (bean.topic, bean.tags, bean.keys, bean.body_length) == (
            "JavaTraced",
            "TagJ",
            f"jk{i}",
            len(f"body {i}"),
        )
        assert bean.offset_msg_id != ""
    # pyrocket writes Java's records back byte for byte.
    for text in texts:
        assert "".join(encode_trace(r)[0] for r in decode_traces(text)) == text
