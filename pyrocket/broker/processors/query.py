"""Offset and message lookups (the store queries of Java's
``AdminBrokerProcessor`` and ``QueryMessageProcessor``): GET_MAX_OFFSET,
GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME and
VIEW_MESSAGE_BY_ID (one stored record, as the Java client's MessageDecoder
reads it). QUERY_MESSAGE (by key, through the index files) is
:mod:`pyrocket.broker.processors.query_message`'s.
"""

from __future__ import annotations

from pyrocket.broker.processors.ports import StoreBroker
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import (
    GetEarliestMsgStoretimeRequestHeader,
    GetEarliestMsgStoretimeResponseHeader,
    GetMaxOffsetRequestHeader,
    GetMaxOffsetResponseHeader,
    GetMinOffsetRequestHeader,
    GetMinOffsetResponseHeader,
    SearchOffsetRequestHeader,
    SearchOffsetResponseHeader,
    ViewMessageRequestHeader,
)
from pyrocket.remoting import Connection


def _ok(ext_fields: dict[str, str] | None = None, body: bytes | None = None) -> RemotingCommand:
    return RemotingCommand(
        code=ResponseCode.SUCCESS, flag=RESPONSE_FLAG, ext_fields=ext_fields, body=body
    )


class QueryProcessor:
    """Answers the lookups listed in the module doc (quick, in-memory: they
    run inline in the connection's reader)."""

    def __init__(self, broker: StoreBroker) -> None:
        self.broker = broker

    def install(self) -> None:
        register = self.broker.register_processor
        register(RequestCode.GET_MAX_OFFSET, self.get_max_offset)
        register(RequestCode.GET_MIN_OFFSET, self.get_min_offset)
        register(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, self.search_offset_by_timestamp)
        register(RequestCode.GET_EARLIEST_MSG_STORETIME, self.get_earliest_msg_storetime)
        register(RequestCode.VIEW_MESSAGE_BY_ID, self.view_message_by_id)

    def get_max_offset(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetMaxOffsetRequestHeader)
        offset = self.broker.store.get_max_offset_in_queue(header.topic, header.queue_id)
        return _ok(GetMaxOffsetResponseHeader(offset).to_ext_fields())

    def get_min_offset(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetMinOffsetRequestHeader)
        offset = self.broker.store.get_min_offset_in_queue(header.topic, header.queue_id)
        return _ok(GetMinOffsetResponseHeader(offset).to_ext_fields())

    def search_offset_by_timestamp(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(SearchOffsetRequestHeader)
        offset = self.broker.store.get_offset_in_queue_by_time(
            header.topic, header.queue_id, header.timestamp
        )
        return _ok(SearchOffsetResponseHeader(offset).to_ext_fields())

    def get_earliest_msg_storetime(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetEarliestMsgStoretimeRequestHeader)
        timestamp = self.broker.store.get_earliest_message_time(header.topic, header.queue_id)
        return _ok(GetEarliestMsgStoretimeResponseHeader(timestamp).to_ext_fields())

    def view_message_by_id(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(ViewMessageRequestHeader)
        record = self.broker.store.select_one_message_by_offset(header.offset)
        if record is None:
            return RemotingCommand(
                code=ResponseCode.SYSTEM_ERROR,
                flag=RESPONSE_FLAG,
                remark=f"can not find message by the offset, {header.offset}",
            )
        return _ok(body=record)


__all__ = ["QueryProcessor"]
