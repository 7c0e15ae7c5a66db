"""``stored_properties`` reads a stored record's properties without decoding
the rest, and agrees with the full decoder on every record, IPv6 hosts
included; a record cut short raises ProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrocket.errors import ProtocolError
from pyrocket.protocol.message import (
    HostPort,
    MessageExt,
    MessageSysFlag,
    decode_message,
    encode_message,
    stored_properties,
)

names = st.text(
    st.characters(blacklist_characters="\x01\x02", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=8,
)
values = st.text(
    st.characters(blacklist_characters="\x01\x02", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=12,
)
hosts = st.sampled_from(
    [HostPort(bytes([127, 0, 0, 1]), 10911), HostPort(bytes(15) + b"\x01", 10911)]
)


@given(
    st.dictionaries(names, values, max_size=6),
    st.binary(max_size=300),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    hosts,
    hosts,
)
def test_stored_properties_agree_with_the_decoder(
    properties: dict[str, str], body: bytes, topic: str, born: HostPort, store: HostPort
) -> None:
    sys_flag = (MessageSysFlag.BORNHOST_V6_FLAG if born.is_v6 else 0) | (
        MessageSysFlag.STOREHOSTADDRESS_V6_FLAG if store.is_v6 else 0
    )
    record = encode_message(
        MessageExt(
            topic=topic,
            body=body,
            properties=properties,
            born_host=born,
            store_host=store,
            sys_flag=sys_flag,
        )
    )
    message, _ = decode_message(record)
    assert stored_properties(record) == message.properties == properties


def test_a_record_cut_short_is_refused() -> None:
    record = encode_message(
        MessageExt(
            topic="T",
            body=b"x" * 50,
            properties={"a": "1"},
            born_host=HostPort(bytes([127, 0, 0, 1]), 1),
            store_host=HostPort(bytes([127, 0, 0, 1]), 1),
        )
    )
    assert stored_properties(record) == {"a": "1"}
    for cut in (10, 60, 100, len(record) - 3):
        with pytest.raises(ProtocolError):
            stored_properties(record[:cut])
