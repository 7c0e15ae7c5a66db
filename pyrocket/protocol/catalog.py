"""Which typed body goes with which request code.

A body's type follows from the request code alone (for an answer: the code of
the request it answers), except REGISTER_BROKER's request body, whose form the
``compressed`` ext field decides. Message bodies (SEND_MESSAGE*, the PULL_MESSAGE
answer, SEND_BATCH_MESSAGE) are not JSON and are not listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pyrocket.protocol.bodies import (
    Bean,
    ClusterInfo,
    ConsumerOffsetSerializeWrapper,
    ConsumeStats,
    DataVersion,
    DelayOffsetSerializeWrapper,
    GetConsumerListByGroupResponseBody,
    GroupList,
    HeartbeatData,
    KVTable,
    LockBatchRequestBody,
    LockBatchResponseBody,
    Properties,
    RegisterBrokerBody,
    SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
    TopicList,
    TopicRouteData,
    TopicStatsTable,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.codes import RequestCode as R


@dataclass(frozen=True, slots=True)
class BodyCodec:
    """How to decode and re-encode one kind of body.

    ``decode`` raises ProtocolError; ``encode`` gives back Java's bytes for a
    value ``decode`` returned.
    """

    name: str
    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]


def _bean(cls: type[Bean]) -> BodyCodec:
    return BodyCodec(cls.__name__, cls.decode, cls.encode)


_PROPERTIES: Final = BodyCodec("Properties", Properties.decode, Properties.encode)
_REGISTER_PLAIN: Final = BodyCodec(
    "RegisterBrokerBody", RegisterBrokerBody.decode, RegisterBrokerBody.encode
)
# Re-encoding keeps the decoded topic order: the bytes came from Java's copy
# of the table already (see RegisterBrokerBody.encode).
_REGISTER_COMPRESSED: Final = BodyCodec(
    "RegisterBrokerBody(compressed)",
    lambda data: RegisterBrokerBody.decode(data, compressed=True),
    lambda body: body.encode(compress=True, clone_order=False),
)

_REQUEST_BODIES: Final[dict[int, BodyCodec]] = {
    R.QUERY_DATA_VERSION: _bean(DataVersion),
    R.HEART_BEAT: _bean(HeartbeatData),
    R.LOCK_BATCH_MQ: _bean(LockBatchRequestBody),
    R.UNLOCK_BATCH_MQ: _bean(UnlockBatchRequestBody),
    R.UPDATE_NAMESRV_CONFIG: _PROPERTIES,
    R.UPDATE_BROKER_CONFIG: _PROPERTIES,
}

_TOPIC_LIST: Final = _bean(TopicList)

_RESPONSE_BODIES: Final[dict[int, BodyCodec]] = {
    R.REGISTER_BROKER: _bean(KVTable),
    R.QUERY_DATA_VERSION: _bean(DataVersion),
    R.GET_ROUTEINFO_BY_TOPIC: _bean(TopicRouteData),
    R.GET_BROKER_CLUSTER_INFO: _bean(ClusterInfo),
    R.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: _TOPIC_LIST,
    R.GET_TOPICS_BY_CLUSTER: _TOPIC_LIST,
    R.GET_SYSTEM_TOPIC_LIST_FROM_NS: _TOPIC_LIST,
    R.GET_UNIT_TOPIC_LIST: _TOPIC_LIST,
    R.GET_HAS_UNIT_SUB_TOPIC_LIST: _TOPIC_LIST,
    R.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST: _TOPIC_LIST,
    R.GET_KVLIST_BY_NAMESPACE: _bean(KVTable),
    R.GET_NAMESRV_CONFIG: _PROPERTIES,
    R.GET_BROKER_CONFIG: _PROPERTIES,
    R.GET_BROKER_RUNTIME_INFO: _bean(KVTable),
    R.GET_CONSUMER_LIST_BY_GROUP: _bean(GetConsumerListByGroupResponseBody),
    R.GET_TOPIC_STATS_INFO: _bean(TopicStatsTable),
    R.GET_CONSUME_STATS: _bean(ConsumeStats),
    R.QUERY_TOPIC_CONSUME_BY_WHO: _bean(GroupList),
    R.GET_ALL_TOPIC_CONFIG: _bean(TopicConfigSerializeWrapper),
    R.GET_ALL_SUBSCRIPTIONGROUP_CONFIG: _bean(SubscriptionGroupWrapper),
    R.GET_ALL_CONSUMER_OFFSET: _bean(ConsumerOffsetSerializeWrapper),
    R.GET_ALL_DELAY_OFFSET: _bean(DelayOffsetSerializeWrapper),
    R.LOCK_BATCH_MQ: _bean(LockBatchResponseBody),
}


def request_body_codec(code: int, ext_fields: Mapping[str, str] | None = None) -> BodyCodec | None:
    """The body type of a request with ``code`` and ``ext_fields``, or None."""
    if code == R.REGISTER_BROKER:
        compressed = (ext_fields or {}).get("compressed", "false").lower() == "true"
        return _REGISTER_COMPRESSED if compressed else _REGISTER_PLAIN
    return _REQUEST_BODIES.get(code)


def response_body_codec(request_code: int) -> BodyCodec | None:
    """The body type of an answer to a request with ``request_code``, or None."""
    return _RESPONSE_BODIES.get(request_code)


def all_body_codecs() -> list[BodyCodec]:
    """Every codec listed here, once each (for fuzzing and property tests)."""
    seen: dict[str, BodyCodec] = {}
    for codec in [_REGISTER_PLAIN, _REGISTER_COMPRESSED, *_REQUEST_BODIES.values()]:
        seen.setdefault(codec.name, codec)
    for codec in _RESPONSE_BODIES.values():
        seen.setdefault(codec.name, codec)
    return list(seen.values())
