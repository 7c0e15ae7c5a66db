"""The NameServer's answers to the reads clients repeat most, kept ready.

GET_ROUTEINFO_BY_TOPIC, GET_BROKER_CLUSTER_INFO and
GET_ALL_TOPIC_LIST_FROM_NAMESERVER are asked again and again of tables that
seldom change, so each answer is kept as the finished response command (its
body encoded) and handed out again while nothing it was built from has
changed: the route tables (:attr:`RouteTables.version
<pyrocket.namesrv.routetables.RouteTables.version>`), the KV table
(:attr:`KVConfigManager.version
<pyrocket.namesrv.kvconfig.KVConfigManager.version>`, for
``orderTopicConf``) and the configuration object (``orderMessageEnable``).
Any change of one of them drops every kept answer; the next query builds its
answer again from the tables, byte for byte what it would have been without
the cache.

Kept answers are bounded: only topics that have a route are kept (a query
for a topic that does not exist is answered afresh each time, so a peer
cannot grow the cache with made-up names), at most :data:`ROUTES_KEPT` of
them, and topics whose routes are equal share one answer (a route names no
topic, so every topic of one broker usually has the same one).
"""

from __future__ import annotations

from typing import Final, Protocol

from pyrocket.namesrv.config import NamesrvConfig
from pyrocket.namesrv.kvconfig import KVConfigManager
from pyrocket.namesrv.routeinfo import RouteInfoManager
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RESPONSE_FLAG, RemotingCommand

#: FAQUrl.suggestTodo(FAQUrl.APPLY_TOPIC_URL), appended to TOPIC_NOT_EXIST remarks.
APPLY_TOPIC_TIP: Final = "\nSee http://rocketmq.apache.org/docs/faq/ for further details."

#: Topics whose route answer is kept at most; beyond, the cache starts over.
ROUTES_KEPT: Final = 16_384


class AnswerSources(Protocol):
    """What the answers are built from (the NameServer's state)."""

    @property
    def routes(self) -> RouteInfoManager: ...

    @property
    def kv(self) -> KVConfigManager: ...

    @property
    def config(self) -> NamesrvConfig: ...

    def order_topic_conf(self, topic: str) -> str | None: ...


def topic_not_exist(topic: str) -> RemotingCommand:
    """TOPIC_NOT_EXIST with Java's remark."""
    return RemotingCommand.response(
        ResponseCode.TOPIC_NOT_EXIST,
        f"No topic route info in name server for the topic: {topic}{APPLY_TOPIC_TIP}",
    )


class AnswerCache:
    """Finished answers of the hot reads, valid while their sources are
    unchanged. Not thread-safe; no I/O."""

    def __init__(self, sources: AnswerSources) -> None:
        self._sources = sources
        # What the kept answers were built from.
        self._routes_version = -1
        self._kv_version = -1
        self._config: NamesrvConfig | None = None
        # Topic -> its route answer; body -> the one answer carrying it.
        self._routes: dict[str, RemotingCommand] = {}
        self._by_body: dict[bytes, RemotingCommand] = {}
        self._cluster_info: RemotingCommand | None = None
        self._topic_list: RemotingCommand | None = None

    def _check(self) -> None:
        sources = self._sources
        routes_version = sources.routes.version
        kv_version = sources.kv.version
        config = sources.config
        if (
            routes_version != self._routes_version
            or kv_version != self._kv_version
            or config is not self._config
        ):
            self._routes_version = routes_version
            self._kv_version = kv_version
            self._config = config
            self._forget()

    def _forget(self) -> None:
        self._routes.clear()
        self._by_body.clear()
        self._cluster_info = self._topic_list = None

    def route(self, topic: str) -> RemotingCommand:
        """GET_ROUTEINFO_BY_TOPIC's answer for ``topic``: SUCCESS with its
        route, or TOPIC_NOT_EXIST."""
        sources = self._sources
        # _check() spelled out: this runs for every route query.
        if (
            sources.routes.version != self._routes_version
            or sources.kv.version != self._kv_version
            or sources.config is not self._config
        ):
            self._check()
        answer = self._routes.get(topic)
        if answer is not None:
            return answer
        body = sources.routes.route_body(topic, sources.order_topic_conf(topic))
        if body is None:
            return topic_not_exist(topic)
        if len(self._routes) >= ROUTES_KEPT:
            self._routes.clear()
            self._by_body.clear()
        answer = self._by_body.get(body)
        if answer is None:
            answer = RemotingCommand(ResponseCode.SUCCESS, flag=RESPONSE_FLAG, body=body)
            self._by_body[body] = answer
        self._routes[topic] = answer
        return answer

    def cluster_info(self) -> RemotingCommand:
        """GET_BROKER_CLUSTER_INFO's answer."""
        self._check()
        answer = self._cluster_info
        if answer is None:
            body = self._sources.routes.cluster_info_body()
            answer = self._cluster_info = RemotingCommand.response(ResponseCode.SUCCESS, body=body)
        return answer

    def topic_list(self) -> RemotingCommand:
        """GET_ALL_TOPIC_LIST_FROM_NAMESERVER's answer."""
        self._check()
        answer = self._topic_list
        if answer is None:
            body = self._sources.routes.all_topic_list().encode()
            answer = self._topic_list = RemotingCommand.response(ResponseCode.SUCCESS, body=body)
        return answer


__all__ = ["APPLY_TOPIC_TIP", "ROUTES_KEPT", "AnswerCache", "AnswerSources", "topic_not_exist"]
