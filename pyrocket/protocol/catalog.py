"""Which typed header and body go with which request code.

Java decodes a request's ext fields with the header class its processor names
for the code, and an answer's with the class the caller expects; these tables
record those pairings. A body's type likewise follows from the request code
(for an answer: the code of the request it answers), except REGISTER_BROKER's
request body, whose form the ``compressed`` ext field decides. Message bodies
(SEND_MESSAGE*, the PULL_MESSAGE answer, SEND_BATCH_MESSAGE) are not JSON and
are not listed here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pyrocket.protocol import headers as h
from pyrocket.protocol.bodies import (
    Bean,
    ClusterInfo,
    ConsumerConnection,
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
    ProducerConnection,
    Properties,
    RegisterBrokerBody,
    SubscriptionGroupConfig,
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
    R.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: _bean(SubscriptionGroupConfig),
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
    R.GET_CONSUMER_CONNECTION_LIST: _bean(ConsumerConnection),
    R.GET_PRODUCER_CONNECTION_LIST: _bean(ProducerConnection),
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


# ---------------------------------------------------------------------------
# Headers

_REQUEST_HEADERS: Final[dict[int, type[h.CommandHeader]]] = {
    # NameServer (DefaultRequestProcessor)
    R.PUT_KV_CONFIG: h.PutKVConfigRequestHeader,
    R.GET_KV_CONFIG: h.GetKVConfigRequestHeader,
    R.DELETE_KV_CONFIG: h.DeleteKVConfigRequestHeader,
    R.QUERY_DATA_VERSION: h.QueryDataVersionRequestHeader,
    R.REGISTER_BROKER: h.RegisterBrokerRequestHeader,
    R.UNREGISTER_BROKER: h.UnRegisterBrokerRequestHeader,
    R.GET_ROUTEINFO_BY_TOPIC: h.GetRouteInfoRequestHeader,
    R.WIPE_WRITE_PERM_OF_BROKER: h.WipeWritePermOfBrokerRequestHeader,
    R.DELETE_TOPIC_IN_NAMESRV: h.DeleteTopicInNamesrvRequestHeader,
    R.GET_KVLIST_BY_NAMESPACE: h.GetKVListByNamespaceRequestHeader,
    R.GET_TOPICS_BY_CLUSTER: h.GetTopicsByClusterRequestHeader,
    # Broker
    R.SEND_MESSAGE: h.SendMessageRequestHeader,
    R.SEND_MESSAGE_V2: h.SendMessageRequestHeaderV2,
    R.SEND_BATCH_MESSAGE: h.SendMessageRequestHeaderV2,
    R.SEND_REPLY_MESSAGE: h.SendMessageRequestHeader,
    R.SEND_REPLY_MESSAGE_V2: h.SendMessageRequestHeaderV2,
    R.CONSUMER_SEND_MSG_BACK: h.ConsumerSendMsgBackRequestHeader,
    R.PULL_MESSAGE: h.PullMessageRequestHeader,
    R.QUERY_MESSAGE: h.QueryMessageRequestHeader,
    R.VIEW_MESSAGE_BY_ID: h.ViewMessageRequestHeader,
    R.QUERY_CONSUMER_OFFSET: h.QueryConsumerOffsetRequestHeader,
    R.UPDATE_CONSUMER_OFFSET: h.UpdateConsumerOffsetRequestHeader,
    R.GET_MAX_OFFSET: h.GetMaxOffsetRequestHeader,
    R.GET_MIN_OFFSET: h.GetMinOffsetRequestHeader,
    R.GET_EARLIEST_MSG_STORETIME: h.GetEarliestMsgStoretimeRequestHeader,
    R.SEARCH_OFFSET_BY_TIMESTAMP: h.SearchOffsetRequestHeader,
    R.QUERY_CONSUME_QUEUE: h.QueryConsumeQueueRequestHeader,
    R.UNREGISTER_CLIENT: h.UnregisterClientRequestHeader,
    R.GET_CONSUMER_LIST_BY_GROUP: h.GetConsumerListByGroupRequestHeader,
    R.END_TRANSACTION: h.EndTransactionRequestHeader,
    R.RESUME_CHECK_HALF_MESSAGE: h.ResumeCheckHalfMessageRequestHeader,
    R.UPDATE_AND_CREATE_TOPIC: h.CreateTopicRequestHeader,
    R.DELETE_TOPIC_IN_BROKER: h.DeleteTopicRequestHeader,
    R.GET_TOPIC_STATS_INFO: h.GetTopicStatsInfoRequestHeader,
    R.GET_CONSUME_STATS: h.GetConsumeStatsRequestHeader,
    R.GET_BROKER_CONSUME_STATS: h.GetConsumeStatsInBrokerHeader,
    R.QUERY_TOPIC_CONSUME_BY_WHO: h.QueryTopicConsumeByWhoRequestHeader,
    R.GET_CONSUMER_CONNECTION_LIST: h.GetConsumerConnectionListRequestHeader,
    R.GET_PRODUCER_CONNECTION_LIST: h.GetProducerConnectionListRequestHeader,
    R.DELETE_SUBSCRIPTIONGROUP: h.DeleteSubscriptionGroupRequestHeader,
    R.INVOKE_BROKER_TO_RESET_OFFSET: h.ResetOffsetRequestHeader,
    R.INVOKE_BROKER_TO_GET_CONSUMER_STATUS: h.GetConsumerStatusRequestHeader,
    R.QUERY_CONSUME_TIME_SPAN: h.QueryConsumeTimeSpanRequestHeader,
    R.QUERY_CORRECTION_OFFSET: h.QueryCorrectionOffsetHeader,
    R.CLONE_GROUP_OFFSET: h.CloneGroupOffsetRequestHeader,
    R.VIEW_BROKER_STATS_DATA: h.ViewBrokerStatsDataRequestHeader,
    R.GET_CONSUMER_RUNNING_INFO: h.GetConsumerRunningInfoRequestHeader,
    R.CONSUME_MESSAGE_DIRECTLY: h.ConsumeMessageDirectlyResultRequestHeader,
    R.REGISTER_FILTER_SERVER: h.RegisterFilterServerRequestHeader,
    R.UPDATE_AND_CREATE_ACL_CONFIG: h.CreateAccessConfigRequestHeader,
    R.DELETE_ACL_CONFIG: h.DeleteAccessConfigRequestHeader,
    R.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG: h.UpdateGlobalWhiteAddrsConfigRequestHeader,
    # Broker to client
    R.NOTIFY_CONSUMER_IDS_CHANGED: h.NotifyConsumerIdsChangedRequestHeader,
    R.CHECK_TRANSACTION_STATE: h.CheckTransactionStateRequestHeader,
    R.RESET_CONSUMER_CLIENT_OFFSET: h.ResetOffsetRequestHeader,
    R.GET_CONSUMER_STATUS_FROM_CLIENT: h.GetConsumerStatusRequestHeader,
    R.PUSH_REPLY_MESSAGE_TO_CLIENT: h.ReplyMessageRequestHeader,
    # Filter server
    R.REGISTER_MESSAGE_FILTER_CLASS: h.RegisterMessageFilterClassRequestHeader,
}

_RESPONSE_HEADERS: Final[dict[int, type[h.CommandHeader]]] = {
    R.GET_KV_CONFIG: h.GetKVConfigResponseHeader,
    R.QUERY_DATA_VERSION: h.QueryDataVersionResponseHeader,
    R.REGISTER_BROKER: h.RegisterBrokerResponseHeader,
    R.WIPE_WRITE_PERM_OF_BROKER: h.WipeWritePermOfBrokerResponseHeader,
    R.SEND_MESSAGE: h.SendMessageResponseHeader,
    R.SEND_MESSAGE_V2: h.SendMessageResponseHeader,
    R.SEND_BATCH_MESSAGE: h.SendMessageResponseHeader,
    R.SEND_REPLY_MESSAGE: h.SendMessageResponseHeader,
    R.SEND_REPLY_MESSAGE_V2: h.SendMessageResponseHeader,
    R.PULL_MESSAGE: h.PullMessageResponseHeader,
    R.QUERY_MESSAGE: h.QueryMessageResponseHeader,
    R.VIEW_MESSAGE_BY_ID: h.ViewMessageResponseHeader,
    R.QUERY_CONSUMER_OFFSET: h.QueryConsumerOffsetResponseHeader,
    R.UPDATE_CONSUMER_OFFSET: h.UpdateConsumerOffsetResponseHeader,
    R.GET_MAX_OFFSET: h.GetMaxOffsetResponseHeader,
    R.GET_MIN_OFFSET: h.GetMinOffsetResponseHeader,
    R.GET_EARLIEST_MSG_STORETIME: h.GetEarliestMsgStoretimeResponseHeader,
    R.SEARCH_OFFSET_BY_TIMESTAMP: h.SearchOffsetResponseHeader,
    R.UNREGISTER_CLIENT: h.UnregisterClientResponseHeader,
    R.GET_CONSUMER_LIST_BY_GROUP: h.GetConsumerListByGroupResponseHeader,
    R.END_TRANSACTION: h.EndTransactionResponseHeader,
    R.GET_ALL_TOPIC_CONFIG: h.GetAllTopicConfigResponseHeader,
    R.GET_BROKER_CONFIG: h.GetBrokerConfigResponseHeader,
    R.GET_BROKER_CLUSTER_ACL_INFO: h.GetBrokerAclConfigResponseHeader,
    R.REGISTER_FILTER_SERVER: h.RegisterFilterServerResponseHeader,
}


def request_header_type(code: int) -> type[h.CommandHeader] | None:
    """The header class Java decodes a request with ``code`` into, or None
    for codes whose requests carry no header."""
    return _REQUEST_HEADERS.get(code)


def response_header_type(request_code: int) -> type[h.CommandHeader] | None:
    """The header class of an answer to a request with ``request_code``."""
    return _RESPONSE_HEADERS.get(request_code)


def all_header_types() -> list[type[h.CommandHeader]]:
    """Every header class listed here, once each."""
    return list(dict.fromkeys([*_REQUEST_HEADERS.values(), *_RESPONSE_HEADERS.values()]))
