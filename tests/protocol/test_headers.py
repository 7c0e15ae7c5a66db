"""Typed headers: Java's field rules, HashMap order, V1/V2 send headers."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pyrocket.errors import CommandError
from pyrocket.protocol.catalog import all_header_types, request_header_type
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, encode
from pyrocket.protocol.headers import (
    ConsumerSendMsgBackRequestHeader,
    CreateTopicRequestHeader,
    GetAllTopicConfigResponseHeader,
    GetRouteInfoRequestHeader,
    JType,
    PullMessageRequestHeader,
    QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    UnregisterClientRequestHeader,
)


def _register_header() -> RegisterBrokerRequestHeader:
    return RegisterBrokerRequestHeader(
        broker_name="broker-a",
        broker_addr="127.0.0.1:10911",
        cluster_name="DefaultCluster",
        ha_server_addr="127.0.0.1:10912",
        broker_id=0,
        body_crc32=1449010470,
    )


def test_register_broker_ext_fields_in_hashmap_order() -> None:
    # The order the vectors README spells out for REGISTER_BROKER.
    ext = _register_header().to_ext_fields()
    assert list(ext) == [
        "brokerId",
        "bodyCrc32",
        "clusterName",
        "brokerAddr",
        "haServerAddr",
        "compressed",
        "brokerName",
    ]
    assert ext["compressed"] == "false" and ext["brokerId"] == "0"


def test_request_frame_built_from_a_header() -> None:
    frame = encode(
        RemotingCommand.request(RequestCode.GET_ROUTEINFO_BY_TOPIC, GetRouteInfoRequestHeader("T"))
    )
    assert frame[8:] == (
        b'{"code":105,"extFields":{"topic":"T"},"flag":0,"language":"JAVA","opaque":0,'
        b'"serializeTypeCurrentRPC":"JSON","version":353}'
    )


def test_missing_required_field_is_named() -> None:
    with pytest.raises(CommandError, match=r"^the custom field <topic> is null$"):
        GetRouteInfoRequestHeader.from_ext_fields({})
    fields = _register_header().to_ext_fields()
    del fields["brokerId"]
    with pytest.raises(CommandError, match="<brokerId> is null"):
        RegisterBrokerRequestHeader.from_ext_fields(fields)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x", "is not a Long: 'x'"),
        ("1.5", "is not a Long"),
        ("", "is not a Long"),
        ("9223372036854775808", "is out of Long range"),
    ],
)
def test_bad_numbers_are_errors_naming_field_and_value(value: str, message: str) -> None:
    fields = _register_header().to_ext_fields()
    fields["brokerId"] = value
    with pytest.raises(CommandError, match=f"<brokerId> {message}"):
        RegisterBrokerRequestHeader.from_ext_fields(fields)


def test_java_number_and_boolean_parsing() -> None:
    fields = _register_header().to_ext_fields()
    fields.update(brokerId="+7", compressed="TRUE", bodyCrc32="-1")
    header = RegisterBrokerRequestHeader.from_ext_fields(fields)
    assert (header.broker_id, header.compressed, header.body_crc32) == (7, True, -1)
    # Boolean.parseBoolean: anything but "true" (any case) is false.
    assert not QueryDataVersionResponseHeader.from_ext_fields({"changed": "yes"}).changed
    assert QueryDataVersionResponseHeader.from_ext_fields({"changed": "True"}).changed


def _java_parse(text: str, bits: int) -> int | None:
    """Integer.parseInt / Long.parseLong: an optional sign and ASCII digits
    in range, else None (a NumberFormatException)."""
    if re.fullmatch(r"[-+]?[0-9]+", text) is None:
        return None
    value = int(text)
    return value if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None


_NUMBER_TEXTS = st.one_of(
    st.from_regex(r"[-+]?[0-9]{0,22}", fullmatch=True),
    st.text(alphabet="0123456789+-٣²x ", max_size=22),
    st.text(max_size=8),
)


@given(long_text=_NUMBER_TEXTS, int_text=_NUMBER_TEXTS)
@example(long_text="9223372036854775807", int_text="2147483647")
@example(long_text="9223372036854775808", int_text="0")
@example(long_text="0", int_text="2147483648")
@example(long_text="-9223372036854775809", int_text="-2147483649")
@example(long_text="0009223372036854775807", int_text="0000000002147483647")
@example(long_text="99999999999999999999", int_text="9999999999")
def test_numbers_parse_as_java_parses_them(long_text: str, int_text: str) -> None:
    fields = _register_header().to_ext_fields()
    fields.update(brokerId=long_text, bodyCrc32=int_text)
    expected = (_java_parse(long_text, 64), _java_parse(int_text, 32))
    if None in expected:
        with pytest.raises(CommandError):
            RegisterBrokerRequestHeader.from_ext_fields(fields)
        return
    header = RegisterBrokerRequestHeader.from_ext_fields(fields)
    assert (header.broker_id, header.body_crc32) == expected


def test_unknown_ext_fields_are_ignored() -> None:
    header = GetRouteInfoRequestHeader.from_ext_fields({"topic": "T", "AccessKey": "k"})
    assert header == GetRouteInfoRequestHeader("T")


def test_java_primitives_are_always_sent_and_nulls_never() -> None:
    header = ConsumerSendMsgBackRequestHeader(offset=1, group="G", delay_level=0)
    # unitMode is a Java boolean (never null); the boxed Integer stays out.
    assert header.to_ext_fields() == {
        "offset": "1",
        "group": "G",
        "delayLevel": "0",
        "unitMode": "false",
    }
    create = CreateTopicRequestHeader.from_ext_fields(
        {
            "topic": "T",
            "defaultTopic": "TBW102",
            "readQueueNums": "8",
            "writeQueueNums": "8",
            "perm": "6",
            "topicFilterType": "SINGLE_TAG",
            "order": "false",
        }
    )
    assert create.topic_sys_flag is None and create.order is False


def test_preceding_entries_share_the_hashmap() -> None:
    header = UnregisterClientRequestHeader(client_id="c", producer_group="P")
    ext = header.to_ext_fields({"Signature": "s", "AccessKey": "k"})
    assert set(ext) == {"Signature", "AccessKey", "clientID", "producerGroup"}
    # A header field of the same name replaces the value, keeping its slot.
    assert header.to_ext_fields({"clientID": "old"})["clientID"] == "c"


def test_empty_response_header_gives_empty_ext_fields() -> None:
    response = RemotingCommand.response(0, header=GetAllTopicConfigResponseHeader())
    assert response.ext_fields == {}
    assert b'"extFields":{}' in encode(response)


def _v1() -> SendMessageRequestHeader:
    return SendMessageRequestHeader(
        producer_group="P",
        topic="T",
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=3,
        sys_flag=0,
        born_timestamp=1795278988000,
        flag=0,
        properties="KEYS\x01k\x02",
        reconsume_times=0,
        unit_mode=False,
        batch=True,
        max_reconsume_times=16,
    )


def test_send_header_v1_v2_conversion() -> None:
    v1 = _v1()
    v2 = SendMessageRequestHeaderV2.from_v1(v1)
    assert v2.to_v1() == v1
    ext = v2.to_ext_fields()
    assert ext["a"] == "P" and ext["g"] == "1795278988000" and ext["l"] == "16"
    assert ext["m"] == "true" and ext["k"] == "false"
    assert SendMessageRequestHeaderV2.from_ext_fields(ext) == v2
    assert SendMessageRequestHeader.from_ext_fields(v1.to_ext_fields()) == v1


def test_thirteen_fields_resize_the_ext_map() -> None:
    # 13 entries exceed the default HashMap's threshold of 12, so Java's map
    # grows to 32 slots; the single-letter keys 'a'..'m' (hashes 97..109) land
    # in slots 1..13 of either table, so they come out alphabetically.
    assert list(SendMessageRequestHeaderV2.from_v1(_v1()).to_ext_fields()) == list("abcdefghijklm")


def test_catalog_maps_codes_to_headers() -> None:
    assert request_header_type(RequestCode.PULL_MESSAGE) is PullMessageRequestHeader
    assert request_header_type(RequestCode.SEND_BATCH_MESSAGE) is SendMessageRequestHeaderV2
    assert request_header_type(RequestCode.GET_BROKER_CLUSTER_INFO) is None
    # Every listed header builds from its own ext fields.
    for header_type in all_header_types():
        header = header_type.from_ext_fields(_all_fields(header_type))
        assert header_type.from_ext_fields(header.to_ext_fields()) == header


def _all_fields(header_type: type) -> dict[str, str]:
    samples = {
        JType.STRING: "s",
        JType.INT: "1",
        JType.LONG: "2",
        JType.BOOLEAN: "true",
        JType.DOUBLE: "0.5",
    }
    return {
        f.metadata["wire"]: samples[f.metadata["jtype"]] for f in dataclasses.fields(header_type)
    }
