"""Request signatures: checked against HmacSHA1 computed here by hand and
against what Java 4.7.0's AclClientRPCHook put on the wire in the captures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

from pyrocket.acl.signing import (
    SessionCredentials,
    calculate_signature,
    sign_request,
    signed_content,
)
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand, decode_payload
from pyrocket.protocol.headers import SendMessageRequestHeaderV2
from tests.vectorset import scenario_files

#: The account of the distribution's conf/tools.yml, which signed the captures.
TOOLS_ACCESS_KEY = "rocketmq2"
TOOLS_SECRET_KEY = "12345678"


def by_hand(secret: str, data: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha1).digest()).decode()


def test_content_is_sorted_values_then_body() -> None:
    ext = {"b": "TopicA", "AccessKey": "akakakak", "a": "group", "Signature": "old"}
    # Sorted by name: AccessKey, a, b (Signature left out); values joined.
    assert signed_content(ext, b"\x00body") == b"akakakakgroupTopicA\x00body"
    assert signed_content(None, None) == b""
    assert signed_content({"_UNIQUE_KEY_QUERY": "true", "topic": "t"}, None) == b"t"


def test_signature_is_base64_hmac_sha1() -> None:
    data = "héllo".encode()
    assert calculate_signature(data, "secret-ü") == by_hand("secret-ü", data)
    # A fixed value: HmacSHA1("12345678", "abc").
    assert calculate_signature(b"abc", "12345678") == by_hand("12345678", b"abc")


def test_sign_request_adds_access_key_and_signature() -> None:
    header = SendMessageRequestHeaderV2(
        producer_group="pg",
        topic="TopicA",
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=1,
        sys_flag=0,
        born_timestamp=1700000000000,
        flag=0,
        properties="",
    )
    request = RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=b"payload")
    signed = sign_request(request, SessionCredentials("access-key", "secret-key"))
    ext = dict(signed.ext_fields or {})
    assert ext["AccessKey"] == "access-key"
    unsigned = {k: v for k, v in ext.items() if k != "Signature"}
    expected = "".join(unsigned[k] for k in sorted(unsigned)).encode() + b"payload"
    assert ext["Signature"] == by_hand("secret-key", expected)
    # Every header field is still there, unchanged.
    assert {k: v for k, v in ext.items() if k not in ("AccessKey", "Signature")} == dict(
        request.ext_fields or {}
    )


def test_security_token_is_signed_too() -> None:
    request = RemotingCommand.request(RequestCode.GET_BROKER_CLUSTER_INFO)
    signed = sign_request(request, SessionCredentials("access-key", "secret-key", "tok"))
    ext = signed.ext_fields or {}
    assert ext["SecurityToken"] == "tok"
    assert ext["Signature"] == by_hand("secret-key", b"access-keytok")


def java_signed_requests() -> list[RemotingCommand]:
    found = []
    for path in scenario_files():
        for line in Path(path).read_text().splitlines():
            record = json.loads(line)
            header = record.get("header") or {}
            ext = header.get("extFields") or {}
            if record.get("dir") == "request" and ext.get("AccessKey") == TOOLS_ACCESS_KEY:
                found.append(decode_payload(bytes.fromhex(record["frame_hex"])[4:]))
    return found


def test_java_signatures_in_the_captures_verify() -> None:
    requests = java_signed_requests()
    assert len(requests) > 20
    for request in requests:
        ext = request.ext_fields or {}
        content = signed_content(ext, request.body)
        assert ext["Signature"] == by_hand(TOOLS_SECRET_KEY, content), request.code


def test_signing_reproduces_java_frames() -> None:
    """Signing the unsigned request gives Java's ext fields, in Java's order."""
    credentials = SessionCredentials(TOOLS_ACCESS_KEY, TOOLS_SECRET_KEY)
    for request in java_signed_requests():
        ext = request.ext_fields or {}
        bare = {k: v for k, v in ext.items() if k not in ("AccessKey", "Signature")}
        again = sign_request(request.replace(ext_fields=bare), credentials)
        assert list((again.ext_fields or {}).items()) == list(ext.items()), request.code


def test_credentials_repr_hides_the_secret() -> None:
    assert "secret-key" not in repr(SessionCredentials("access-key", "secret-key"))
