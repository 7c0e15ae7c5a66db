"""Client registration (Java's ``ClientManageProcessor``): HEART_BEAT,
UNREGISTER_CLIENT and CHECK_CLIENT_CONFIG.

A heartbeat registers the client's connection in every producer and consumer
group it lists. For a consumer group the broker first makes sure the group's
``%RETRY%<group>`` topic exists, with the group's ``retryQueueNums`` queues
(the subscription group itself is created on first sight when
``autoCreateSubscriptionGroup`` is on), then records members and
subscriptions; a change notifies the group's members (see
:mod:`pyrocket.broker.consumer_manager`). Answers carry no header, as in Java;
UNREGISTER_CLIENT answers with an empty one.
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from pyrocket.broker.consumer_filter import NULL_POINTER, compile_off_loop, precompile
from pyrocket.broker.consumer_manager import ClientChannelInfo
from pyrocket.broker.message_filter import is_tag_type
from pyrocket.broker.processors.common import retry_topic
from pyrocket.broker.processors.ports import ClientTables, MessageBroker
from pyrocket.broker.topic_config import build_sys_flag
from pyrocket.errors import CommandError, ProtocolError
from pyrocket.filter import SelectorError
from pyrocket.logtext import clipped
from pyrocket.protocol import fastjson
from pyrocket.protocol.bodies.client import HeartbeatData, SubscriptionData
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand
from pyrocket.protocol.headers import UnregisterClientRequestHeader
from pyrocket.remoting import Connection

log = logging.getLogger("pyrocket.broker")


#: HEART_BEAT bodies up to this size are decoded inline, larger ones in a
#: worker thread (a client with a few subscriptions sends a few KiB).
INLINE_BODY_LIMIT: Final = 64 * 1024


def _decode_heartbeat(body: bytes) -> HeartbeatData:
    try:
        return HeartbeatData.decode(body)
    except ProtocolError as exc:
        raise CommandError(f"heartbeat body: {exc}") from exc


def _ok(empty_header: bool = False) -> RemotingCommand:
    return RemotingCommand(
        code=ResponseCode.SUCCESS, flag=RESPONSE_FLAG, ext_fields={} if empty_header else None
    )


class ClientManageProcessor:
    """Answers HEART_BEAT, UNREGISTER_CLIENT and CHECK_CLIENT_CONFIG."""

    def __init__(self, broker: MessageBroker, plane: ClientTables) -> None:
        self.broker = broker
        self.plane = plane
        self._decode_limiter = trio.CapacityLimiter(1)

    def install(self) -> None:
        self.broker.register_processor(RequestCode.HEART_BEAT, self.heart_beat)
        self.broker.register_processor(RequestCode.UNREGISTER_CLIENT, self.unregister_client)
        self.broker.register_processor(RequestCode.CHECK_CLIENT_CONFIG, self.check_client_config)

    async def heart_beat(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        """Raises CommandError for a body that is not a HeartbeatData."""
        body = request.body or b""
        if len(body) > INLINE_BODY_LIMIT:
            # Thousands of subscribed tags: tens of milliseconds of decoding,
            # done in a worker thread (one at a time) rather than on the loop.
            data = await trio.to_thread.run_sync(
                _decode_heartbeat, body, limiter=self._decode_limiter
            )
        else:
            data = _decode_heartbeat(body)
        now = self.broker.now_ms()

        def member() -> ClientChannelInfo:
            return ClientChannelInfo(
                conn, data.client_id or "", int(request.language), request.version, now
            )

        broker = self.broker
        filters = self.plane.consumer_filter_manager
        try:
            compiled = await precompile(
                (
                    sub
                    for consumer in data.consumer_data_set
                    for sub in consumer.subscription_data_set
                ),
                filters.selectors,
                self._decode_limiter,
            )
        except SelectorError as exc:
            raise CommandError(exc.message) from exc
        for consumer in data.consumer_data_set:
            group = consumer.group_name or ""
            group_config = await broker.subscription_group_manager.find_subscription_group_config(
                group
            )
            notify = True
            if group_config is not None:
                notify = group_config.notify_consumer_ids_changed_enable
                sys_flag = build_sys_flag(False, True) if consumer.unit_mode else 0
                await broker.topic_config_manager.create_topic_in_send_message_back_method(
                    retry_topic(group),
                    group_config.retry_queue_nums,
                    PERM_WRITE | PERM_READ,
                    sys_flag,
                )
            changed = await self.plane.consumer_manager.register_consumer(
                group,
                member(),
                consumer.consume_type,
                consumer.message_model,
                consumer.consume_from_where,
                consumer.subscription_data_set,
                notify,
                compiled,
            )
            if changed:
                log.info(
                    "registerConsumer info changed %s %s", clipped(consumer), conn.remote_address
                )
        for producer in data.producer_data_set:
            self.plane.producer_manager.register_producer(producer.group_name or "", member())
        return _ok()

    async def unregister_client(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(UnregisterClientRequestHeader)
        if header.producer_group is not None:
            self.plane.producer_manager.unregister_producer(
                header.producer_group, conn, header.client_id
            )
        if header.consumer_group is not None:
            group = header.consumer_group
            group_config = (
                await self.broker.subscription_group_manager.find_subscription_group_config(group)
            )
            notify = group_config.notify_consumer_ids_changed_enable if group_config else True
            await self.plane.consumer_manager.unregister_consumer(group, conn, notify)
        return _ok(empty_header=True)

    async def check_client_config(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        """A consumer asks whether the broker can filter by its expression:
        TAG always; SQL92 when ``enablePropertyFilter`` is on and the
        expression compiles (else SUBSCRIPTION_PARSE_FAILED with Java's
        exception text as the remark)."""
        subscription: SubscriptionData | None = None
        if request.body:
            try:
                parsed = fastjson.loads(request.body)
                raw = parsed.get("subscriptionData") if isinstance(parsed, dict) else None
                if raw is not None:
                    subscription = SubscriptionData.from_json(raw, "subscriptionData")
            except ProtocolError as exc:
                raise CommandError(f"check client body: {exc}") from exc
        if subscription is None or is_tag_type(subscription.expression_type):
            return _ok()
        if not self.broker.settings.broker.enable_property_filter:
            remark = (
                "The broker does not support consumer to filter message by "
                f"{subscription.expression_type}"
            )
            return RemotingCommand(
                code=ResponseCode.SYSTEM_ERROR, flag=RESPONSE_FLAG, remark=remark
            )
        try:
            await compile_off_loop(
                subscription.expression_type,
                subscription.sub_string,
                self.plane.consumer_filter_manager.selectors,
                self._decode_limiter,
            )
        except SelectorError as exc:
            log.warning(
                "Client %s filter message, but failed to compile expression! sub=%.200s, error=%s",
                conn.remote_address,
                subscription.sub_string,
                exc.java_text(),
            )
            # Java's remark is the exception's message: null for a
            # NullPointerException, else the parse failure's text.
            failure: str | None = None if exc.java_class == NULL_POINTER else exc.java_text()
            return RemotingCommand(
                code=ResponseCode.SUBSCRIPTION_PARSE_FAILED, flag=RESPONSE_FLAG, remark=failure
            )
        return _ok()


__all__ = ["ClientManageProcessor"]
