"""The client's request-reply helpers without a broker: the reply a
replier makes (``MessageUtil.createReplyMessage``), the request properties
(``prepareSendRequest``), which sends go out as SEND_REPLY_MESSAGE_V2, and
the CLUSTER property the broker gives request messages."""

from __future__ import annotations

import pytest

from pyrocket.broker.processors.request_message import with_request_cluster
from pyrocket.client import ClientError, create_reply_message
from pyrocket.client.broker_api import is_reply
from pyrocket.client.request_reply import RequestTimeoutError, reply_topic, request_message
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import Message, MessageExt, decode_properties, encode_properties


def test_reply_message_carries_the_request_properties() -> None:
    request = MessageExt(
        topic="RpcTopic",
        body=b"ping",
        properties={
            "CLUSTER": "ClusterA",
            "CORRELATION_ID": "c-1",
            "REPLY_TO_CLIENT": "10.0.0.1@42",
            "TTL": "3000",
            "TAGS": "T",
            "UNIQ_KEY": "ABC",
        },
    )
    reply = create_reply_message(request, b"pong")
    assert reply.topic == "ClusterA_REPLY_TOPIC" == reply_topic("ClusterA")
    assert reply.body == b"pong"
    assert dict(reply.properties) == {
        "MSG_TYPE": "reply",
        "CORRELATION_ID": "c-1",
        "REPLY_TO_CLIENT": "10.0.0.1@42",
        "TTL": "3000",
    }
    assert is_reply(encode_properties(reply.properties))


def test_reply_to_a_message_without_cluster_is_refused() -> None:
    with pytest.raises(ClientError) as caught:
        create_reply_message(Message(topic="T", body=b"x", properties={"TTL": "1"}), b"y")
    assert caught.value.code == 10007
    assert str(caught.value) == (
        "create reply message fail, requestMessage error, property[CLUSTER] is null."
    )


def test_request_properties_follow_the_message_own() -> None:
    own: JavaHashMap[str, str] = JavaHashMap()
    own["TAGS"] = "T"
    own["WAIT"] = "true"
    prepared = request_message(Message("RpcTopic", b"q", own, flag=3), "c-2", "me@1", 2500)
    assert prepared.flag == 3 and prepared.body == b"q"
    expected: JavaHashMap[str, str] = JavaHashMap()
    for key, value in [
        ("TAGS", "T"),
        ("WAIT", "true"),
        ("CORRELATION_ID", "c-2"),
        ("REPLY_TO_CLIENT", "me@1"),
        ("TTL", "2500"),
    ]:
        expected[key] = value
    assert list(prepared.properties.items()) == list(expected.items())
    assert not is_reply(encode_properties(prepared.properties))


@pytest.mark.parametrize(
    ("properties", "reply"),
    [
        ("MSG_TYPE\x01reply\x02", True),
        ("TAGS\x01a\x02MSG_TYPE\x01reply", True),
        ("MSG_TYPE\x01replyish\x02", False),
        ("XMSG_TYPE\x01reply\x02", False),
        # Java drops an entry with two separators: no MSG_TYPE at all.
        ("TAGS\x01MSG_TYPE\x01reply\x02", False),
        ("", False),
        (None, False),
    ],
)
def test_which_sends_are_replies(properties: str | None, reply: bool) -> None:
    assert is_reply(properties) is reply


def test_request_messages_get_cluster_others_stay_verbatim() -> None:
    plain = "WAIT\x01true\x02TAGS\x01a\x02"
    assert with_request_cluster(plain, "C") is plain
    lookalike = "XREPLY_TO_CLIENT\x01me\x02"
    assert with_request_cluster(lookalike, "C") is lookalike
    text = encode_properties(
        {"WAIT": "true", "REPLY_TO_CLIENT": "me@1", "CORRELATION_ID": "c", "TTL": "9"}
    )
    stored = with_request_cluster(text, "ClusterB")
    assert decode_properties(stored) == {**decode_properties(text), "CLUSTER": "ClusterB"}
    # Re-encoded in Java's HashMap order, not appended.
    table: JavaHashMap[str, str] = JavaHashMap()
    for key, value in decode_properties(text).items():
        table[key] = value
    table["CLUSTER"] = "ClusterB"
    assert stored == encode_properties(table)
    assert not stored.endswith("CLUSTER\x01ClusterB\x02")


def test_request_timeout_error_is_a_client_error() -> None:
    error = RequestTimeoutError("late")
    assert isinstance(error, ClientError) and error.code == 10006
