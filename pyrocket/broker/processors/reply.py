"""Request-reply on the broker (Java's ``ReplyMessageProcessor``):
SEND_REPLY_MESSAGE (the long-named send header) and SEND_REPLY_MESSAGE_V2
(the one-letter one).

A reply is pushed, as PUSH_REPLY_MESSAGE_TO_CLIENT, to the requester named by
its ``REPLY_TO_CLIENT`` property, over the connection that client's producer
heartbeats arrived on; then, with ``storeReplyMessageEnable`` (on by
default), it is stored in its topic (``<cluster>_REPLY_TOPIC``) like any
message. The send checks are the send processor's (``msgCheck``). The answer
is Java's: SUCCESS with ``msgId`` "0" and offset 0 when the push worked
(the stored message's id and offset replace them when it was stored too), or
SYSTEM_ERROR with Java's remark when there is no ``REPLY_TO_CLIENT``, no such
client, or the push failed; a stored reply still reports its id then.

The push carries the reply's send-header fields, the replier's address as
``bornHost`` and the broker's as ``storeHost`` (both as Java prints an
``InetSocketAddress``), the store time, and the properties with
``PUSH_REPLY_TIME`` added, in Java's HashMap order. The stored message keeps
the properties string the replier sent.

Java stores only after the requester answered the push; here the push is
queued first and the message stored while its answer is awaited, so a slow
requester does not hold up the replier's connection (its ordered turn ends
once the reply is appended). What is pushed and stored is the same.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Final

from pyrocket.broker.processors.common import (
    host_port,
    resolve_host_port,
    socket_address_string,
)
from pyrocket.broker.processors.ports import ClientTables, MessageBroker
from pyrocket.broker.processors.send import SendMessageProcessor
from pyrocket.broker.processors.send_common import preceding_fields, send_response
from pyrocket.broker.store import BrokerMessage, PutMessageResult
from pyrocket.errors import PyrocketError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    ReplyMessageRequestHeader,
    SendMessageRequestHeader,
    SendMessageRequestHeaderV2,
    SendMessageResponseHeader,
)
from pyrocket.protocol.message import (
    MessageConst,
    MessageSysFlag,
    encode_properties,
    host_flags,
    java_properties,
)
from pyrocket.remoting import Connection, ResponseFuture

log = logging.getLogger("pyrocket.broker")

#: Broker2Client.callClient's timeout (seconds).
PUSH_TIMEOUT: Final = 10.0
#: The sysFlag bits that say a host is IPv6 (see the send processor).
HOST_FLAGS: Final = MessageSysFlag.HOST_V6_FLAGS


def socket_address_text(host: str, port: int) -> str:
    """``new InetSocketAddress(host, port).toString()``: ``/ip:port`` for an
    IP address, ``name/ip:port`` for a host name (resolved here)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"{host}/{resolve_host_port(host, port).host}:{port}"
    return f"/{host}:{port}"


class ReplyMessageProcessor(SendMessageProcessor):
    """Answers SEND_REPLY_MESSAGE and SEND_REPLY_MESSAGE_V2 for one broker."""

    def __init__(self, broker: MessageBroker, clients: ClientTables) -> None:
        super().__init__(broker)
        self.clients = clients
        self.push_timeout = PUSH_TIMEOUT

    def install(self) -> None:
        for code in (RequestCode.SEND_REPLY_MESSAGE, RequestCode.SEND_REPLY_MESSAGE_V2):
            self.broker.register_processor(code, self.send_reply_message)

    async def send_reply_message(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = _decode_reply_header(request)
        broker_config = self.broker.settings.broker
        preceding = preceding_fields(broker_config.region_id, broker_config.trace_on)
        stray = header.sys_flag & HOST_FLAGS
        if stray and stray & ~host_flags(host_port(conn.remote_address), self.store_host):
            return self._refuse_sys_flag(conn, header.sys_flag)
        refused = await self._pre_send(conn, header, preceding)
        if refused is not None:
            return refused
        config = self.broker.topic_config_manager.select_topic_config(header.topic)
        assert config is not None  # _pre_send found or created it
        queue_id = header.queue_id
        if queue_id < 0:
            queue_id = self._random_queue_id(config.write_queue_nums)
        message = BrokerMessage.from_properties_string(
            header.topic,
            queue_id,
            request.body or b"",
            header.properties or "",
            flag=header.flag,
            sys_flag=header.sys_flag,
            born_timestamp=header.born_timestamp,
            born_host=host_port(conn.remote_address),
            store_host=self.store_host,
            reconsume_times=header.reconsume_times or 0,
        )
        push = await self._start_push(conn, header, message)
        stored: PutMessageResult | None = None
        if self.broker.settings.broker.store_reply_message_enable:
            stored = await self._put(conn, request, message)
        else:
            conn.release_order(request)
        pushed, remark = await self._finish_push(push)
        code = ResponseCode.SUCCESS if pushed else ResponseCode.SYSTEM_ERROR
        appended = stored.append_result if stored is not None and stored.is_ok else None
        if appended is not None:
            ext = SendMessageResponseHeader.answer_ext_fields(
                appended.msg_id, queue_id, appended.logics_offset, preceding
            )
        elif pushed:
            ext = SendMessageResponseHeader.answer_ext_fields("0", queue_id, 0, preceding)
        else:
            ext = dict(preceding)
        if stored is not None and appended is None:
            log.info("reply message to %s not stored: %s", header.topic, stored.status.name)
        return send_response(code, None if pushed else remark, ext)

    async def _start_push(
        self,
        conn: Connection,
        header: SendMessageRequestHeader,
        message: BrokerMessage,
    ) -> _Push:
        """Queue the push to the requester; what became of it is read by
        :meth:`_finish_push`."""
        sender = message.properties.get(MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT)
        if sender is None:
            log.warning("REPLY_TO_CLIENT is null, can not reply message")
            remark = (
                f"reply message properties[{MessageConst.PROPERTY_MESSAGE_REPLY_TO_CLIENT}] is null"
            )
            return _Push(None, remark)
        target = self.clients.producer_manager.find_connection(sender)
        if target is None:
            remark = f"push reply message fail, channel of <{sender}> not found."
            log.warning("%s", remark)
            return _Push(None, remark)
        properties = java_properties(message.properties)
        properties[MessageConst.PROPERTY_PUSH_REPLY_TIME] = str(self.broker.now_ms())
        settings = self.broker.settings
        push_header = ReplyMessageRequestHeader(
            producer_group=header.producer_group,
            topic=header.topic,
            default_topic=header.default_topic,
            default_topic_queue_nums=header.default_topic_queue_nums,
            queue_id=header.queue_id,
            sys_flag=header.sys_flag,
            born_timestamp=header.born_timestamp,
            flag=header.flag,
            properties=encode_properties(properties),
            reconsume_times=header.reconsume_times,
            unit_mode=header.unit_mode,
            born_host=socket_address_string(conn.remote_address),
            store_host=socket_address_text(settings.broker.broker_ip1, settings.server.listen_port),
            store_timestamp=self.broker.now_ms(),
        )
        push = RemotingCommand.request(
            RequestCode.PUSH_REPLY_MESSAGE_TO_CLIENT, push_header, body=message.body
        )
        failed = f"push reply message to {sender}fail."
        try:
            future = await target.invoke_async(push, self.push_timeout)
        except PyrocketError as exc:
            log.warning("push reply message to <%s> fail. %s: %s", sender, target, exc)
            return _Push(None, failed)
        return _Push(future, failed, sender)

    async def _finish_push(self, push: _Push) -> tuple[bool, str]:
        """Whether the requester took the reply, and the remark if not."""
        if push.future is None:
            return False, push.remark
        try:
            answer = await push.future
        except PyrocketError as exc:
            log.warning("push reply message to <%s> fail: %s", push.sender, exc)
            return False, push.remark
        if answer.code != ResponseCode.SUCCESS:
            log.warning(
                "push reply message to <%s> return fail, response remark: %s",
                push.sender,
                answer.remark,
            )
            return False, push.remark
        return True, ""


@dataclasses.dataclass(frozen=True, slots=True)
class _Push:
    """A push under way (``future``), or why there is none; ``remark`` is
    the answer's remark should it fail."""

    future: ResponseFuture | None
    remark: str
    sender: str = ""


def _decode_reply_header(request: RemotingCommand) -> SendMessageRequestHeader:
    """The send header of either code, as the long-named one; raises
    CommandError naming a missing or bad field."""
    if request.code == RequestCode.SEND_REPLY_MESSAGE:
        return request.decode_header(SendMessageRequestHeader)
    return SendMessageRequestHeaderV2.from_ext_fields_fast(request.ext_fields or {}).to_v1()


__all__ = [
    "PUSH_TIMEOUT",
    "ReplyMessageProcessor",
    "socket_address_text",
]
