"""The client's requests against what Java 4.7.0's client sent in the golden
captures (``produce-consume`` and friends): the same inputs give the same
properties strings, SEND_MESSAGE_V2 fields in the same order, the same
heartbeat bodies and the same UNREGISTER_CLIENT fields. Values the capture
host chose (timestamps, queue ids, subscription versions) are the only
differences allowed."""

from __future__ import annotations

import functools
import re

import pytest
import trio

from pyrocket.client.consumer import PushConsumer
from pyrocket.client.instance import CLIENT_INNER_PRODUCER_GROUP, ClientInstance
from pyrocket.client.producer import Producer, new_message, with_unique_id
from pyrocket.protocol.bodies.client import ConsumeType, HeartbeatData
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, decode
from pyrocket.protocol.headers import SendMessageRequestHeaderV2
from pyrocket.protocol.javahash import JavaHashMap
from pyrocket.protocol.message import (
    Message,
    MessageConst,
    MessageSysFlag,
    decode_properties,
    decompress_body,
    encode_properties,
)
from tests.client.helpers import ScriptedCluster, route_to
from tests.client.test_producer import stored
from tests.remoting.helpers import running_server
from tests.vectorset import iter_all_records

#: Properties new_message sets from its arguments; the rest are user properties.
_BUILT = {"TAGS", "KEYS", "WAIT", "DELAY", "UNIQ_KEY"}


#: Processes in the captures that run Java's client library.
_JAVA_CLIENTS = {"java-producer", "java-push-consumer", "java-pull-consumer"}


def java_requests(code: int) -> list[RemotingCommand]:
    """Every request with ``code`` a Java producer or consumer sent."""
    return [
        decode(r.frame)
        for r in iter_all_records()
        if r.is_frame
        and r.is_request
        and r.code == code
        and r.sender == "client"
        and r.raw.get("client") in _JAVA_CLIENTS
    ]


def java_sends() -> list[SendMessageRequestHeaderV2]:
    return [c.decode_header(SendMessageRequestHeaderV2) for c in java_requests(310)]


def rebuilt(header: SendMessageRequestHeaderV2) -> Message:
    """The message a user would build for what Java sent."""
    props = decode_properties(header.properties or "")
    if set(props) - _BUILT - {k for k in props if k not in MessageConst.RESERVED_NAMES}:
        pytest.skip("a frame with system properties new_message does not set")
    return new_message(
        header.topic,
        b"body",
        tags=props.get("TAGS"),
        keys=props.get("KEYS"),
        properties={k: v for k, v in props.items() if k not in _BUILT},
        flag=header.flag,
        wait_store_msg_ok=props.get("WAIT", "true") == "true",
        delay_level=int(props.get("DELAY", "0")),
    )


def test_properties_strings_match_java() -> None:
    headers = java_sends()
    assert headers
    for header in headers:
        unique = decode_properties(header.properties or "")["UNIQ_KEY"]
        ours = encode_properties(with_unique_id(rebuilt(header), functools.partial(str, unique)))
        assert ours == header.properties


async def test_send_fields_match_java() -> None:
    java = java_requests(310)
    assert java
    cluster = ScriptedCluster()
    cluster.handlers[RequestCode.SEND_MESSAGE_V2] = lambda r: stored(r, 0)
    with trio.fail_after(10):
        async with running_server(cluster.server) as addr:
            cluster.route = lambda: route_to([("broker-a", addr)])
            for request in java:
                header = request.decode_header(SendMessageRequestHeaderV2)
                built = rebuilt(header)
                # The same UNIQ_KEY as Java's, so the whole properties string matches.
                properties: JavaHashMap[str, str] = JavaHashMap.copy_of(built.properties)
                unique = decode_properties(header.properties or "")["UNIQ_KEY"]
                properties[MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX] = unique
                body = request.body or b""
                if header.sys_flag & MessageSysFlag.COMPRESSED_FLAG:
                    body = decompress_body(body)  # we compress it again, to the same bytes
                message = Message(built.topic, body, properties, built.flag)
                async with Producer(header.producer_group, [addr], client_ip="127.0.0.1") as p:
                    if request.flag & 2:  # oneway
                        await p.send_oneway(message)
                    else:
                        await p.send(message)
    sends = cluster.seen(RequestCode.SEND_MESSAGE_V2)
    # Oneway sends may be in flight when the producer closes: wait for them.
    with trio.fail_after(5):
        while len(sends) < len(java):
            await trio.sleep(0.01)
            sends = [r for r in cluster.requests if r.code == RequestCode.SEND_MESSAGE_V2]
    by_key = {
        decode_properties(r.decode_header(SendMessageRequestHeaderV2).properties or "")[
            "UNIQ_KEY"
        ]: r
        for r in sends
    }
    # UNREGISTER_CLIENT for a producer group: the same fields in the same order.
    java_byes = {
        tuple(r.ext_fields or {})
        for r in java_requests(35)
        if r.ext_fields and "producerGroup" in r.ext_fields
    }
    assert java_byes == {
        tuple(r.ext_fields or {}) for r in cluster.seen(RequestCode.UNREGISTER_CLIENT)
    }
    for request in java:
        theirs = dict(request.ext_fields or {})
        mine = dict(by_key[decode_properties(theirs["i"])["UNIQ_KEY"]].ext_fields or {})
        assert list(mine) == list(theirs)  # same fields, same order
        for name in ("e", "g"):  # queue id and born timestamp: the sender's choice
            mine.pop(name), theirs.pop(name)
        assert mine == theirs
        ours = by_key[decode_properties(theirs["i"])["UNIQ_KEY"]]
        assert ours.body == request.body
        assert ours.flag & 2 == request.flag & 2  # oneway or not


def test_producer_heartbeats_match_java() -> None:
    checked = 0
    for request in java_requests(34):
        data = HeartbeatData.decode(request.body or b"")
        if data.consumer_data_set or data.client_id is None:
            continue
        ip, _, instance = data.client_id.partition("@")
        groups = tuple(
            p.group_name
            for p in data.producer_data_set
            if p.group_name and p.group_name != CLIENT_INNER_PRODUCER_GROUP
        )
        mine = ClientInstance(
            ["127.0.0.1:9876"],
            client_ip=ip,
            instance_name=instance,
            producer_groups=functools.partial(tuple, groups),
        )
        assert mine.heartbeat_data().encode() == request.body
        checked += 1
    assert checked


def test_push_consumer_heartbeats_match_java() -> None:
    checked = 0
    for request in java_requests(34):
        data = HeartbeatData.decode(request.body or b"")
        pushers = [
            c for c in data.consumer_data_set if c.consume_type is ConsumeType.CONSUME_PASSIVELY
        ]
        if len(pushers) != 1 or data.client_id is None:
            continue
        (theirs,) = pushers
        assert theirs.group_name and theirs.consume_from_where
        ip, _, instance = data.client_id.partition("@")
        consumer = PushConsumer(
            theirs.group_name,
            ["127.0.0.1:9876"],
            client_ip=ip,
            instance_name=instance,
            consume_from=theirs.consume_from_where,
        )
        for subscription in theirs.subscription_data_set:
            assert subscription.topic is not None
            if not subscription.topic.startswith("%RETRY%"):
                consumer.subscribe(subscription.topic, subscription.sub_string or "*")
        ours = consumer.instance.heartbeat_data().encode()

        # Subscription versions are creation times.
        def versionless(body: bytes) -> bytes:
            return re.sub(rb'"subVersion":\d+', b'"subVersion":0', body)

        assert versionless(ours) == versionless(request.body or b"")
        checked += 1
    assert checked
