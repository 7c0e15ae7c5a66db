"""Typed custom headers: the ``extFields`` of a command as a frozen dataclass.

Java builds ``extFields`` from a ``CommandCustomHeader`` by walking the class's
declared fields in declaration order and putting each non-null value, as its
``toString()``, into a fresh ``HashMap``; reading does the reverse, parsing each
field by its Java type. A pyrocket header declares the same fields, in the same
order, with :func:`jfield` giving the Java name and type::

    @dataclass(frozen=True, slots=True)
    class GetRouteInfoRequestHeader(CommandHeader):
        topic: str = jfield("topic", STRING, required=True)

Decoding follows Java (``@CFNotNull`` fields must be present: "the custom
field <name> is null") except that a value that does not parse as its Java type
is an error naming the field and value, where Java logs and leaves the default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, ClassVar, Self

from pyrocket.errors import CommandError
from pyrocket.protocol.fastjson import java_double
from pyrocket.protocol.javahash import hashmap_order


class JType(Enum):
    """The Java type of a header field, which decides parsing and range."""

    STRING = "String"
    INT = "Integer"
    LONG = "Long"
    BOOLEAN = "Boolean"
    DOUBLE = "Double"


STRING = JType.STRING
INT = JType.INT
LONG = JType.LONG
BOOLEAN = JType.BOOLEAN
DOUBLE = JType.DOUBLE

_JAVA_INTEGER = re.compile(r"[-+]?[0-9]+")
_JAVA_DOUBLE = re.compile(
    r"\s*[-+]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)[fFdD]?)\s*", re.ASCII
)
_RANGES = {JType.INT: (-(1 << 31), (1 << 31) - 1), JType.LONG: (-(1 << 63), (1 << 63) - 1)}


def jfield(
    wire: str,
    jtype: JType,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """Declare a header field: its Java name, Java type and ``@CFNotNull``."""
    return dataclasses.field(
        default=default, metadata={"wire": wire, "jtype": jtype, "required": required}
    )


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    attr: str
    wire: str
    jtype: JType
    required: bool


@dataclass(frozen=True, slots=True)
class CommandHeader:
    """Base of every typed header. Subclasses are frozen dataclasses whose
    fields are declared with :func:`jfield`, in the Java class's field order."""

    #: Java's HashMap capacity for the map the fields go into.
    ext_capacity: ClassVar[int | None] = None

    @classmethod
    def _specs(cls) -> tuple[_FieldSpec, ...]:
        specs = _SPECS.get(cls)
        if specs is None:
            specs = _SPECS[cls] = _specs_of(cls)
        return specs

    @classmethod
    def wire_names(cls) -> tuple[str, ...]:
        """The Java field names, in declaration order."""
        return tuple(spec.wire for spec in cls._specs())

    def to_ext_fields(self, preceding: Mapping[str, str] | None = None) -> dict[str, str]:
        """The ext fields Java would send, in Java's HashMap iteration order.

        ``preceding`` are entries already in the command's map before the
        header's fields are put (Java's ``addExtField`` before encoding, as an
        RPC hook's ``AccessKey``/``Signature``); a header field of the same name
        replaces the value and keeps the position.
        """
        present: list[tuple[str, str]] = list(preceding.items()) if preceding else []
        for spec in self._specs():
            value = getattr(self, spec.attr)
            if value is not None:
                present.append((spec.wire, _to_wire(value, spec)))
        values = dict(present)
        order = _order_for(tuple(values), self.ext_capacity)
        return {key: values[key] for key in order}

    @classmethod
    def from_ext_fields(cls, ext: Mapping[str, str]) -> Self:
        """Parse ``ext``; raises CommandError for a missing required field or a
        value that is not of the field's Java type. Unknown keys are ignored."""
        kwargs: dict[str, Any] = {}
        for spec in cls._specs():
            raw = ext.get(spec.wire)
            if raw is None:
                if spec.required:
                    raise CommandError(f"the custom field <{spec.wire}> is null")
                continue
            kwargs[spec.attr] = _from_wire(raw, spec)
        return cls(**kwargs)


_SPECS: dict[type[CommandHeader], tuple[_FieldSpec, ...]] = {}


def _specs_of(cls: type[CommandHeader]) -> tuple[_FieldSpec, ...]:
    specs = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "wire" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with jfield()")
        specs.append(_FieldSpec(f.name, meta["wire"], meta["jtype"], meta["required"]))
    return tuple(specs)


@cache
def _order_for(keys: tuple[str, ...], capacity: int | None) -> tuple[str, ...]:
    return tuple(hashmap_order(keys, capacity))


def _to_wire(value: Any, spec: _FieldSpec) -> str:
    jtype = spec.jtype
    if jtype is JType.STRING:
        return str(value)
    if jtype is JType.BOOLEAN:
        return "true" if value else "false"
    if jtype is JType.DOUBLE:
        return java_double(float(value))
    low, high = _RANGES[jtype]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CommandError(f"header field {spec.wire}={value!r} does not fit Java {jtype.value}")
    return str(value)


def _show(raw: str) -> str:
    """``raw`` for an error message, cut short if it is long."""
    return repr(raw) if len(raw) <= 64 else repr(raw[:64]) + f"... ({len(raw)} chars)"


def _from_wire(raw: str, spec: _FieldSpec) -> Any:
    jtype = spec.jtype
    if jtype is JType.STRING:
        return raw
    if jtype is JType.BOOLEAN:
        # Boolean.parseBoolean: "true" in any case is true, everything else false.
        return raw.lower() == "true"
    if jtype is JType.DOUBLE:
        if _JAVA_DOUBLE.fullmatch(raw) is None:
            raise CommandError(f"the custom field <{spec.wire}> is not a Double: {_show(raw)}")
        return float(raw.strip().rstrip("fFdD"))
    if _JAVA_INTEGER.fullmatch(raw) is None:
        raise CommandError(f"the custom field <{spec.wire}> is not a {jtype.value}: {_show(raw)}")
    low, high = _RANGES[jtype]
    # Skip int() on absurdly long digit strings (it refuses past 4300 digits).
    value = int(raw) if len(raw) <= 40 else high + 1
    if not low <= value <= high:
        raise CommandError(
            f"the custom field <{spec.wire}> is out of {jtype.value} range: {_show(raw)}"
        )
    return value


# ---------------------------------------------------------------------------
# The headers of RocketMQ 4.7.0 (common/.../protocol/header/**). Fields are in
# each Java class's declaration order; Java primitives (never null) have a
# non-None default and are always sent, boxed types default to None (not
# sent) unless Java initializes them.

# --- NameServer (header/namesrv) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class PutKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)
    value: str = jfield("value", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVConfigResponseHeader(CommandHeader):
    value: str | None = jfield("value", STRING)


@dataclass(frozen=True, slots=True)
class DeleteKVConfigRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)
    key: str = jfield("key", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetKVListByNamespaceRequestHeader(CommandHeader):
    namespace: str = jfield("namespace", STRING, required=True)


@dataclass(frozen=True, slots=True)
class QueryDataVersionRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryDataVersionResponseHeader(CommandHeader):
    changed: bool = jfield("changed", BOOLEAN, required=True)


@dataclass(frozen=True, slots=True)
class RegisterBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    ha_server_addr: str = jfield("haServerAddr", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)
    compressed: bool = jfield("compressed", BOOLEAN, default=False)
    body_crc32: int | None = jfield("bodyCrc32", INT, default=0)


@dataclass(frozen=True, slots=True)
class RegisterBrokerResponseHeader(CommandHeader):
    """REGISTER_BROKER answer: the master's HA and broker addresses (slaves)."""

    ha_server_addr: str | None = jfield("haServerAddr", STRING)
    master_addr: str | None = jfield("masterAddr", STRING)


@dataclass(frozen=True, slots=True)
class UnRegisterBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetRouteInfoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class WipeWritePermOfBrokerRequestHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)


@dataclass(frozen=True, slots=True)
class WipeWritePermOfBrokerResponseHeader(CommandHeader):
    wipe_topic_count: int = jfield("wipeTopicCount", INT, required=True)


@dataclass(frozen=True, slots=True)
class DeleteTopicInNamesrvRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetTopicsByClusterRequestHeader(CommandHeader):
    cluster: str = jfield("cluster", STRING, required=True)


@dataclass(frozen=True, slots=True)
class RegisterOrderTopicRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    order_topic_string: str = jfield("orderTopicString", STRING, required=True)


# --- Sending ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendMessageRequestHeader(CommandHeader):
    """SEND_MESSAGE (and SEND_REPLY_MESSAGE); SEND_MESSAGE_V2 and
    SEND_BATCH_MESSAGE carry the same fields under one-letter names
    (:class:`SendMessageRequestHeaderV2`)."""

    producer_group: str = jfield("producerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    default_topic_queue_nums: int = jfield("defaultTopicQueueNums", INT, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    born_timestamp: int = jfield("bornTimestamp", LONG, required=True)
    flag: int = jfield("flag", INT, required=True)
    properties: str | None = jfield("properties", STRING)
    reconsume_times: int | None = jfield("reconsumeTimes", INT)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    batch: bool = jfield("batch", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("maxReconsumeTimes", INT)


@dataclass(frozen=True, slots=True)
class SendMessageRequestHeaderV2(CommandHeader):
    """SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE / SEND_REPLY_MESSAGE_V2: the V1
    fields with Java's one-letter wire names ``a`` to ``m``."""

    producer_group: str = jfield("a", STRING, required=True)
    topic: str = jfield("b", STRING, required=True)
    default_topic: str = jfield("c", STRING, required=True)
    default_topic_queue_nums: int = jfield("d", INT, required=True)
    queue_id: int = jfield("e", INT, required=True)
    sys_flag: int = jfield("f", INT, required=True)
    born_timestamp: int = jfield("g", LONG, required=True)
    flag: int = jfield("h", INT, required=True)
    properties: str | None = jfield("i", STRING)
    reconsume_times: int | None = jfield("j", INT)
    unit_mode: bool = jfield("k", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("l", INT)
    batch: bool = jfield("m", BOOLEAN, default=False)

    def to_v1(self) -> SendMessageRequestHeader:
        """``createSendMessageRequestHeaderV1``: the same values, long names."""
        return SendMessageRequestHeader(
            producer_group=self.producer_group,
            topic=self.topic,
            default_topic=self.default_topic,
            default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=self.queue_id,
            sys_flag=self.sys_flag,
            born_timestamp=self.born_timestamp,
            flag=self.flag,
            properties=self.properties,
            reconsume_times=self.reconsume_times,
            unit_mode=self.unit_mode,
            batch=self.batch,
            max_reconsume_times=self.max_reconsume_times,
        )

    @classmethod
    def from_v1(cls, v1: SendMessageRequestHeader) -> SendMessageRequestHeaderV2:
        """``createSendMessageRequestHeaderV2``: the same values, short names."""
        return cls(
            producer_group=v1.producer_group,
            topic=v1.topic,
            default_topic=v1.default_topic,
            default_topic_queue_nums=v1.default_topic_queue_nums,
            queue_id=v1.queue_id,
            sys_flag=v1.sys_flag,
            born_timestamp=v1.born_timestamp,
            flag=v1.flag,
            properties=v1.properties,
            reconsume_times=v1.reconsume_times,
            unit_mode=v1.unit_mode,
            max_reconsume_times=v1.max_reconsume_times,
            batch=v1.batch,
        )


@dataclass(frozen=True, slots=True)
class SendMessageResponseHeader(CommandHeader):
    msg_id: str = jfield("msgId", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    queue_offset: int = jfield("queueOffset", LONG, required=True)
    transaction_id: str | None = jfield("transactionId", STRING)


@dataclass(frozen=True, slots=True)
class ReplyMessageRequestHeader(CommandHeader):
    """PUSH_REPLY_MESSAGE_TO_CLIENT: a reply message pushed to its requester."""

    producer_group: str = jfield("producerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    default_topic_queue_nums: int = jfield("defaultTopicQueueNums", INT, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    born_timestamp: int = jfield("bornTimestamp", LONG, required=True)
    flag: int = jfield("flag", INT, required=True)
    properties: str | None = jfield("properties", STRING)
    reconsume_times: int | None = jfield("reconsumeTimes", INT)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    born_host: str = jfield("bornHost", STRING, required=True)
    store_host: str = jfield("storeHost", STRING, required=True)
    store_timestamp: int = jfield("storeTimestamp", LONG, required=True, default=0)


@dataclass(frozen=True, slots=True)
class ConsumerSendMsgBackRequestHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)
    group: str = jfield("group", STRING, required=True)
    delay_level: int = jfield("delayLevel", INT, required=True)
    origin_msg_id: str | None = jfield("originMsgId", STRING)
    origin_topic: str | None = jfield("originTopic", STRING)
    unit_mode: bool = jfield("unitMode", BOOLEAN, default=False)
    max_reconsume_times: int | None = jfield("maxReconsumeTimes", INT)


# --- Pulling and offsets ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullMessageRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    queue_offset: int = jfield("queueOffset", LONG, required=True)
    max_msg_nums: int = jfield("maxMsgNums", INT, required=True)
    sys_flag: int = jfield("sysFlag", INT, required=True)
    commit_offset: int = jfield("commitOffset", LONG, required=True)
    suspend_timeout_millis: int = jfield("suspendTimeoutMillis", LONG, required=True)
    subscription: str | None = jfield("subscription", STRING)
    sub_version: int = jfield("subVersion", LONG, required=True)
    expression_type: str | None = jfield("expressionType", STRING)


@dataclass(frozen=True, slots=True)
class PullMessageResponseHeader(CommandHeader):
    suggest_which_broker_id: int = jfield("suggestWhichBrokerId", LONG, required=True)
    next_begin_offset: int = jfield("nextBeginOffset", LONG, required=True)
    min_offset: int = jfield("minOffset", LONG, required=True)
    max_offset: int = jfield("maxOffset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class QueryConsumerOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class UpdateConsumerOffsetRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    commit_offset: int = jfield("commitOffset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class UpdateConsumerOffsetResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class GetMaxOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetMaxOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetMinOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetMinOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class GetEarliestMsgStoretimeRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)


@dataclass(frozen=True, slots=True)
class GetEarliestMsgStoretimeResponseHeader(CommandHeader):
    timestamp: int = jfield("timestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class SearchOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    queue_id: int = jfield("queueId", INT, required=True)
    timestamp: int = jfield("timestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class SearchOffsetResponseHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryMessageRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    key: str = jfield("key", STRING, required=True)
    max_num: int = jfield("maxNum", INT, required=True)
    begin_timestamp: int = jfield("beginTimestamp", LONG, required=True)
    end_timestamp: int = jfield("endTimestamp", LONG, required=True)


@dataclass(frozen=True, slots=True)
class QueryMessageResponseHeader(CommandHeader):
    index_last_update_timestamp: int = jfield("indexLastUpdateTimestamp", LONG, required=True)
    index_last_update_phyoffset: int = jfield("indexLastUpdatePhyoffset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class ViewMessageRequestHeader(CommandHeader):
    offset: int = jfield("offset", LONG, required=True)


@dataclass(frozen=True, slots=True)
class ViewMessageResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class QueryConsumeQueueRequestHeader(CommandHeader):
    topic: str | None = jfield("topic", STRING)
    queue_id: int = jfield("queueId", INT, default=0)
    index: int = jfield("index", LONG, default=0)
    count: int = jfield("count", INT, default=0)
    consumer_group: str | None = jfield("consumerGroup", STRING)


# --- Clients and consumer groups ---------------------------------------------


@dataclass(frozen=True, slots=True)
class UnregisterClientRequestHeader(CommandHeader):
    client_id: str = jfield("clientID", STRING, required=True)
    producer_group: str | None = jfield("producerGroup", STRING)
    consumer_group: str | None = jfield("consumerGroup", STRING)


@dataclass(frozen=True, slots=True)
class UnregisterClientResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class GetConsumerListByGroupRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetConsumerListByGroupResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class NotifyConsumerIdsChangedRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetConsumerConnectionListRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetProducerConnectionListRequestHeader(CommandHeader):
    producer_group: str = jfield("producerGroup", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetConsumerRunningInfoRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    client_id: str = jfield("clientId", STRING, required=True)
    jstack_enable: bool = jfield("jstackEnable", BOOLEAN, default=False)


@dataclass(frozen=True, slots=True)
class GetConsumerStatusRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    group: str = jfield("group", STRING, required=True)
    client_addr: str | None = jfield("clientAddr", STRING)


@dataclass(frozen=True, slots=True)
class ConsumeMessageDirectlyResultRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    client_id: str | None = jfield("clientId", STRING)
    msg_id: str | None = jfield("msgId", STRING)
    broker_name: str | None = jfield("brokerName", STRING)


@dataclass(frozen=True, slots=True)
class ResetOffsetRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    group: str = jfield("group", STRING, required=True)
    timestamp: int = jfield("timestamp", LONG, required=True, default=0)
    is_force: bool = jfield("isForce", BOOLEAN, required=True, default=False)


@dataclass(frozen=True, slots=True)
class CloneGroupOffsetRequestHeader(CommandHeader):
    src_group: str = jfield("srcGroup", STRING, required=True)
    dest_group: str = jfield("destGroup", STRING, required=True)
    topic: str | None = jfield("topic", STRING)
    offline: bool = jfield("offline", BOOLEAN, default=False)


@dataclass(frozen=True, slots=True)
class QueryConsumeTimeSpanRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)
    group: str = jfield("group", STRING, required=True)


@dataclass(frozen=True, slots=True)
class QueryCorrectionOffsetHeader(CommandHeader):
    filter_groups: str | None = jfield("filterGroups", STRING)
    compare_group: str = jfield("compareGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)


# --- Transactions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndTransactionRequestHeader(CommandHeader):
    producer_group: str = jfield("producerGroup", STRING, required=True)
    tran_state_table_offset: int = jfield("tranStateTableOffset", LONG, required=True)
    commit_log_offset: int = jfield("commitLogOffset", LONG, required=True)
    commit_or_rollback: int = jfield("commitOrRollback", INT, required=True)
    from_transaction_check: bool | None = jfield("fromTransactionCheck", BOOLEAN, default=False)
    msg_id: str = jfield("msgId", STRING, required=True)
    transaction_id: str | None = jfield("transactionId", STRING)


@dataclass(frozen=True, slots=True)
class EndTransactionResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class CheckTransactionStateRequestHeader(CommandHeader):
    tran_state_table_offset: int = jfield("tranStateTableOffset", LONG, required=True)
    commit_log_offset: int = jfield("commitLogOffset", LONG, required=True)
    msg_id: str | None = jfield("msgId", STRING)
    transaction_id: str | None = jfield("transactionId", STRING)
    offset_msg_id: str | None = jfield("offsetMsgId", STRING)


@dataclass(frozen=True, slots=True)
class CheckTransactionStateResponseHeader(CommandHeader):
    producer_group: str = jfield("producerGroup", STRING, required=True)
    tran_state_table_offset: int = jfield("tranStateTableOffset", LONG, required=True)
    commit_log_offset: int = jfield("commitLogOffset", LONG, required=True)
    commit_or_rollback: int = jfield("commitOrRollback", INT, required=True)


@dataclass(frozen=True, slots=True)
class ResumeCheckHalfMessageRequestHeader(CommandHeader):
    msg_id: str | None = jfield("msgId", STRING)


# --- Broker administration ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateTopicRequestHeader(CommandHeader):
    """UPDATE_AND_CREATE_TOPIC."""

    topic: str = jfield("topic", STRING, required=True)
    default_topic: str = jfield("defaultTopic", STRING, required=True)
    read_queue_nums: int = jfield("readQueueNums", INT, required=True)
    write_queue_nums: int = jfield("writeQueueNums", INT, required=True)
    perm: int = jfield("perm", INT, required=True)
    topic_filter_type: str = jfield("topicFilterType", STRING, required=True)
    topic_sys_flag: int | None = jfield("topicSysFlag", INT)
    order: bool = jfield("order", BOOLEAN, required=True, default=False)


@dataclass(frozen=True, slots=True)
class DeleteTopicRequestHeader(CommandHeader):
    """DELETE_TOPIC_IN_BROKER."""

    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetAllTopicConfigResponseHeader(CommandHeader):
    pass


@dataclass(frozen=True, slots=True)
class GetBrokerConfigResponseHeader(CommandHeader):
    """GET_BROKER_CONFIG answer: ``version`` is the config's DataVersion JSON."""

    version: str = jfield("version", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetTopicStatsInfoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetConsumeStatsRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str | None = jfield("topic", STRING)


@dataclass(frozen=True, slots=True)
class GetConsumeStatsInBrokerHeader(CommandHeader):
    """GET_BROKER_CONSUME_STATS."""

    is_order: bool = jfield("isOrder", BOOLEAN, required=True, default=False)


@dataclass(frozen=True, slots=True)
class QueryTopicConsumeByWhoRequestHeader(CommandHeader):
    topic: str = jfield("topic", STRING, required=True)


@dataclass(frozen=True, slots=True)
class DeleteSubscriptionGroupRequestHeader(CommandHeader):
    group_name: str = jfield("groupName", STRING, required=True)


@dataclass(frozen=True, slots=True)
class ViewBrokerStatsDataRequestHeader(CommandHeader):
    stats_name: str = jfield("statsName", STRING, required=True)
    stats_key: str = jfield("statsKey", STRING, required=True)


@dataclass(frozen=True, slots=True)
class CreateAccessConfigRequestHeader(CommandHeader):
    """UPDATE_AND_CREATE_ACL_CONFIG."""

    access_key: str = jfield("accessKey", STRING, required=True)
    secret_key: str | None = jfield("secretKey", STRING)
    white_remote_address: str | None = jfield("whiteRemoteAddress", STRING)
    admin: bool = jfield("admin", BOOLEAN, default=False)
    default_topic_perm: str | None = jfield("defaultTopicPerm", STRING)
    default_group_perm: str | None = jfield("defaultGroupPerm", STRING)
    topic_perms: str | None = jfield("topicPerms", STRING)
    group_perms: str | None = jfield("groupPerms", STRING)


@dataclass(frozen=True, slots=True)
class DeleteAccessConfigRequestHeader(CommandHeader):
    access_key: str = jfield("accessKey", STRING, required=True)


@dataclass(frozen=True, slots=True)
class UpdateGlobalWhiteAddrsConfigRequestHeader(CommandHeader):
    global_white_addrs: str = jfield("globalWhiteAddrs", STRING, required=True)


@dataclass(frozen=True, slots=True)
class GetBrokerAclConfigResponseHeader(CommandHeader):
    """GET_BROKER_CLUSTER_ACL_INFO answer."""

    version: str = jfield("version", STRING, required=True)
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_addr: str = jfield("brokerAddr", STRING, required=True)
    cluster_name: str = jfield("clusterName", STRING, required=True)


# --- Filter servers (header/filtersrv) ----------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterFilterServerRequestHeader(CommandHeader):
    filter_server_addr: str = jfield("filterServerAddr", STRING, required=True)


@dataclass(frozen=True, slots=True)
class RegisterFilterServerResponseHeader(CommandHeader):
    broker_name: str = jfield("brokerName", STRING, required=True)
    broker_id: int = jfield("brokerId", LONG, required=True, default=0)


@dataclass(frozen=True, slots=True)
class RegisterMessageFilterClassRequestHeader(CommandHeader):
    consumer_group: str = jfield("consumerGroup", STRING, required=True)
    topic: str = jfield("topic", STRING, required=True)
    class_name: str = jfield("className", STRING, required=True)
    class_crc: int = jfield("classCRC", INT, required=True)
