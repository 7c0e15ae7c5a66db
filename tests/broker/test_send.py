"""SEND_MESSAGE_V2 over a real socket: the hot path (which skips the
pre-send checks for a known-good topic) answers exactly as the full checks
do, and the hand-written V2 header reader agrees with the generic decoder."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.broker.app import Broker
from pyrocket.broker.processors import send_common
from pyrocket.broker.processors.send import SendMessageProcessor
from pyrocket.errors import CommandError
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE, TopicConfig
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import ConsumerSendMsgBackRequestHeader, SendMessageRequestHeaderV2
from pyrocket.remoting import RemotingClient
from tests.broker.helpers import broker_settings, running_broker, send_request


def set_broker(broker: Broker, **changes: object) -> None:
    settings = broker.settings
    broker.settings = dataclasses.replace(
        settings,
        broker=dataclasses.replace(settings.broker, **changes),  # type: ignore[arg-type]
    )


#: Topics present in every state: a plain one, an ordered one, one whose
#: write queues are gone (read queues remain).
TOPICS = [
    TopicConfig(topic_name="Plain", read_queue_nums=4, write_queue_nums=4),
    TopicConfig(topic_name="Ordered", read_queue_nums=4, write_queue_nums=4, order=True),
    TopicConfig(topic_name="ReadOnlyQueues", read_queue_nums=4, write_queue_nums=0),
]
#: Broker states: as configured, not accepting sends yet, read-only.
STATES: list[dict[str, object]] = [
    {},
    {"start_accept_send_request_time_stamp": 2**62},
    {"broker_permission": PERM_READ},
]
#: TBW102 exists but is not a name a message may be sent to; "Fresh" does
#: not exist (created from TBW102); "bad name" is refused.
SEND_TOPICS = ["Plain", "Ordered", "ReadOnlyQueues", "TBW102", "Fresh", "bad name"]
QUEUE_IDS = [-1, 0, 3, 4, 1000]


def comparable(answer: RemotingCommand) -> tuple[object, ...]:
    ext = dict(answer.ext_fields or {})
    if answer.code == ResponseCode.SUCCESS:
        # Where the message went differs between two sends; the shape must not.
        return (answer.code, answer.remark, list(ext))
    return (answer.code, answer.remark, ext)


async def test_hot_path_answers_as_the_full_checks_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hot_path = SendMessageProcessor._passes_pre_send
    compared = refused = 0
    with trio.fail_after(30):
        settings = broker_settings(tmp_path)
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            original = broker.settings
            for state, topic, queue_id in itertools.product(STATES, SEND_TOPICS, QUEUE_IDS):
                # Each case from the same topic table: the full checks may
                # create "Fresh", and then the hot path must see it anew.
                broker.settings = original
                await broker.topic_config_manager.delete_topic_config("Fresh")
                for config in TOPICS:
                    await broker.topic_config_manager.update_topic_config(config)
                set_broker(broker, **state)
                monkeypatch.setattr(SendMessageProcessor, "_passes_pre_send", lambda *_: False)
                full = await client.invoke_sync(addr, send_request(topic, queue_id, b"hello"), 5)
                monkeypatch.setattr(SendMessageProcessor, "_passes_pre_send", hot_path)
                await broker.topic_config_manager.delete_topic_config("Fresh")
                stored_before = broker.store.get_max_offset_in_queue(topic, max(queue_id, 0))
                hot = await client.invoke_sync(addr, send_request(topic, queue_id, b"hello"), 5)
                case = (state, topic, queue_id)
                assert comparable(hot) == comparable(full), case
                compared += 1
                if hot.code != ResponseCode.SUCCESS:
                    refused += 1
                    stored = broker.store.get_max_offset_in_queue(topic, max(queue_id, 0))
                    assert stored == stored_before, case
    assert compared == len(STATES) * len(SEND_TOPICS) * len(QUEUE_IDS)
    # The grid exercises every refusal of the pre-send checks and successes.
    assert 0 < refused < compared


async def test_each_pre_send_refusal_over_the_hot_path(tmp_path: Path) -> None:
    with trio.fail_after(15):
        settings = broker_settings(tmp_path)
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            for config in TOPICS:
                await broker.topic_config_manager.update_topic_config(config)

            async def answer(topic: str, queue_id: int) -> tuple[int, str | None]:
                got = await client.invoke_sync(addr, send_request(topic, queue_id, b"hello"), 5)
                return got.code, got.remark

            code, remark = await answer("Plain", 0)
            assert (code, remark) == (ResponseCode.SUCCESS, None)
            code, remark = await answer("Plain", 4)
            assert code == ResponseCode.SYSTEM_ERROR
            assert remark is not None and remark.startswith("request queueId[4] is illegal")
            code, remark = await answer("ReadOnlyQueues", -1)
            assert code == ResponseCode.SYSTEM_ERROR
            assert remark is not None and remark.startswith("request queueId[-1] is illegal")
            code, remark = await answer("TBW102", 0)
            assert (code, remark) == (
                ResponseCode.SYSTEM_ERROR,
                "The specified topic is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC.",
            )
            set_broker(broker, broker_permission=PERM_READ)
            code, remark = await answer("Ordered", 0)
            assert (code, remark) == (
                ResponseCode.NO_PERMISSION,
                "the broker[127.0.0.1] sending message is forbidden",
            )
            set_broker(broker, broker_permission=PERM_READ | PERM_WRITE)
            set_broker(broker, start_accept_send_request_time_stamp=2**62)
            code, remark = await answer("Plain", 0)
            assert code == ResponseCode.SYSTEM_ERROR
            assert remark is not None and remark.startswith("broker unable to service, until ")
            set_broker(broker, start_accept_send_request_time_stamp=0)
            code, remark = await answer("Plain", 1)
            assert code == ResponseCode.SUCCESS
            # Only the two accepted sends were stored.
            store = broker.store
            assert sum(store.get_max_offset_in_queue("Plain", q) for q in range(4)) == 2


# -- the V2 header reader -----------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        ["", "-", "+5", "-0", "007", " 1", "1 ", "１", "²", "2147483648", "99999999999999999999"]
    ),
    st.text(max_size=6),
)
_V2_KEYS = "abcdefghijklm"


@given(
    st.dictionaries(
        st.sampled_from(_V2_KEYS),
        st.one_of(_NUMBERS, st.sampled_from(["true", "TRUE", "false", "yes"])),
    ),
    st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 2**31 - 1).map(str)),
)
def test_v2_header_reader_agrees_with_the_generic_decoder(
    ext: dict[str, str], base: dict[str, str]
) -> None:
    fields = {**base, **ext}
    request = RemotingCommand(code=RequestCode.SEND_MESSAGE_V2, ext_fields=fields)
    try:
        want: SendMessageRequestHeaderV2 | str = request.decode_header(SendMessageRequestHeaderV2)
    except CommandError as exc:
        want = str(exc)
    try:
        got: object = send_common.decode_send_header(request)
    except CommandError as exc:
        got = str(exc)
    assert got == want


@given(st.integers(-719_162, 2_932_896))
def test_civil_dates_match_the_calendar(days: int) -> None:
    date = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
    assert send_common._civil_from_days(days) == (date.year, date.month, date.day)


# -- poison pills -------------------------------------------------------------


def send_back_request(group: str, offset: int = 0) -> RemotingCommand:
    header = ConsumerSendMsgBackRequestHeader(
        offset=offset, group=group, delay_level=0, origin_msg_id=None, origin_topic=None
    )
    return RemotingCommand.request(RequestCode.CONSUMER_SEND_MSG_BACK, header)


@pytest.mark.parametrize("group", ["g" * 121, "bad group", "tab\tgroup", "semi;colon"])
async def test_send_back_for_a_group_without_a_valid_retry_topic_is_refused(
    tmp_path: Path, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(15):
        settings = broker_settings(tmp_path)
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            stored = await client.invoke_sync(addr, send_request("Plain", 0, b"x"), 5)
            assert stored.code == ResponseCode.SUCCESS
            commit_log_end = broker.store.max_phy_offset
            topics_before = set(broker.topic_config_manager.topic_config_table)
            groups_before = set(broker.subscription_group_manager.subscription_group_table)
            caplog.clear()
            answer = await client.invoke_sync(addr, send_back_request(group), 5)
            assert answer.code == ResponseCode.MESSAGE_ILLEGAL
            assert answer.remark is not None and "%RETRY%" in answer.remark
            assert "not valid" in answer.remark
            # Nothing was created or stored for it.
            assert set(broker.topic_config_manager.topic_config_table) == topics_before
            assert set(broker.subscription_group_manager.subscription_group_table) == groups_before
            assert broker.store.max_phy_offset == commit_log_end
            refusals = [r for r in caplog.records if "refused" in r.getMessage()]
            assert len(refusals) == 1 and refusals[0].exc_info is None


@pytest.mark.parametrize("sys_flag", [-1, 0x10, 0x20, 0x30, 0x7FFFFFFF])
async def test_send_with_an_impossible_sys_flag_is_refused_in_one_line(
    tmp_path: Path, sys_flag: int, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(15):
        settings = broker_settings(tmp_path)
        async with running_broker(settings, timing=None) as broker, RemotingClient() as client:
            addr = broker.broker_addr
            await broker.topic_config_manager.update_topic_config(TOPICS[0])
            caplog.clear()
            request = send_request("Plain", 0, b"x")
            ext = dict(request.ext_fields or {})
            ext["f"] = str(sys_flag)  # the V2 header's sysFlag
            request = dataclasses.replace(request, ext_fields=ext)
            answer = await client.invoke_sync(addr, request, 5)
            assert answer.code == ResponseCode.MESSAGE_ILLEGAL
            assert answer.remark is not None and f"sysFlag {sys_flag}" in answer.remark
            assert sum(broker.store.get_max_offset_in_queue("Plain", q) for q in range(4)) == 0
            mentions = [r for r in caplog.records if "sysFlag" in r.getMessage()]
            assert len(mentions) == 1
            assert all(r.exc_info is None for r in caplog.records)
            # The connection still serves sends.
            again = await client.invoke_sync(addr, send_request("Plain", 0, b"x"), 5)
            assert again.code == ResponseCode.SUCCESS
