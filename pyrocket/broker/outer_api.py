"""What a broker says to the NameServers (Java's ``BrokerOuterAPI``).

REGISTER_BROKER, UNREGISTER_BROKER and QUERY_DATA_VERSION go to every
configured NameServer at once: one task per NameServer in a nursery, each with
its own timeout, so a NameServer that is down or slow costs the others nothing.
Each call returns one :class:`NamesrvOutcome` per NameServer instead of
raising; the caller decides what to log.

The requests themselves are built in :mod:`pyrocket.protocol.broker_requests`
(shared with the client's NameServer API); their names are re-exported here.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from pyrocket.errors import (
    CommandError,
    ProtocolError,
    PyrocketError,
    RemotingTimeoutError,
    RemotingTooMuchRequestError,
    ResponseError,
)
from pyrocket.protocol.bodies.topic import (
    DataVersion,
    RegisterBrokerResult,
    TopicConfigSerializeWrapper,
)
from pyrocket.protocol.broker_requests import (
    BrokerIdentity,
    query_data_version_request,
    register_broker_request,
    unregister_broker_request,
)
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import QueryDataVersionResponseHeader
from pyrocket.remoting import RemotingClient

log = logging.getLogger("pyrocket.broker")

#: BrokerOuterAPI.unregisterBroker's timeout (seconds).
UNREGISTER_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class NamesrvOutcome:
    """What one NameServer answered to one call.

    ``error`` is None on success. ``result`` is a REGISTER_BROKER answer (None
    for a oneway registration); ``changed`` a QUERY_DATA_VERSION verdict.
    """

    namesrv_addr: str
    error: PyrocketError | None = None
    result: RegisterBrokerResult | None = None
    changed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def split_namesrv_addr(text: str | None) -> list[str]:
    """``namesrvAddr`` -> its addresses (``;``-separated, blanks dropped)."""
    if not text:
        return []
    return [part.strip() for part in text.split(";") if part.strip()]


class BrokerOuterAPI:
    """Calls to every NameServer over a shared RemotingClient (which must be
    running: ``async with client``)."""

    def __init__(self, client: RemotingClient, namesrv_addresses: Sequence[str] = ()) -> None:
        self.client = client
        self._addresses: list[str] = []
        self.update_namesrv_address_list(namesrv_addresses)

    @property
    def namesrv_addresses(self) -> list[str]:
        return list(self._addresses)

    def update_namesrv_address_list(self, addresses: str | Sequence[str]) -> None:
        """Replace the NameServer list (a ``namesrvAddr`` string or a list).
        Duplicates are dropped: each NameServer gets each request once."""
        items = split_namesrv_addr(addresses) if isinstance(addresses, str) else list(addresses)
        unique: list[str] = []
        for address in items:
            address = address.strip()
            if address and address not in unique:
                unique.append(address)
        self._addresses = unique
        self.client.update_namesrv_addresses(unique)

    async def _each(
        self,
        call: type[_Call],
        request: RemotingCommand,
        timeout: float,  # noqa: ASYNC109 (each call's own timeout)
        extra: object = None,
    ) -> list[NamesrvOutcome]:
        outcomes: list[NamesrvOutcome] = []
        addresses = list(self._addresses)
        if not addresses:
            return outcomes

        async def one(addr: str) -> None:
            outcomes.append(await call(self.client, addr, request, timeout, extra).run())

        async with trio.open_nursery() as nursery:
            for addr in addresses:
                nursery.start_soon(one, addr)
        return outcomes

    async def register_broker_all(
        self,
        identity: BrokerIdentity,
        wrapper: TopicConfigSerializeWrapper,
        filter_server_list: Sequence[str] = (),
        *,
        oneway: bool = False,
        timeout: float = 6.0,  # noqa: ASYNC109 (Java's registerBrokerTimeoutMills)
        compressed: bool = False,
    ) -> list[NamesrvOutcome]:
        """REGISTER_BROKER to every NameServer; outcomes in completion order."""
        request = register_broker_request(
            identity, wrapper, filter_server_list, compressed=compressed, oneway=oneway
        )
        return await self._each(_Register, request, timeout)

    async def unregister_broker_all(
        self,
        identity: BrokerIdentity,
        timeout: float = UNREGISTER_TIMEOUT,  # noqa: ASYNC109
    ) -> list[NamesrvOutcome]:
        """UNREGISTER_BROKER to every NameServer."""
        return await self._each(_Unregister, unregister_broker_request(identity), timeout)

    async def need_register(
        self,
        identity: BrokerIdentity,
        data_version: DataVersion,
        timeout: float = 6.0,  # noqa: ASYNC109
    ) -> list[NamesrvOutcome]:
        """QUERY_DATA_VERSION to every NameServer; an outcome's ``changed`` says
        whether that NameServer needs a registration (a failed query counts as
        changed, a non-SUCCESS answer as unchanged, as in Java)."""
        request = query_data_version_request(identity, data_version)
        return await self._each(_Query, request, timeout, data_version)


class _Call:
    """One request to one NameServer, turned into an outcome."""

    def __init__(
        self,
        client: RemotingClient,
        addr: str,
        request: RemotingCommand,
        timeout: float,
        extra: object,
    ) -> None:
        self.client = client
        self.addr = addr
        self.request = request
        self.timeout = timeout
        self.extra = extra

    async def run(self) -> NamesrvOutcome:
        try:
            with trio.fail_after(self.timeout):
                return await self.call()
        except trio.TooSlowError:
            timeout = RemotingTimeoutError(f"no answer from {self.addr} within {self.timeout:g}s")
            return self.failed(timeout)
        except PyrocketError as exc:
            return self.failed(exc)

    def failed(self, error: PyrocketError) -> NamesrvOutcome:
        return NamesrvOutcome(self.addr, error=error)

    async def call(self) -> NamesrvOutcome:
        raise NotImplementedError

    async def invoke(self) -> RemotingCommand:
        return await self.client.invoke_sync(self.addr, self.request, self.timeout)


class _Register(_Call):
    async def call(self) -> NamesrvOutcome:
        if self.request.is_oneway:
            # Java ignores a oneway call it had no permit for.
            with contextlib.suppress(RemotingTooMuchRequestError):
                await self.client.invoke_oneway(self.addr, self.request, self.timeout)
            return NamesrvOutcome(self.addr)
        response = await self.invoke()
        if response.code != ResponseCode.SUCCESS:
            raise ResponseError(response.code, response.remark)
        try:
            result = RegisterBrokerResult.from_response(response)
        except (CommandError, ProtocolError) as exc:
            raise ResponseError(response.code, f"unreadable REGISTER_BROKER answer: {exc}") from exc
        return NamesrvOutcome(self.addr, result=result)


class _Unregister(_Call):
    async def call(self) -> NamesrvOutcome:
        response = await self.invoke()
        if response.code != ResponseCode.SUCCESS:
            raise ResponseError(response.code, response.remark)
        return NamesrvOutcome(self.addr)


class _Query(_Call):
    async def call(self) -> NamesrvOutcome:
        response = await self.invoke()
        if response.code != ResponseCode.SUCCESS:
            return NamesrvOutcome(
                self.addr, error=ResponseError(response.code, response.remark), changed=False
            )
        try:
            changed = response.decode_header(QueryDataVersionResponseHeader).changed
            if response.body is not None:
                theirs = DataVersion.decode(response.body)
                if theirs != self.extra:
                    changed = True
        except (CommandError, ProtocolError) as exc:
            return NamesrvOutcome(
                self.addr, error=ResponseError(response.code, str(exc)), changed=True
            )
        return NamesrvOutcome(self.addr, changed=changed)

    def failed(self, error: PyrocketError) -> NamesrvOutcome:
        # A NameServer we cannot ask may have lost us: register.
        return NamesrvOutcome(self.addr, error=error, changed=True)


__all__ = [
    "UNREGISTER_TIMEOUT",
    "BrokerIdentity",
    "BrokerOuterAPI",
    "NamesrvOutcome",
    "query_data_version_request",
    "register_broker_request",
    "split_namesrv_addr",
    "unregister_broker_request",
]
