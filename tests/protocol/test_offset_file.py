"""The broadcasting consumer's offsets.json: the exact text Java 4.7.0's
``OffsetSerializeWrapper.toJson(true)`` writes (taken from a Java run of
three queues put one by one into the wrapper), and its reading back."""

from __future__ import annotations

import pytest

from pyrocket.errors import ProtocolError
from pyrocket.protocol.bodies.client import MessageQueue
from pyrocket.protocol.bodies.offset_file import decode_offset_file, encode_offset_file

JAVA_TEXT = (
    '{\n\t"offsetTable":{{\n'
    '\t\t\t"brokerName":"broker-a",\n\t\t\t"queueId":1,\n\t\t\t"topic":"TopicA"\n\t\t}:17,{\n'
    '\t\t\t"brokerName":"broker-a",\n\t\t\t"queueId":0,\n\t\t\t"topic":"TopicA"\n\t\t}:5,{\n'
    '\t\t\t"brokerName":"broker-b",\n\t\t\t"queueId":3,\n\t\t\t"topic":"TopicB"\n\t\t}:0\n'
    "\t}\n}"
)
TABLE = {
    MessageQueue("TopicA", "broker-a", 0): 5,
    MessageQueue("TopicA", "broker-a", 1): 17,
    MessageQueue("TopicB", "broker-b", 3): 0,
}


def test_java_layout_and_order() -> None:
    assert encode_offset_file(TABLE) == JAVA_TEXT
    assert encode_offset_file({}) == '{\n\t"offsetTable":{}\n}'


def test_reading_back() -> None:
    assert decode_offset_file(JAVA_TEXT) == TABLE
    assert decode_offset_file(encode_offset_file({})) == {}
    assert decode_offset_file('{"offsetTable":{{"queueId":2,"topic":"x"}:9}}') == {
        MessageQueue("x", None, 2): 9
    }


@pytest.mark.parametrize("text", ["", "[]", '{"offsetTable":{"a":1}}', '{"offsetTable":5}'])
def test_bad_files_raise_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        decode_offset_file(text)
