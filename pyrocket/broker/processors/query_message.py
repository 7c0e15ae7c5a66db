"""QUERY_MESSAGE (Java's ``QueryMessageProcessor.queryMessage``): messages
by key or by unique key through the store's index files.

The answer is Java's: SUCCESS with the stored records back to back as the
body, or QUERY_NOT_FOUND with Java's remark; both carry where the index
stands (``indexLastUpdateTimestamp`` / ``indexLastUpdatePhyoffset``). A
unique-key query (ext field ``_UNIQUE_KEY_QUERY=true``) is capped at
``defaultQueryMaxNum`` whatever maxNum says. The lookup runs in a worker
thread (:meth:`MessageStore.query_message`).
"""

from __future__ import annotations

from typing import Final

from pyrocket.broker.processors.ports import StoreBroker
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import QueryMessageRequestHeader, QueryMessageResponseHeader
from pyrocket.remoting import Connection

#: Java's ``MixAll.UNIQUE_MSG_QUERY_FLAG``.
UNIQUE_MSG_QUERY_FLAG: Final = "_UNIQUE_KEY_QUERY"
NOT_FOUND_REMARK: Final = "can not find message, maybe time range not correct"


class QueryMessageProcessor:
    """Answers QUERY_MESSAGE."""

    def __init__(self, broker: StoreBroker) -> None:
        self.broker = broker

    def install(self) -> None:
        self.broker.register_processor(RequestCode.QUERY_MESSAGE, self.query_message)

    async def query_message(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(QueryMessageRequestHeader)
        store = self.broker.store
        max_num = header.max_num
        if (request.ext_fields or {}).get(UNIQUE_MSG_QUERY_FLAG) == "true":
            max_num = store.config.default_query_max_num
        result = await store.query_message(
            header.topic, header.key, max_num, header.begin_timestamp, header.end_timestamp
        )
        fields = QueryMessageResponseHeader(
            result.index_last_update_timestamp, result.index_last_update_phyoffset
        ).to_ext_fields()
        if result.messages:
            return RemotingCommand(
                code=ResponseCode.SUCCESS,
                flag=RESPONSE_FLAG,
                ext_fields=fields,
                body=b"".join(result.messages),
            )
        return RemotingCommand(
            code=ResponseCode.QUERY_NOT_FOUND,
            flag=RESPONSE_FLAG,
            ext_fields=fields,
            remark=NOT_FOUND_REMARK,
        )


__all__ = ["NOT_FOUND_REMARK", "UNIQUE_MSG_QUERY_FLAG", "QueryMessageProcessor"]
