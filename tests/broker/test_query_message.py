"""QUERY_MESSAGE over a socket (by key, by unique key, time range, maxNum,
QUERY_NOT_FOUND), the admin's multi-broker merge, and the pyrocket admin
commands queryMsgByKey / queryMsgByUniqueKey / queryMsgById."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from pyrocket.broker.config import BrokerSettings
from pyrocket.client.admin import Admin, NoMessageError
from pyrocket.client.broker_api import BrokerAPI
from pyrocket.client.producer import Producer, SendResult, new_message
from pyrocket.errors import PyrocketError
from pyrocket.protocol.bodies.topic import TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import QueryMessageRequestHeader, QueryMessageResponseHeader
from pyrocket.protocol.message import decode_messages, decode_offset_message_id
from pyrocket.remoting import ClientConfig, RemotingClient
from tests.broker.helpers import broker_settings, running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.cli.test_broker_cli import cli

TOPIC = "IndexTopic"
LONG_MAX = 2**63 - 1


def _settings(root: Path, namesrv: str, name: str = "broker-a", **extra: object) -> BrokerSettings:
    return broker_settings(
        root / name,
        [namesrv],
        brokerName=name,
        maxIndexNum=5000,
        maxHashSlotNum=500,
        **extra,
    )


async def _create_topic(admin: Admin, addr: str) -> None:
    await admin.update_topic_on_broker(addr, TopicConfig(TOPIC, 2, 2))


async def _wait_route(admin: Admin, brokers: int) -> None:
    while True:
        try:
            route = await admin.topic_route(TOPIC)
            if len(route.broker_datas or []) >= brokers:
                return
        except PyrocketError:
            pass  # not registered yet
        await trio.sleep(0.05)


async def _send(namesrv: str, count: int, keys: str) -> list[SendResult]:
    async with Producer("pg", [namesrv], client_ip="127.0.0.1") as producer:
        return [
            await producer.send(new_message(TOPIC, b"body-%d" % n, tags="T", keys=keys))
            for n in range(count)
        ]


async def test_query_message_on_the_wire(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(_settings(tmp_path, ns.addr, defaultQueryMaxNum=3)) as broker,
            Admin([ns.addr]) as admin,
        ):
            addr = broker.broker_addr
            await _create_topic(admin, addr)
            await _wait_route(admin, 1)
            sent = await _send(ns.addr, 6, "order-1 shared")
            sent += await _send(ns.addr, 2, "order-2 shared")
            async with RemotingClient(ClientConfig()) as client:
                api = BrokerAPI(client, 5)

                async def ask(
                    key: str, max_num: int = 64, begin: int = 0, end: int = LONG_MAX, **kw: bool
                ) -> tuple[int, list[str], QueryMessageResponseHeader, str | None]:
                    header = QueryMessageRequestHeader(TOPIC, key, max_num, begin, end)
                    response = await api.query_message(addr, header, **kw)
                    fields = response.decode_header(QueryMessageResponseHeader)
                    found = decode_messages(response.body or b"")
                    return response.code, [m.uniq_key or "" for m in found], fields, response.remark

                code, ids, fields, _ = await ask("order-1")
                assert code == ResponseCode.SUCCESS
                assert ids == [r.msg_id for r in sent[:6]]  # in commit-log order
                assert fields.index_last_update_timestamp > 0
                # Where the index stands: the last message stored.
                _, last_offset = decode_offset_message_id(sent[-1].offset_msg_id)
                assert fields.index_last_update_phyoffset == last_offset

                # maxNum keeps the newest.
                code, ids, _, _ = await ask("shared", max_num=3)
                assert ids == [r.msg_id for r in sent[-3:]]

                # A time range that ends before anything was stored.
                code, ids, fields, remark = await ask("order-1", begin=0, end=1000)
                assert code == ResponseCode.QUERY_NOT_FOUND
                assert remark == "can not find message, maybe time range not correct"
                assert ids == []
                # Unknown key: not found; like Java, no index position then.
                code, _, fields, _ = await ask("nope")
                assert code == ResponseCode.QUERY_NOT_FOUND
                assert fields.index_last_update_phyoffset == 0

                # By unique key: maxNum is defaultQueryMaxNum (3) whatever asked.
                wanted = sent[4].msg_id
                code, ids, _, _ = await ask(wanted, unique_key=True)
                assert code == ResponseCode.SUCCESS and ids == [wanted]
                code, ids, _, _ = await ask("shared", max_num=64, unique_key=True)
                assert len(ids) == 3

                # A request without the key: an error answer, the connection goes on.
                bad = RemotingCommand.request(RequestCode.QUERY_MESSAGE).replace(
                    ext_fields={"topic": TOPIC, "maxNum": "1", "beginTimestamp": "0",
                                "endTimestamp": "1"}
                )  # fmt: skip
                answer = await client.invoke_sync(addr, bad, 5)
                assert answer.code == ResponseCode.SYSTEM_ERROR
                assert "key" in (answer.remark or "")
                assert (await ask("order-2"))[0] == ResponseCode.SUCCESS

                # A range from one message's store time on.
                stored = await admin.view_message(sent[6].offset_msg_id)
                assert stored is not None
                # The index keeps times in whole seconds from the file's first
                # message (as Java): a begin a second earlier is safe.
                code, ids, _, _ = await ask("shared", begin=stored.store_timestamp - 1000)
                assert set(ids) >= {r.msg_id for r in sent[6:]}
                code, ids, _, _ = await ask("shared", begin=stored.store_timestamp + 3_600_000)
                assert code == ResponseCode.QUERY_NOT_FOUND


async def test_admin_merges_two_brokers_and_filters_collisions(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(_settings(tmp_path, ns.addr, "broker-a")) as a,
            running_broker(_settings(tmp_path, ns.addr, "broker-b")) as b,
            Admin([ns.addr]) as admin,
        ):
            await _create_topic(admin, a.broker_addr)
            await _create_topic(admin, b.broker_addr)
            await _wait_route(admin, 2)
            # "Aa" and "BB" have the same Java hash: the brokers answer both,
            # the admin keeps only the messages whose KEYS hold the key.
            sent_aa = await _send(ns.addr, 8, "Aa")
            sent_bb = await _send(ns.addr, 4, "BB")
            assert {r.queue.broker_name for r in sent_aa} == {"broker-a", "broker-b"}
            result = await admin.query_message(TOPIC, "Aa", 64, 0, LONG_MAX)
            assert sorted(m.uniq_key or "" for m in result.messages) == sorted(
                r.msg_id for r in sent_aa
            )
            assert result.index_last_update_timestamp > 0
            found = await admin.query_message_by_unique_key(TOPIC, sent_bb[1].msg_id)
            assert found is not None and found.uniq_key == sent_bb[1].msg_id
            with pytest.raises(NoMessageError):
                await admin.query_message(TOPIC, "absent", 64, 0, LONG_MAX)
            # By id: the offset id straight, a client id through the fallback.
            by_offset = await admin.view_message(sent_aa[0].offset_msg_id)
            assert by_offset is not None and by_offset.uniq_key == sent_aa[0].msg_id
            by_client = await admin.view_message(sent_aa[3].msg_id, TOPIC)
            assert by_client is not None and by_client.uniq_key == sent_aa[3].msg_id


async def test_admin_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyrocket.cli.admin_message as admin_message

    monkeypatch.setattr(admin_message, "BODY_DIR", tmp_path / "bodies")
    with trio.fail_after(40):
        async with (
            recording_namesrv(tmp_path / "ns") as ns,
            running_broker(_settings(tmp_path, ns.addr)) as broker,
            Admin([ns.addr]) as admin,
        ):
            await _create_topic(admin, broker.broker_addr)
            await _wait_route(admin, 1)
            sent = await _send(ns.addr, 3, "k-cli")
            code, out, err = await cli(
                "admin", "queryMsgByKey", "-n", ns.addr, "-t", TOPIC, "-k", "k-cli"
            )
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0] == f"{'#Message ID':<50} {'#QID':>4} {'#Offset':>40}"
            assert sorted(lines[1:]) == sorted(
                f"{r.msg_id:<50} {r.queue.queue_id:>4} {r.queue_offset:>40}" for r in sent
            )

            code, out, err = await cli(
                "admin", "queryMsgByUniqueKey", "-n", ns.addr, "-t", TOPIC, "-i", sent[1].msg_id
            )
            assert (code, err) == (0, "")
            rows = dict(
                line.split(None, 1) if ":" not in line[:20] else (line[:20].strip(), line[21:])
                for line in out.splitlines()
            )
            assert rows["Topic:"] == TOPIC
            assert rows["Tags:"] == "[T]"
            assert rows["Keys:"] == "[k-cli]"
            assert rows["Queue Offset:"] == str(sent[1].queue_offset)
            assert "OffsetID:" not in rows
            body_path = Path(rows["Message Body Path:"])
            assert body_path == tmp_path / "bodies" / sent[1].msg_id
            assert await trio.Path(body_path).read_bytes() == b"body-1"
            assert (
                rows["Properties:"].startswith("{")
                and f"UNIQ_KEY={sent[1].msg_id}" in rows["Properties:"]
            )

            for msg_id, extra in ((sent[2].offset_msg_id, []), (sent[2].msg_id, ["-t", TOPIC])):
                code, out, err = await cli(
                    "admin", "queryMsgById", "-n", ns.addr, "-i", msg_id, *extra
                )
                assert (code, err) == (0, "")
                first = out.splitlines()[0]
                assert first == f"{'OffsetID:':<20} {sent[2].offset_msg_id}"

            code, out, err = await cli(
                "admin", "queryMsgByKey", "-n", ns.addr, "-t", TOPIC, "-k", "none"
            )
            assert code == 1 and "QueryMsgByKeySubCommand command failed" in err
