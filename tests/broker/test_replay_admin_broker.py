"""Replay of the ``admin-broker`` capture's operator requests against a
pyrocket broker configured like the recorded Java broker.

The broker gets the recorded broker's properties (from its GET_BROKER_CONFIG
answer; paths, ports and the NameServer address are this test's), and the
messages the recorded producer sent are stored as they arrive in the capture
(SEND_MESSAGE_V2 belongs to the message path; its frames are applied to the
store directly). Every mqadmin request to the broker whose code the control
plane answers is then sent verbatim, and the answer compared with the
recorded one: byte for byte, except the values the vectors README lists as
differing between runs, which are named below.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import trio

from pyrocket.broker.config import BrokerSettings
from pyrocket.broker.configuration import refusal_reason
from pyrocket.broker.registration import RegistrationTiming
from pyrocket.broker.store import BrokerMessage
from pyrocket.protocol.bodies.admin import TopicOffset, TopicStatsTable
from pyrocket.protocol.bodies.properties import Properties
from pyrocket.protocol.bodies.topic import DataVersion, KVTable
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.protocol.headers import (
    CreateTopicRequestHeader,
    GetBrokerConfigResponseHeader,
    SendMessageRequestHeaderV2,
)
from pyrocket.protocol.message import HostPort
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import running_broker
from tests.broker.recording_namesrv import recording_namesrv
from tests.vectorset import Record, pair_requests, read_records

#: Codes of the recorded mqadmin requests that the control plane answers.
CONTROL_PLANE = {
    RequestCode.UPDATE_AND_CREATE_TOPIC,
    RequestCode.GET_BROKER_RUNTIME_INFO,
    RequestCode.GET_BROKER_CONFIG,
    RequestCode.GET_TOPIC_STATS_INFO,
    RequestCode.UPDATE_BROKER_CONFIG,
}

#: GET_BROKER_RUNTIME_INFO values that are runtime figures (README: boot time,
#: uptime, TPS, disk ratios, put/get times, capacity), plus the messages the
#: recorded consumer read (it is not part of this replay) and the unflushed
#: bytes at the moment of the request.
RUNTIME_FIGURES = frozenset(
    {
        "bootTimestamp",
        "runtime",
        "putTps",
        "getFoundTps",
        "getMissTps",
        "getTotalTps",
        "getTransferedTps",
        "commitLogDiskRatio",
        "consumeQueueDiskRatio",
        "putMessageDistributeTime",
        "putMessageEntireTimeMax",
        "getMessageEntireTimeMax",
        "commitLogDirCapacity",
        "remainHowManyDataToFlush",
        "msgGetTotalTodayNow",
    }
)

#: GET_BROKER_CONFIG keys that are this test's (paths, ports, NameServer).
LOCAL_CONFIG_KEYS = frozenset(
    {"storePathRootDir", "storePathCommitLog", "listenPort", "haListenPort", "namesrvAddr"}
)


def recorded_settings(records: list[Record], root: Path, namesrv: str) -> BrokerSettings:
    pairs = pair_requests(records)
    answers = [
        r
        for r in records
        if r.is_response
        and r.body is not None
        and r.seq in pairs
        and pairs[r.seq].code == RequestCode.GET_BROKER_CONFIG
    ]
    if not answers:
        pytest.skip("the capture has no GET_BROKER_CONFIG answer to configure the broker from")
    answer = answers[0]
    properties = dict(Properties.decode(answer.body or b"").entries)
    properties.update(
        {
            "storePathRootDir": str(root / "store"),
            "storePathCommitLog": str(root / "store" / "commitlog"),
            "listenPort": "0",
            "namesrvAddr": namesrv,
        }
    )
    return BrokerSettings.from_properties(properties)


def stored_message(request: RemotingCommand, client_port: int, broker_port: int) -> BrokerMessage:
    header = request.decode_header(SendMessageRequestHeaderV2)
    return BrokerMessage.from_properties_string(
        header.topic,
        header.queue_id,
        request.body or b"",
        header.properties or "",
        flag=header.flag,
        sys_flag=header.sys_flag,
        born_timestamp=header.born_timestamp,
        born_host=HostPort.of("127.0.0.1", client_port),
        store_host=HostPort.of("127.0.0.1", broker_port),
    )


def compare_runtime_info(
    ours: bytes, recorded: bytes, ignore: frozenset[str] = frozenset()
) -> None:
    """Our GET_BROKER_RUNTIME_INFO table against Java's: the same keys in the
    same order, the same values except runtime figures and ``ignore``."""
    mine = KVTable.decode(ours).table
    java = KVTable.decode(recorded).table
    assert list(mine) == list(java)  # same keys, same HashMap order
    for key, value in java.items():
        if key not in RUNTIME_FIGURES | ignore:
            assert mine[key] == value, key
    assert re.fullmatch(r"\[ \d+ days, \d+ hours, \d+ minutes, \d+ seconds \]", mine["runtime"])
    buckets = re.findall(r"\[[^\]]+\]:(\d+) ", mine["putMessageDistributeTime"])
    assert len(buckets) == 13
    # Java reports a total of 1 while no message was put (it divides by it).
    assert max(1, sum(map(int, buckets))) == int(mine["putMessageTimesTotal"])


def compare_broker_config(ours: RemotingCommand, recorded: RemotingCommand) -> None:
    mine = Properties.decode(ours.body or b"").entries
    java = Properties.decode(recorded.body or b"").entries
    assert list(mine) == list(java)
    for key, value in java.items():
        if key not in LOCAL_CONFIG_KEYS:
            assert mine[key] == value, key
    ours_version = DataVersion.decode(
        ours.decode_header(GetBrokerConfigResponseHeader).version.encode()
    )
    java_version = DataVersion.decode(
        recorded.decode_header(GetBrokerConfigResponseHeader).version.encode()
    )
    assert ours_version.counter == java_version.counter
    # The rest of the frame (codes, flags, header layout) is Java's.
    normalised = ours.replace(body=recorded.body, ext_fields=recorded.ext_fields)
    assert encode(normalised) == encode(recorded)


def compare_topic_stats(ours: bytes, recorded: bytes) -> None:
    mine = TopicStatsTable.decode(ours).offset_table
    java = TopicStatsTable.decode(recorded).offset_table
    assert list(mine) == list(java)
    for queue, offset in java.items():
        got = mine[queue]
        assert (got.min_offset, got.max_offset) == (offset.min_offset, offset.max_offset)
        assert (got.last_update_timestamp > 0) == (offset.last_update_timestamp > 0)
    # With Java's store timestamps put in, the body is Java's byte for byte.
    merged = {
        queue: TopicOffset(o.min_offset, o.max_offset, java[queue].last_update_timestamp)
        for queue, o in mine.items()
    }
    assert TopicStatsTable(merged).encode() == recorded


async def test_admin_broker_capture_replays(tmp_path: Path, vectors_dir: Path) -> None:
    records = read_records(vectors_dir / "admin-broker.jsonl")
    by_seq = {r.seq: r for r in records}
    answers = {request.seq: by_seq[seq] for seq, request in pair_requests(records).items()}
    checked: dict[int, int] = {}
    slow = RegistrationTiming(first_delay=600, period=600)
    with trio.fail_after(30):
        async with recording_namesrv(tmp_path / "ns") as namesrv:
            settings = recorded_settings(records, tmp_path, namesrv.addr)
            async with running_broker(settings, timing=slow) as broker, RemotingClient() as client:
                for record in records:
                    if not (record.is_frame and record.is_request and record.sender == "client"):
                        continue
                    if record.server != "java-broker":
                        continue
                    request = decode(record.frame)
                    if record.code == RequestCode.SEND_MESSAGE_V2:
                        message = stored_message(
                            request, int(record.raw["client_port"]), broker.listen_port
                        )
                        result = await broker.put_message(message)
                        assert result.is_ok
                        continue
                    if record.code not in CONTROL_PLANE:
                        continue
                    answer = answers[record.seq]
                    expected = decode(answer.frame)
                    response = await client.invoke_sync(broker.broker_addr, request, 10, as_is=True)
                    response = response.replace(opaque=answer.opaque)
                    code = record.code
                    if code == RequestCode.GET_BROKER_RUNTIME_INFO:
                        compare_runtime_info(response.body or b"", expected.body or b"")
                        assert response.replace(body=None) == expected.replace(body=None)
                    elif code == RequestCode.GET_BROKER_CONFIG:
                        compare_broker_config(response, expected)
                    elif code == RequestCode.GET_TOPIC_STATS_INFO:
                        compare_topic_stats(response.body or b"", expected.body or b"")
                        assert response.replace(body=None) == expected.replace(body=None)
                    elif refused := refused_keys(request):
                        # docs/deviations.md: Java applies every key and answers
                        # SUCCESS; pyrocket refuses keys outside its allow-list.
                        assert expected.code == ResponseCode.SUCCESS
                        assert response.code != ResponseCode.SUCCESS
                        assert all(key in (response.remark or "") for key in refused)
                    else:
                        assert encode(response) == answer.frame, record.seq
                    checked[code] = checked.get(code, 0) + 1
                # The topics created were registered with the NameServer right away.
                broker_name = broker.settings.broker.broker_name
                for topic in created_topics(records):
                    await namesrv.wait_for(lambda t=topic: namesrv.has_topic(t, broker_name))
                # The configuration changes were applied.
                current = broker.configuration.all_configs(broker.settings)
                for key, value in updated_config(records).items():
                    if refusal_reason(key) is None:
                        assert current[key] == value, key
    expected = Counter(
        r.code
        for r in records
        if r.is_frame
        and r.is_request
        and r.sender == "client"
        and r.server == "java-broker"
        and r.code in CONTROL_PLANE
    )
    if not expected:
        pytest.skip("the capture has no operator request to the broker")
    assert checked == dict(expected)


def created_topics(records: list[Record]) -> list[str]:
    """The topics the capture's UPDATE_AND_CREATE_TOPIC requests created."""
    return [
        decode(r.frame).decode_header(CreateTopicRequestHeader).topic
        for r in records
        if r.is_frame and r.is_request and r.code == RequestCode.UPDATE_AND_CREATE_TOPIC
    ]


def refused_keys(request: RemotingCommand) -> list[str]:
    """The keys of an UPDATE_BROKER_CONFIG request that pyrocket refuses."""
    if request.code != RequestCode.UPDATE_BROKER_CONFIG or not request.body:
        return []
    keys = Properties.decode(request.body).entries
    return [key for key in keys if refusal_reason(key) is not None]


def updated_config(records: list[Record]) -> dict[str, str]:
    """The keys the capture's UPDATE_BROKER_CONFIG requests set."""
    changes: dict[str, str] = {}
    for r in records:
        if r.is_frame and r.is_request and r.code == RequestCode.UPDATE_BROKER_CONFIG and r.body:
            changes.update(Properties.decode(r.body).entries)
    return changes
