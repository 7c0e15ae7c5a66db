"""The requests a broker sends to a NameServer, built as Java's
``BrokerOuterAPI`` builds them: REGISTER_BROKER, UNREGISTER_BROKER and
QUERY_DATA_VERSION, from the broker's :class:`BrokerIdentity`.

Sans-I/O: these functions only make :class:`RemotingCommand` values, so the
broker (which sends them to every NameServer) and the client's
:class:`~pyrocket.client.namesrv_api.NameServerAPI` (which sends one) share
them. The header's ext fields come out in Java's HashMap order, the
RegisterBrokerBody plain or deflated, ``bodyCrc32`` computed over the final
body bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyrocket.protocol.bodies.topic import (
    DataVersion,
    RegisterBrokerBody,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.checksum import crc32
from pyrocket.protocol.codes import RequestCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import (
    QueryDataVersionRequestHeader,
    RegisterBrokerRequestHeader,
    UnRegisterBrokerRequestHeader,
)


@dataclass(frozen=True, slots=True)
class BrokerIdentity:
    """Who registers: the fields every NameServer request of a broker carries."""

    cluster_name: str
    broker_addr: str
    broker_name: str
    broker_id: int
    ha_server_addr: str


def register_broker_request(
    identity: BrokerIdentity,
    wrapper: TopicConfigSerializeWrapper,
    filter_server_list: Sequence[str] = (),
    *,
    compressed: bool = False,
    oneway: bool = False,
) -> RemotingCommand:
    """REGISTER_BROKER as ``BrokerOuterAPI.registerBrokerAll`` builds it.

    Encode the result before the topic table changes again.
    """
    body = RegisterBrokerBody(wrapper, tuple(filter_server_list)).encode(compressed)
    header = RegisterBrokerRequestHeader(
        broker_name=identity.broker_name,
        broker_addr=identity.broker_addr,
        cluster_name=identity.cluster_name,
        ha_server_addr=identity.ha_server_addr,
        broker_id=identity.broker_id,
        compressed=compressed,
        body_crc32=crc32(body),
    )
    return RemotingCommand.request(RequestCode.REGISTER_BROKER, header, body=body, oneway=oneway)


def unregister_broker_request(identity: BrokerIdentity) -> RemotingCommand:
    """UNREGISTER_BROKER as ``BrokerOuterAPI.unregisterBroker`` builds it."""
    header = UnRegisterBrokerRequestHeader(
        broker_name=identity.broker_name,
        broker_addr=identity.broker_addr,
        cluster_name=identity.cluster_name,
        broker_id=identity.broker_id,
    )
    return RemotingCommand.request(RequestCode.UNREGISTER_BROKER, header)


def query_data_version_request(
    identity: BrokerIdentity, data_version: DataVersion
) -> RemotingCommand:
    """QUERY_DATA_VERSION as ``BrokerOuterAPI.needRegister`` builds it."""
    header = QueryDataVersionRequestHeader(
        broker_name=identity.broker_name,
        broker_addr=identity.broker_addr,
        cluster_name=identity.cluster_name,
        broker_id=identity.broker_id,
    )
    return RemotingCommand.request(
        RequestCode.QUERY_DATA_VERSION, header, body=data_version.encode()
    )


__all__ = [
    "BrokerIdentity",
    "query_data_version_request",
    "register_broker_request",
    "unregister_broker_request",
]
