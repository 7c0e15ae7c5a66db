"""``pyrocket admin`` sendMessage, printMsg, printMsgByQueue,
queryMsgByOffset and consumeMessage against an in-process NameServer and
broker: what they print (mqadmin's layout, Java's ``MessageExt.toString``)
and that what sendMessage sends is what the readers read."""

from __future__ import annotations

import re
from pathlib import Path

import trio

from pyrocket.cli.admin_msgtools import byte_array_string, java_map_string, socket_address_string
from pyrocket.protocol.message import HostPort
from tests.cli.test_broker_cli import cli
from tests.client.helpers import consumer, running_up

TOPIC = "MsgToolTopic"
_ROW = re.compile(r"^(.{32})  (.{4})  (.{20})    (\S+)$")


def test_java_strings() -> None:
    assert socket_address_string(HostPort.of("10.1.2.3", 911)) == "/10.1.2.3:911"
    assert socket_address_string(HostPort.of("::1", 5)) == "/0:0:0:0:0:0:0:1:5"
    assert byte_array_string(b"a\xff\x00") == "[97, -1, 0]"
    assert byte_array_string(b"") == "[]"
    # HashMap order of String keys: "b" (98) before "aa" (3104 -> bucket 0).
    assert java_map_string({"b": "1", "aa": "2"}) == "{aa=2, b=1}"


async def _send(ns: str, *extra: str) -> list[str]:
    code, out, err = await cli("admin", "sendMessage", "-n", ns, "-t", TOPIC, *extra)
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == f"{'#Broker Name':<32}  {'#QID':<4}  {'#Send Result':<20}    #MsgId"
    match = _ROW.match(lines[1])
    assert match is not None and len(lines) == 2
    return [group.strip() for group in match.groups()]


async def test_send_then_read_back_by_every_reader(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            store = running.broker.store
            broker, qid, status, first_id = await _send(
                ns, "-p", "hello", "-k", "K1", "-c", "TagA", "-b", "broker-a", "-i", "3"
            )
            assert (broker, qid, status) == ("broker-a", "3", "SEND_OK")
            sent = [
                await _send(ns, "-p", f"body{i}", "-c", "TagB" if i else "TagA", "-b",
                            "broker-a", "-i", "2")
                for i in range(3)
            ]  # fmt: skip
            assert {row[1] for row in sent} == {"2"}
            assert store.get_max_offset_in_queue(TOPIC, 2) == 3 + (qid == "2")

            code, out, _ = await cli("admin", "sendMessage", "-n", ns, "-t", TOPIC, "-p", "x",
                                     "-i", "1")  # fmt: skip
            assert (code, out) == (0, "Broker name must be set if the queue is chosen!")

            # printMsgByQueue: the three messages of queue 2, in order, and tag counts.
            code, out, err = await cli(
                "admin", "printMsgByQueue", "-n", ns, "-t", TOPIC, "-a", "broker-a", "-i", "2",
                "-p", "true", "-d", "true", "-f", "true",
            )  # fmt: skip
            assert (code, err) == (0, "")
            lines = out.splitlines()
            messages = [line for line in lines if line.startswith("MSGID: ")]
            offset = 1 if qid == "2" else 0
            assert [m.split(" ")[1] for m in messages][offset:] == [row[3] for row in sent]
            for i, line in enumerate(messages[offset:]):
                assert " MessageExt [brokerName=broker-a, queueId=2, storeSize=" in line
                assert f", queueOffset={i + offset}, sysFlag=0, bornTimestamp=" in line
                assert ", toString()=Message{topic='MsgToolTopic', flag=0, properties={" in line
                assert f"body={byte_array_string(f'body{i}'.encode())}, " in line
                assert line.endswith(f"transactionId='null'}}] BODY: body{i}")
            tag_lines = [line for line in lines if line.startswith("Tag: ")]
            tag_a = 1 + offset
            assert sorted(tag_lines) == [
                f"Tag: {'TagA':<30} Count: {tag_a}",
                f"Tag: {'TagB':<30} Count: 2",
            ]
            if tag_a == 1:
                assert tag_lines[0].startswith("Tag: TagB ")  # most first
            code, out, _ = await cli(
                "admin", "printMsgByQueue", "-n", ns, "-t", TOPIC, "-a", "broker-a", "-i", "2",
                "-p", "true",
            )  # fmt: skip
            assert out.count(" BODY: NOT PRINT BODY\n") == len(messages)

            # printMsg: every queue, each opened by its offsets.
            code, out, err = await cli("admin", "printMsg", "-n", ns, "-t", TOPIC)
            assert (code, err) == (0, "")
            for queue_id in range(4):
                high = store.get_max_offset_in_queue(TOPIC, queue_id)
                assert (
                    f"minOffset=0, maxOffset={high}, MessageQueue [topic={TOPIC}, "
                    f"brokerName=broker-a, queueId={queue_id}]"
                ) in out
            assert out.count("MSGID: ") == 4
            assert f"MSGID: {first_id} " in out and "BODY: hello\n" in out
            code, out, _ = await cli("admin", "printMsg", "-n", ns, "-t", TOPIC, "-s", "TagA")
            assert out.count("MSGID: ") == 2 and "BODY: body1" not in out

            # queryMsgByOffset: the detail block of the first message of queue 2.
            code, out, err = await cli(
                "admin", "queryMsgByOffset", "-n", ns, "-t", TOPIC, "-b", "broker-a",
                "-i", "2", "-o", str(offset),
            )  # fmt: skip
            assert (code, err) == (0, "")
            rows = dict(
                (line[:20].strip(), line[21:]) for line in out.splitlines() if len(line) > 20
            )
            assert rows["Topic:"] == TOPIC and rows["Tags:"] == "[TagA]"
            assert rows["Keys:"] == "[null]" and rows["Queue ID:"] == "2"
            assert rows["Queue Offset:"] == str(offset)
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", rows["Store Timestamp:"])
            assert rows["Store Host:"] == running.broker.broker_addr
            body_path = trio.Path(rows["Message Body Path:"])
            assert await body_path.read_bytes() == b"body0"
            assert out.endswith(
                "Message Body Path:".ljust(21) + str(body_path) + "\n\n\nWARN: No Consumer"
            )
            code, out, _ = await cli(
                "admin", "queryMsgByOffset", "-n", ns, "-t", TOPIC, "-b", "broker-a",
                "-i", "2", "-o", "99",
            )  # fmt: skip
            assert (code, out) == (0, "")

            # consumeMessage: one queue from an offset, then the whole topic.
            code, out, err = await cli(
                "admin", "consumeMessage", "-n", ns, "-t", TOPIC, "-b", "broker-a",
                "-i", "2", "-o", str(offset + 1),
            )  # fmt: skip
            assert (code, err) == (0, "")
            lines = out.splitlines()
            assert lines[0] == "Consume ok"
            assert [line.split(" ")[1] for line in lines[1:3]] == [sent[1][3], sent[2][3]]
            assert lines[3] == (
                f"MessageQueue [topic={TOPIC}, brokerName=broker-a, queueId=2] print msg "
                f"finished. status=NO_NEW_MSG, offset={offset + 3}"
            )
            # mqadmin counts a queue's range as one more message than it holds,
            # so -c 2 stops after a first queue of one message.
            code, out, _ = await cli("admin", "consumeMessage", "-n", ns, "-t", TOPIC, "-c", "2")
            assert code == 0 and out.count("MSGID: ") == 1 and out.count("finished") == 1
            code, out, _ = await cli(
                "admin", "consumeMessage", "-n", ns, "-t", TOPIC, "-b", "broker-a", "-i", "2",
                "-c", "1",
            )  # fmt: skip
            assert out.startswith("The oldler 1 message will be provided\nConsume ok\nMSGID: ")
            assert out.count("MSGID: ") == 1 and "finished" not in out
            code, out, _ = await cli("admin", "consumeMessage", "-n", ns, "-t", TOPIC, "-c", "0")
            assert out == "Please input a positive messageNumber!"
            code, out, _ = await cli("admin", "consumeMessage", "-n", ns, "-t", TOPIC, "-i", "0")
            assert out == "Please set the brokerName before queueId!"

            # Without -b / -i the producer picks the queue.
            before = sum(store.get_max_offset_in_queue(TOPIC, q) for q in range(4))
            broker, qid, status, msg_id = await _send(ns, "-p", "picked")
            assert (broker, status) == ("broker-a", "SEND_OK") and qid in "0123"
            assert store.get_max_offset_in_queue(TOPIC, int(qid)) > 0
            assert sum(store.get_max_offset_in_queue(TOPIC, q) for q in range(4)) == before + 1
            code, out, _ = await cli("admin", "printMsg", "-n", ns, "-t", TOPIC)
            assert f"MSGID: {msg_id} " in out and "BODY: picked\n" in out

            # A group that read everything: the message's track says CONSUMED.
            async with consumer(ns, "track_group", TOPIC) as reader:
                for _ in range(before + 1):
                    await reader.receive()
                await reader.commit()
                code, out, _ = await cli(
                    "admin", "queryMsgByOffset", "-n", ns, "-t", TOPIC, "-b", "broker-a",
                    "-i", "2", "-o", "0",
                )  # fmt: skip
            assert out.endswith(
                "\n\nMessageTrack [consumerGroup=track_group, trackType=CONSUMED, "
                "exceptionDesc=null]"
            )

            code, out, err = await cli("admin", "printMsg", "-n", ns, "-t", "NoSuchTopic")
            assert code == 1 and err.startswith("PrintMessageSubCommand command failed: ")
