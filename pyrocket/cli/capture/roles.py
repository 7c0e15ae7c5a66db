"""Role inference for recorded connections: which end of a connection is the
client and which the server, and what each is (``java-producer``,
``java-namesrv`` ...), from the ports and from the requests seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from pyrocket.cli.capture.pcap import Connection, Endpoint
from pyrocket.errors import ProtocolError
from pyrocket.protocol.codes import LanguageCode, RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.fastjson import loads as fastjson_loads

#: Ports taken as a NameServer's / broker's when nothing else decides
#: (the stock ``listenPort`` values and the broker's fast port).
DEFAULT_NAMESRV_PORTS: Final = frozenset({9876})
DEFAULT_BROKER_PORTS: Final = frozenset({10911, 10909})

# Requests only a NameServer serves, and only a broker serves.
_NAMESRV_CODES: Final = frozenset(
    {
        RequestCode.PUT_KV_CONFIG,
        RequestCode.GET_KV_CONFIG,
        RequestCode.DELETE_KV_CONFIG,
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.GET_ROUTEINFO_BY_TOPIC,
        RequestCode.GET_BROKER_CLUSTER_INFO,
        RequestCode.WIPE_WRITE_PERM_OF_BROKER,
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        RequestCode.DELETE_TOPIC_IN_NAMESRV,
        RequestCode.GET_KVLIST_BY_NAMESPACE,
        RequestCode.GET_TOPICS_BY_CLUSTER,
        RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS,
        RequestCode.GET_UNIT_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_TOPIC_LIST,
        RequestCode.GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST,
        RequestCode.UPDATE_NAMESRV_CONFIG,
        RequestCode.GET_NAMESRV_CONFIG,
        RequestCode.QUERY_DATA_VERSION,
    }
)
_BROKER_CODES: Final = frozenset(
    {
        RequestCode.SEND_MESSAGE,
        RequestCode.SEND_MESSAGE_V2,
        RequestCode.SEND_BATCH_MESSAGE,
        RequestCode.PULL_MESSAGE,
        RequestCode.QUERY_CONSUMER_OFFSET,
        RequestCode.UPDATE_CONSUMER_OFFSET,
        RequestCode.UPDATE_AND_CREATE_TOPIC,
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.UPDATE_BROKER_CONFIG,
        RequestCode.GET_BROKER_CONFIG,
        RequestCode.GET_BROKER_RUNTIME_INFO,
        RequestCode.GET_MAX_OFFSET,
        RequestCode.GET_MIN_OFFSET,
        RequestCode.HEART_BEAT,
        RequestCode.UNREGISTER_CLIENT,
        RequestCode.CONSUMER_SEND_MSG_BACK,
        RequestCode.GET_CONSUMER_LIST_BY_GROUP,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        RequestCode.GET_TOPIC_STATS_INFO,
        RequestCode.GET_CONSUME_STATS,
    }
)
# Requests a broker sends as a client: registration, and a slave's sync.
_BROKER_CLIENT_CODES: Final = frozenset(
    {
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.QUERY_DATA_VERSION,
        RequestCode.GET_ALL_TOPIC_CONFIG,
        RequestCode.GET_ALL_CONSUMER_OFFSET,
        RequestCode.GET_ALL_DELAY_OFFSET,
        RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
    }
)
_SEND_CODES: Final = frozenset(
    {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
)


class _Sent(Protocol):
    """A frame of a connection, as far as roles are concerned: who sent it and
    the command it decodes to (None when it does not)."""

    @property
    def sender(self) -> Endpoint: ...

    @property
    def command(self) -> RemotingCommand | None: ...


class _KnownPorts(Protocol):
    """Ports known to be a NameServer's / a broker's."""

    @property
    def namesrv_ports(self) -> frozenset[int]: ...

    @property
    def broker_ports(self) -> frozenset[int]: ...


@dataclass(frozen=True, slots=True)
class Roles:
    client: Endpoint
    server: Endpoint
    client_kind: str
    server_kind: str


def all_roles(
    connections: list[Connection], items: Sequence[Sequence[_Sent]], options: _KnownPorts
) -> dict[int, Roles]:
    """Who is client and server on each connection, and what they are.

    A server endpoint's kind follows from the requests of every connection
    to it, and an endpoint's language from the first frame it sent on any.
    """
    ends = [_ends(c, conn_items, options) for c, conn_items in zip(connections, items, strict=True)]
    languages: dict[Endpoint, str] = {}
    requests_to: dict[Endpoint, list[RemotingCommand]] = {}
    requests_from: list[list[RemotingCommand]] = []
    for (client, server), conn_items in zip(ends, items, strict=True):
        sent: list[RemotingCommand] = []
        for item in conn_items:
            if item.command is None:
                continue
            language = LanguageCode(item.command.language).name.lower()
            languages.setdefault(item.sender, language)
            if item.sender == client and not item.command.is_response:
                sent.append(item.command)
        requests_from.append(sent)
        requests_to.setdefault(server, []).extend(sent)
    roles = {}
    for connection, (client, server), sent in zip(connections, ends, requests_from, strict=True):
        server_kind = _server_kind(server[1], requests_to[server], options)
        roles[connection.number] = Roles(
            client,
            server,
            f"{languages.get(client, 'unknown')}-{_client_kind(sent)}",
            f"{languages.get(server, 'unknown')}-{server_kind}",
        )
    return roles


def _ends(
    connection: Connection, items: Sequence[_Sent], options: _KnownPorts
) -> tuple[Endpoint, Endpoint]:
    """(client, server) of a connection."""
    a, b = connection.first, connection.second
    server_ports = (
        options.namesrv_ports | options.broker_ports | DEFAULT_NAMESRV_PORTS | DEFAULT_BROKER_PORTS
    )
    if connection.syn_from is not None:
        client = connection.syn_from
    elif connection.syn_ack_from is not None:
        client = b if connection.syn_ack_from == a else a
    elif (a[1] in server_ports) != (b[1] in server_ports):
        client = b if a[1] in server_ports else a
    else:
        first_request = next(
            (i.sender for i in items if i.command is not None and not i.command.is_response), a
        )
        client = first_request
    return client, b if client == a else a


def _server_kind(port: int, requests: list[RemotingCommand], options: _KnownPorts) -> str:
    if port in options.namesrv_ports:
        return "namesrv"
    if port in options.broker_ports:
        return "broker"
    codes = {c.code for c in requests}
    if codes & _NAMESRV_CODES and not codes & _BROKER_CODES:
        return "namesrv"
    if codes & _BROKER_CODES and not codes & _NAMESRV_CODES:
        return "broker"
    if port in DEFAULT_NAMESRV_PORTS:
        return "namesrv"
    if port in DEFAULT_BROKER_PORTS:
        return "broker"
    return "server"


def _client_kind(requests: list[RemotingCommand]) -> str:
    codes = {c.code for c in requests}
    if any("AccessKey" in (c.ext_fields or {}) for c in requests):
        # mqadmin signs every request (its stock tools.yml credentials); so
        # would any client with ACL credentials.
        return "mqadmin"
    if codes & _BROKER_CLIENT_CODES:
        return "broker"
    for command in requests:
        if command.code == RequestCode.HEART_BEAT and command.body:
            consume_types = _consume_types(command.body)
            if "CONSUME_PASSIVELY" in consume_types:
                return "push-consumer"
            if "CONSUME_ACTIVELY" in consume_types:
                return "pull-consumer"
    if codes & {RequestCode.PULL_MESSAGE}:
        return "consumer"
    if codes & _SEND_CODES or RequestCode.HEART_BEAT in codes:
        return "producer"
    return "client"


def _consume_types(body: bytes) -> set[str]:
    try:
        value = fastjson_loads(body)
    except ProtocolError:
        return set()
    consumers = value.get("consumerDataSet") if isinstance(value, dict) else None
    if not isinstance(consumers, list):
        return set()
    return {str(c.get("consumeType")) for c in consumers if isinstance(c, dict)}
