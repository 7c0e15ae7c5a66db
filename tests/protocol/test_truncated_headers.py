"""A truncated frame payload never makes the decoder raise anything but
ProtocolError (a compiled construct parser raises struct.error on short input)."""

from __future__ import annotations

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import SerializeType
from pyrocket.protocol.command import RemotingCommand, decode_payload, encode


@pytest.mark.parametrize("serialize_type", list(SerializeType))
def test_truncated_headers_raise_only_protocol_error(serialize_type: SerializeType) -> None:
    command = RemotingCommand(
        code=105, opaque=7, remark="r", ext_fields={"topic": "T"}, serialize_type=serialize_type
    )
    payload = encode(command)[4:]
    header_length = int.from_bytes(payload[1:4], "big")
    refused = 0
    for cut in range(4 + header_length):
        # Keep the header-length word consistent with what is left, so the
        # header parser itself meets the truncation.
        short = payload[:1] + max(cut - 4, 0).to_bytes(3, "big") + payload[4:cut]
        try:
            decode_payload(short)
        except ProtocolError:
            refused += 1
    assert refused >= header_length - 1
