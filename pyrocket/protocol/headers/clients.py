"""Headers about clients and consumer groups (registration, connections,
running info, offset reset and cloning) and transactions (end, check,
resume).

Fields are in each Java class's declaration order; Java primitives (never
null) have a non-None default and are always sent, boxed types default to
None (not sent) unless Java initializes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyrocket.protocol.headers.base import BOOLEAN, INT, LONG, STRING, CommandHeader, jfield


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


__all__ = [
    "CheckTransactionStateRequestHeader",
    "CheckTransactionStateResponseHeader",
    "CloneGroupOffsetRequestHeader",
    "ConsumeMessageDirectlyResultRequestHeader",
    "EndTransactionRequestHeader",
    "EndTransactionResponseHeader",
    "GetConsumerConnectionListRequestHeader",
    "GetConsumerListByGroupRequestHeader",
    "GetConsumerListByGroupResponseHeader",
    "GetConsumerRunningInfoRequestHeader",
    "GetConsumerStatusRequestHeader",
    "GetProducerConnectionListRequestHeader",
    "NotifyConsumerIdsChangedRequestHeader",
    "QueryConsumeTimeSpanRequestHeader",
    "QueryCorrectionOffsetHeader",
    "ResetOffsetRequestHeader",
    "ResumeCheckHalfMessageRequestHeader",
    "UnregisterClientRequestHeader",
    "UnregisterClientResponseHeader",
]
