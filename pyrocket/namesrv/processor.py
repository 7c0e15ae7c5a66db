"""The NameServer's request handlers: Java's DefaultRequestProcessor.

One handler per request code, each answering with the code, remark, header
and body Java 4.7.0 sends. Codes without a handler are not registered, so the
remoting layer answers them REQUEST_CODE_NOT_SUPPORTED (Java's NameServer has
a catch-all processor that never answers them).

Lookups and registrations are plain functions: they run inline in the
connection's reader, in arrival order. Requests that change a file
(PUT_KV_CONFIG, DELETE_KV_CONFIG, UPDATE_NAMESRV_CONFIG) change the state at
once, in order with everything else, and are answered once the file is
written, from the connection's workers: each waits for its file's one
writer to finish a write that includes it, so a flood shares writes. The
hot reads (routes, the cluster map, the topic list) hand out answers kept
ready by :mod:`pyrocket.namesrv.answers`.

Deliberate differences from Java (bad input only): a missing ``@CFNotNull``
field or an unparsable one is SYSTEM_ERROR naming it (the remoting layer turns
the CommandError into that answer); a body that does not decode is
SYSTEM_ERROR saying so; UPDATE_NAMESRV_CONFIG refuses keys outside
:data:`~pyrocket.namesrv.config.RUNTIME_KEYS`; a file that cannot be written
is SYSTEM_ERROR (Java logs it and answers SUCCESS).

A REGISTER_BROKER body that is compressed or larger than
:data:`INLINE_BODY_LIMIT` is checked and decoded in a worker thread, one at a
time, and applied when that is done, so that a broker with thousands of
topics does not hold up the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from pyrocket.errors import CommandError, ProtocolError
from pyrocket.logtext import clipped
from pyrocket.namesrv.answers import APPLY_TOPIC_TIP, AnswerCache
from pyrocket.namesrv.config import ConfigFileWriter, Configuration, NamesrvConfig, plan_update
from pyrocket.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG, KVConfigManager
from pyrocket.namesrv.routeinfo import RouteInfoManager, registration_order
from pyrocket.namesrv.routetables import TopicDelta, topic_delta
from pyrocket.persist import PersistError
from pyrocket.protocol.bodies import DataVersion, Properties
from pyrocket.protocol.bodies.register import (
    PreparedRegistration,
    RegistrationBody,
    RegistrationDecoder,
    decode_legacy_register_body,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import VERSION_V3_0_11, RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    DeleteKVConfigRequestHeader,
    DeleteTopicInNamesrvRequestHeader,
    GetKVConfigRequestHeader,
    GetKVConfigResponseHeader,
    GetKVListByNamespaceRequestHeader,
    GetTopicsByClusterRequestHeader,
    PutKVConfigRequestHeader,
    QueryDataVersionRequestHeader,
    QueryDataVersionResponseHeader,
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader,
    WipeWritePermOfBrokerResponseHeader,
)
from pyrocket.remoting import Connection, RemotingServer

log = logging.getLogger("pyrocket.namesrv")

#: REGISTER_BROKER bodies up to this size (and not compressed) are decoded
#: inline; larger ones in a worker thread. 64 KiB of JSON is about 400 topics,
#: a millisecond or two of decoding.
INLINE_BODY_LIMIT: Final = 64 * 1024


_Decoded = tuple[RegistrationBody, PreparedRegistration | None, list[str] | None, TopicDelta | None]
"""What the worker thread makes of a large registration: the body, the
decoder's memory update, the order of the table as Java applies it (when it
may bring new topics) and what differs from the table applied last."""


class NamesrvState:
    """What the handlers act on: the tables, the KV store and the config.

    ``config`` is replaced (never mutated) when UPDATE_NAMESRV_CONFIG applies
    a key. ``clock()`` is milliseconds for broker liveness.
    """

    def __init__(
        self,
        config: NamesrvConfig,
        *,
        routes: RouteInfoManager | None = None,
        kv: KVConfigManager | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.routes = routes or RouteInfoManager()
        self.kv = kv or KVConfigManager(config.kv_config_path)
        self.configuration = Configuration(config)
        #: The writer of UPDATE_NAMESRV_CONFIG's changes to the config file.
        self.config_file = ConfigFileWriter(lambda: self.config.config_store_path)
        self.clock = clock or _monotonic_ms

    def order_topic_conf(self, topic: str) -> str | None:
        """The orderTopicConf a route of ``topic`` carries (only with
        orderMessageEnable)."""
        if not self.config.order_message_enable:
            return None
        return self.kv.get_kv_config(NAMESPACE_ORDER_TOPIC_CONFIG, topic)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _success(**options: Any) -> RemotingCommand:
    return RemotingCommand.response(ResponseCode.SUCCESS, **options)


_Answer = RemotingCommand | Awaitable[RemotingCommand] | None
"""A handler's result: an answer now, one to wait for, or none (oneway)."""

#: The reads clients repeat with the same header (and whose answers are kept
#: in :mod:`pyrocket.namesrv.answers`): their headers are kept decoded too.
_REPEATED_READS: Final = frozenset(
    {
        RequestCode.GET_ROUTEINFO_BY_TOPIC,
        RequestCode.GET_BROKER_CLUSTER_INFO,
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    }
)


async def _once_saved(
    written: Callable[[], Awaitable[None]], what: str, answer: RemotingCommand
) -> RemotingCommand:
    """``answer`` once ``written()`` returns: the write holding an applied
    change is durable; SYSTEM_ERROR naming ``what`` if that write failed."""
    try:
        await written()
    except PersistError as exc:
        return RemotingCommand.response(
            ResponseCode.SYSTEM_ERROR, f"{what} applied but not saved: {exc}"
        )
    return answer


class DefaultRequestProcessor:
    """The handlers, bound to one NameServer's state."""

    def __init__(self, state: NamesrvState) -> None:
        self.state = state
        self._answers = AnswerCache(state)
        self._bodies = RegistrationDecoder()
        # Large registration bodies are decoded one at a time: each may
        # inflate to MAX_INFLATED_SIZE, so several at once would cost memory
        # and would only compete for the same lock.
        self._decode_limiter = trio.CapacityLimiter(1)

    def register_all(self, server: RemotingServer) -> None:
        """Register a handler for each of the 19 codes Java's NameServer answers."""
        handlers: dict[int, Any] = {
            RequestCode.PUT_KV_CONFIG: self.put_kv_config,
            RequestCode.GET_KV_CONFIG: self.get_kv_config,
            RequestCode.DELETE_KV_CONFIG: self.delete_kv_config,
            RequestCode.QUERY_DATA_VERSION: self.query_broker_topic_config,
            RequestCode.REGISTER_BROKER: self.register_broker,
            RequestCode.UNREGISTER_BROKER: self.unregister_broker,
            RequestCode.GET_ROUTEINFO_BY_TOPIC: self.get_route_info_by_topic,
            RequestCode.GET_BROKER_CLUSTER_INFO: self.get_broker_cluster_info,
            RequestCode.WIPE_WRITE_PERM_OF_BROKER: self.wipe_write_perm_of_broker,
            RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: self.get_all_topic_list,
            RequestCode.DELETE_TOPIC_IN_NAMESRV: self.delete_topic_in_namesrv,
            RequestCode.GET_KVLIST_BY_NAMESPACE: self.get_kv_list_by_namespace,
            RequestCode.GET_TOPICS_BY_CLUSTER: self.get_topics_by_cluster,
            RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS: self.get_system_topic_list,
            RequestCode.GET_UNIT_TOPIC_LIST: self.get_unit_topic_list,
            RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST: self.get_has_unit_sub_topic_list,
            RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST: (
                self.get_has_unit_sub_ununit_topic_list
            ),
            RequestCode.UPDATE_NAMESRV_CONFIG: self.update_config,
            RequestCode.GET_NAMESRV_CONFIG: self.get_config,
        }
        for code, handler in handlers.items():
            server.register_processor(code, handler, repeated=code in _REPEATED_READS)

    # ------------------------------------------------------------------
    # KV config

    def put_kv_config(self, conn: Connection, request: RemotingCommand) -> _Answer:
        header = request.decode_header(PutKVConfigRequestHeader)
        self.state.kv.put_kv_config(header.namespace, header.key, header.value)
        return self._kv_saved(conn, request)

    def delete_kv_config(self, conn: Connection, request: RemotingCommand) -> _Answer:
        header = request.decode_header(DeleteKVConfigRequestHeader)
        self.state.kv.delete_kv_config(header.namespace, header.key)
        return self._kv_saved(conn, request)

    def _kv_saved(self, conn: Connection, request: RemotingCommand) -> _Answer:
        """The answer to a KV change: SUCCESS once a write of the KV table
        that includes it is durable (SYSTEM_ERROR if that write failed). A
        oneway change just marks the table dirty: nothing waits for it."""
        kv = self.state.kv
        generation = kv.request_write()
        if request.is_oneway:
            return None
        if generation is None:
            return _success()

        # The change is applied: the connection's next ordered request need
        # not wait for the write (it will share it).
        conn.release_order(request)

        # Run by the connection's workers: at most ``max_in_flight`` per
        # connection wait at once, each a parked task.
        return _once_saved(lambda: kv.wait_written(generation), "KV config", _success())

    def get_kv_config(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetKVConfigRequestHeader)
        value = self.state.kv.get_kv_config(header.namespace, header.key)
        if value is not None:
            return _success(header=GetKVConfigResponseHeader(value))
        return RemotingCommand.response(
            ResponseCode.QUERY_NOT_FOUND,
            f"No config item, Namespace: {header.namespace} Key: {header.key}",
            GetKVConfigResponseHeader(),
        )

    def get_kv_list_by_namespace(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(GetKVListByNamespaceRequestHeader)
        body = self.state.kv.get_kv_list_by_namespace(header.namespace)
        if body is not None:
            return _success(body=body)
        return RemotingCommand.response(
            ResponseCode.QUERY_NOT_FOUND, f"No config item, Namespace: {header.namespace}"
        )

    # ------------------------------------------------------------------
    # Brokers

    def query_broker_topic_config(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(QueryDataVersionRequestHeader)
        if request.body is None:
            raise CommandError("QUERY_DATA_VERSION without a DataVersion body")
        try:
            data_version = DataVersion.decode(request.body)
        except ProtocolError as exc:
            raise CommandError(f"QUERY_DATA_VERSION body is not a DataVersion: {exc}") from exc
        routes = self.state.routes
        changed = routes.is_broker_topic_config_changed(header.broker_addr, data_version)
        if not changed:
            routes.update_broker_info_update_timestamp(header.broker_addr, self.state.clock())
        known = routes.query_broker_topic_config(header.broker_addr)
        return _success(
            header=QueryDataVersionResponseHeader(changed),
            body=None if known is None else known.encode(),
        )

    def register_broker(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand | Awaitable[RemotingCommand]:
        """REGISTER_BROKER. A small plain body is decoded and applied right
        here; a large or compressed one is checked and decoded in a worker
        thread (one at a time) and applied when that is done, so a broker with
        thousands of topics never holds up the event loop."""
        header = request.decode_header(RegisterBrokerRequestHeader)
        body = request.body
        if body is not None and (header.compressed or len(body) > INLINE_BODY_LIMIT):
            return self._register_broker_in_thread(conn, request, header)
        if header.body_crc32 and crc32(body) != header.body_crc32:
            return self._crc_mismatch(conn)
        if request.version >= VERSION_V3_0_11:
            registration = self._bodies.decode(header.broker_addr, body, header.compressed)
        else:
            registration = decode_legacy_register_body(body)
        return self._apply_registration(conn, header, registration)

    async def _register_broker_in_thread(
        self, conn: Connection, request: RemotingCommand, header: RegisterBrokerRequestHeader
    ) -> RemotingCommand:
        body = request.body
        bodies = self._bodies
        modern = request.version >= VERSION_V3_0_11
        # The table applied last for this name: what is new in this one is
        # worked out in the thread too, so the event loop only applies it.
        base = self.state.routes.applied_table(header.broker_name)

        def check_and_decode() -> _Decoded | None:
            if header.body_crc32 and crc32(body) != header.body_crc32:
                return None
            prepared: PreparedRegistration | None = None
            if modern:
                prepared = bodies.prepare(header.broker_addr, body, header.compressed)
                registration = prepared.decoded
            else:
                # A legacy body is not remembered: it changes nothing in the decoder.
                registration = decode_legacy_register_body(body)
            topics = registration.topics
            if topics is base:
                return registration, prepared, None, None  # applying it changes nothing
            delta = None if base is None else topic_delta(base, topics)
            # The order a new table is applied in costs more than applying
            # it; work it out here too when the table may bring new topics
            # (while ``base`` is applied, every topic it lists is in the
            # tables already).
            order = None
            if len(topics) > 1 and (
                delta is None or any(topic not in delta.base for topic, _ in delta.items)
            ):
                order = registration_order(topics)
            return registration, prepared, order, delta

        done = await trio.to_thread.run_sync(check_and_decode, limiter=self._decode_limiter)
        if done is None:
            return self._crc_mismatch(conn)
        registration, prepared, order, delta = done
        if prepared is not None:
            bodies.remember(header.broker_addr, prepared)
        return self._apply_registration(conn, header, registration, order, delta)

    def _crc_mismatch(self, conn: Connection) -> RemotingCommand:
        log.warning("receive registerBroker request,crc32 not match,from %s", conn.remote_address)
        return RemotingCommand.response(
            ResponseCode.SYSTEM_ERROR, "crc32 not match", RegisterBrokerResponseHeader()
        )

    def _apply_registration(
        self,
        conn: Connection,
        header: RegisterBrokerRequestHeader,
        registration: RegistrationBody,
        topic_order: list[str] | None = None,
        topic_delta: TopicDelta | None = None,
    ) -> RemotingCommand:
        state = self.state
        result = state.routes.register_broker(
            header.cluster_name,
            header.broker_addr,
            header.broker_name,
            header.broker_id,
            header.ha_server_addr,
            registration.data_version,
            registration.topics,
            registration.filter_server_list,
            conn,
            state.clock(),
            topic_order,
            topic_delta,
        )
        return _success(
            header=RegisterBrokerResponseHeader(result.ha_server_addr, result.master_addr),
            body=state.kv.get_kv_list_by_namespace(NAMESPACE_ORDER_TOPIC_CONFIG),
        )

    def unregister_broker(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(UnRegisterBrokerRequestHeader)
        self.state.routes.unregister_broker(
            header.cluster_name, header.broker_addr, header.broker_name, header.broker_id
        )
        return _success()

    def wipe_write_perm_of_broker(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(WipeWritePermOfBrokerRequestHeader)
        count = self.state.routes.wipe_write_perm_of_broker(header.broker_name)
        log.info(
            "wipe write perm of broker[%s], client: %s, %d",
            header.broker_name,
            conn.remote_address,
            count,
        )
        return _success(header=WipeWritePermOfBrokerResponseHeader(count))

    # ------------------------------------------------------------------
    # Routes and topic lists

    def get_route_info_by_topic(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        # The hot path: read the one field directly rather than build a header.
        ext = request.ext_fields
        topic = None if ext is None else ext.get("topic")
        if topic is None:
            raise CommandError("the custom field <topic> is null")
        return self._answers.route(topic)

    def get_broker_cluster_info(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        return self._answers.cluster_info()

    def get_all_topic_list(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return self._answers.topic_list()

    def delete_topic_in_namesrv(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        header = request.decode_header(DeleteTopicInNamesrvRequestHeader)
        self.state.routes.delete_topic(header.topic)
        return _success()

    def get_topics_by_cluster(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        header = request.decode_header(GetTopicsByClusterRequestHeader)
        return _success(body=self.state.routes.topics_by_cluster(header.cluster).encode())

    def get_system_topic_list(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return _success(body=self.state.routes.system_topic_list().encode())

    def get_unit_topic_list(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        return _success(body=self.state.routes.unit_topic_list().encode())

    def get_has_unit_sub_topic_list(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        return _success(body=self.state.routes.has_unit_sub_topic_list().encode())

    def get_has_unit_sub_ununit_topic_list(
        self, conn: Connection, request: RemotingCommand
    ) -> RemotingCommand:
        return _success(body=self.state.routes.has_unit_sub_ununit_topic_list().encode())

    # ------------------------------------------------------------------
    # NameServer configuration

    def update_config(self, conn: Connection, request: RemotingCommand) -> _Answer:
        log.info("updateConfig called by %s", conn.remote_address)
        if request.body is None:
            return _success()
        try:
            properties = Properties.decode(request.body).entries
        except ProtocolError as exc:
            log.error("updateConfig: body is not properties text: %s", clipped(exc))
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "string2Properties error")
        plan = plan_update(properties)
        remark = plan.remark()
        if remark is not None:
            log.warning("updateNamesrvConfig from %s: %s", conn.remote_address, clipped(remark))
        answer = (
            _success()
            if remark is None
            else RemotingCommand.response(ResponseCode.SYSTEM_ERROR, remark)
        )
        if not plan.accepted:
            return answer
        state = self.state
        state.config = state.config.with_properties(plan.accepted)
        for key, value in plan.accepted.items():
            log.info("NameServer config %s set to %s", key, clipped(value))
        generation = state.config_file.record(plan.accepted)
        if request.is_oneway:
            return None
        config_file = state.config_file.writer

        conn.release_order(request)  # applied; only the write is awaited

        return _once_saved(lambda: config_file.wait(generation), "NameServer config", answer)

    def get_config(self, conn: Connection, request: RemotingCommand) -> RemotingCommand:
        state = self.state
        content = state.configuration.format_string(state.config)
        return _success(body=content.encode("utf-8") if content else None)


__all__ = [
    "APPLY_TOPIC_TIP",
    "INLINE_BODY_LIMIT",
    "DefaultRequestProcessor",
    "NamesrvState",
]
