"""The check of one request, rule by rule, against Java's texts."""

from __future__ import annotations

import pytest

from pyrocket.acl.plain import load_text
from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.acl.validator import check, needed_resources
from pyrocket.protocol.bodies.client import ConsumerData, HeartbeatData, SubscriptionData
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand

ACL = load_text(
    """\
globalWhiteRemoteAddresses:
- 10.10.103.*
accounts:
- accessKey: normaluser
  secretKey: normalsecret
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - topicA=DENY
  - topicB=PUB|SUB
  - topicC=SUB
  - topicD=PUB
  groupPerms:
  - groupA=DENY
  - groupB=PUB|SUB
- accessKey: adminuser
  secretKey: adminsecret
  admin: true
- accessKey: whiteuser
  secretKey: whitesecret
  whiteRemoteAddress: 192.168.1.*
"""
)
PEER = "127.0.0.1:50000"
NORMAL = SessionCredentials("normaluser", "normalsecret")
ADMIN = SessionCredentials("adminuser", "adminsecret")
MANAGER = "org.apache.rocketmq.acl.plain.PlainPermissionManager"
EXC = "org.apache.rocketmq.acl.common.AclException"


def request(
    code: int, ext: dict[str, str] | None = None, body: bytes | None = None
) -> RemotingCommand:
    return RemotingCommand(code=code, ext_fields=ext, body=body)


def send(topic: str) -> RemotingCommand:
    return request(RequestCode.SEND_MESSAGE_V2, {"a": "pg", "b": topic}, b"x")


def remark(command: RemotingCommand, credentials: SessionCredentials | None = NORMAL) -> str | None:
    signed = command if credentials is None else sign_request(command, credentials)
    refusal = check(ACL, signed, PEER)
    return None if refusal is None else refusal.remark


def test_signed_and_allowed() -> None:
    assert remark(send("topicB")) is None
    assert remark(send("topicD")) is None


def test_topic_perms() -> None:
    assert remark(send("topicA")) == (
        f"{EXC}: No default permission for topic:topicA, "
        f"{MANAGER}.checkPerm(PlainPermissionManager.java:346)"
    )
    assert remark(send("topicC")) is not None  # SUB only: no PUB
    assert remark(send("other")) == (
        f"{EXC}: No default permission for topic:other, "
        f"{MANAGER}.checkPerm(PlainPermissionManager.java:341)"
    )


def pull(topic: str, group: str) -> RemotingCommand:
    ext = {"topic": topic, "consumerGroup": group, "queueId": "0"}
    return request(RequestCode.PULL_MESSAGE, ext)


def test_pull_needs_topic_and_group() -> None:
    assert remark(pull("topicC", "groupB")) is None
    assert remark(pull("topicC", "anygroup")) is None  # default group perm SUB
    assert remark(pull("topicD", "groupB")) is not None  # PUB only
    refused = remark(pull("topicC", "groupA"))
    assert refused is not None and "No default permission for group:groupA" in refused


def test_heartbeat_groups_and_subscriptions() -> None:
    def heartbeat(group: str, topic: str) -> RemotingCommand:
        data = HeartbeatData(
            client_id="c",
            consumer_data_set=(
                ConsumerData(
                    group_name=group,
                    subscription_data_set=(SubscriptionData.for_expression(topic, "*"),),
                ),
            ),
        )
        return request(RequestCode.HEART_BEAT, {}, data.encode())

    assert remark(heartbeat("groupB", "topicB")) is None
    assert "topic:topicA" in (remark(heartbeat("groupB", "topicA")) or "")
    garbled = remark(request(RequestCode.HEART_BEAT, {}, b"{not json"))
    assert garbled is not None and "PlainAccessValidator.parse" in garbled


def test_needed_resources_table() -> None:
    assert needed_resources(request(RequestCode.SEND_MESSAGE, {"topic": "t"})) == {"t": 4}
    assert needed_resources(
        request(RequestCode.CONSUMER_SEND_MSG_BACK, {"originTopic": "t", "group": "g"})
    ) == {"t": 4, "%RETRY%g": 8}
    assert needed_resources(request(RequestCode.QUERY_MESSAGE, {"topic": "t"})) == {"t": 8}
    assert needed_resources(
        request(RequestCode.UPDATE_CONSUMER_OFFSET, {"topic": "t", "consumerGroup": "g"})
    ) == {"%RETRY%g": 8, "t": 8}
    assert needed_resources(
        request(RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "g"})
    ) == {"%RETRY%g": 8}
    assert needed_resources(
        request(RequestCode.UNREGISTER_CLIENT, {"clientID": "c", "consumerGroup": "g"})
    ) == {"%RETRY%g": 8}
    assert needed_resources(request(RequestCode.GET_BROKER_CLUSTER_INFO, {})) == {}


def test_admin_codes() -> None:
    create = request(RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "t"})
    assert remark(create) == (
        f"{EXC}: Need admin permission for request code=17, but accessKey=normaluser is not, "
        f"{MANAGER}.checkPerm(PlainPermissionManager.java:316)"
    )
    assert remark(create, ADMIN) is None
    # Admin accounts without perms of their own may use every topic.
    assert remark(send("topicA"), ADMIN) is None
    # Beyond Java: the ACL admin requests need an admin account too.
    acl_edit = request(RequestCode.UPDATE_AND_CREATE_ACL_CONFIG, {"accessKey": "xxxxxxxx"})
    assert remark(acl_edit) is not None and remark(acl_edit, ADMIN) is None


def test_unsigned_unknown_and_forged() -> None:
    assert remark(send("topicB"), None) == (
        f"{EXC}: No accessKey is configured, {MANAGER}.validate(PlainPermissionManager.java:394)"
    )
    assert remark(send("topicB"), SessionCredentials("nobodyhome", "whatever1")) == (
        f"{EXC}: No acl config for nobodyhome, {MANAGER}.validate(PlainPermissionManager.java:398)"
    )
    assert remark(send("topicB"), SessionCredentials("normaluser", "wrongsecret")) == (
        f"{EXC}: Check signature failed for accessKey=normaluser, "
        f"{MANAGER}.validate(PlainPermissionManager.java:410)"
    )
    # A signed request changed on the way fails the check.
    signed = sign_request(send("topicB"), NORMAL)
    tampered = signed.replace(body=b"other body")
    assert check(ACL, tampered, PEER) is not None


@pytest.mark.parametrize(("peer", "allowed"), [("10.10.103.5:1", True), ("10.10.104.5:1", False)])
def test_global_white_list_needs_no_signature(peer: str, allowed: bool) -> None:
    assert (check(ACL, send("topicA"), peer) is None) is allowed


def test_account_white_address_skips_signature_and_perms() -> None:
    unsigned_with_key = request(
        RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "t", "AccessKey": "whiteuser"}
    )
    assert check(ACL, unsigned_with_key, "192.168.1.20:5") is None
    assert check(ACL, unsigned_with_key, "192.168.2.20:5") is not None
