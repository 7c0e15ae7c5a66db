"""The processor table: which processor answers which request code.

A processor is ``async def processor(conn, request) -> RemotingCommand | None``.
It returns the response (the transport sets the opaque, the response flag and
the wire settings), or ``None`` to send nothing now; a processor that answers
later (long polling) keeps ``conn`` and ``request`` and calls
``await conn.send(response.answering(request))`` when it is ready.

Coroutine processors run on the connection's worker tasks, several at once, so
a slow one does not hold up the others. A plain (non-async) function with the
same signature is called right where the request is decoded, in the
connection's reader, with no task switch: the fast path for quick in-memory
work such as a route lookup. It cannot wait for anything, by construction; it
holds up the connection's reading while it runs, so keep it short.

A processor registered ``ordered=True`` changes state that the peer expects to
see changed in the order it sent its requests (stores a message, moves an
offset, updates a table). The connection applies such requests one at a time,
strictly in the order they were read, on its ordered lane: the next ordered
request starts when the one before it returned, or earlier, when it called
``conn.release_order(request)`` to say its state change is made and what is
left (waiting for an fsync, say) need not hold up the next one. Requests that
are not ordered run beside the lane as before.

A guard (:meth:`ProcessorTable.set_guard`) sees every request before its
processor, as Java's server RPC hooks do: it returns None to let the request
run, or the response that refuses it (access control uses this).

The system answers Java's NettyRemotingAbstract gives when no processor runs
(:mod:`pyrocket.remoting.answers`) are importable from here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting.answers import (
    OVERLOAD_REMARK,
    REJECT_REQUEST_REMARK,
    error_remark,
    not_supported_remark,
    system_response,
)

if TYPE_CHECKING:
    from pyrocket.remoting.connection import Connection

Processor: TypeAlias = Callable[
    ["Connection", RemotingCommand],
    Awaitable[RemotingCommand | None] | RemotingCommand | None,
]
"""Answers one request: ``async def (conn, request) -> RemotingCommand | None``,
or a plain ``def`` with the same signature for quick in-memory work."""

Guard: TypeAlias = Callable[
    ["Connection", RemotingCommand],
    RemotingCommand | Awaitable[RemotingCommand | None] | None,
]
"""Runs before every processor: None lets the request through, a response
refuses it (sent unless the request is oneway). Plain and quick: it runs
where the request is decoded; for slow checks (a big body to decode) it
returns an awaitable of the same verdict instead, and the request then runs
on a worker."""

RejectCheck: TypeAlias = Callable[[], bool]
"""Java's ``rejectRequest()``: True makes the server answer SYSTEM_BUSY unrun."""


@dataclass(frozen=True, slots=True)
class Registration:
    """A processor with its optional rejection check; ``ordered``: applied
    on the connection's ordered lane (see the module docs)."""

    processor: Processor
    reject_request: RejectCheck | None = None
    ordered: bool = False


class ProcessorTable:
    """Processors by request code plus an optional default one."""

    def __init__(self) -> None:
        self._table: dict[int, Registration] = {}
        self._default: Registration | None = None
        self._guard: Guard | None = None

    def set_guard(self, guard: Guard) -> None:
        """Check every request with ``guard`` before its processor runs (for
        the processors registered so far and those registered later)."""
        if self._guard is not None:
            raise ValueError("the processor table already has a guard")
        self._guard = guard
        for code, registration in list(self._table.items()):
            self._table[code] = self._guarded(registration)
        if self._default is not None:
            self._default = self._guarded(self._default)

    def _guarded(self, registration: Registration) -> Registration:
        guard = self._guard
        if guard is None:
            return registration
        processor = registration.processor

        async def checked_later(
            conn: Connection,
            request: RemotingCommand,
            verdict: Awaitable[RemotingCommand | None],
        ) -> RemotingCommand | None:
            refusal = await verdict
            if refusal is not None:
                return refusal
            result = processor(conn, request)
            if result is None or isinstance(result, RemotingCommand):
                return result
            return await result

        def checked(
            conn: Connection, request: RemotingCommand
        ) -> Awaitable[RemotingCommand | None] | RemotingCommand | None:
            verdict = guard(conn, request)
            if verdict is None:
                return processor(conn, request)
            if isinstance(verdict, RemotingCommand):
                return verdict
            return checked_later(conn, request, verdict)

        return dataclasses.replace(registration, processor=checked)

    def register(
        self,
        code: int,
        processor: Processor,
        *,
        reject_request: RejectCheck | None = None,
        ordered: bool = False,
    ) -> None:
        """Route requests with ``code`` to ``processor`` (replacing any earlier one)."""
        self._table[int(code)] = self._guarded(Registration(processor, reject_request, ordered))

    def register_default(
        self,
        processor: Processor,
        *,
        reject_request: RejectCheck | None = None,
        ordered: bool = False,
    ) -> None:
        """Route every request code without its own processor to ``processor``."""
        self._default = self._guarded(Registration(processor, reject_request, ordered))

    def set_ordered(self, codes: Iterable[int], ordered: bool = True) -> None:
        """Mark the processors already registered for ``codes`` ordered (or
        not); codes without a processor of their own are skipped."""
        table = self._table
        for code in codes:
            registration = table.get(int(code))
            if registration is not None:
                table[int(code)] = dataclasses.replace(registration, ordered=ordered)

    def lookup(self, code: int) -> Registration | None:
        """The registration for ``code``, else the default one, else None."""
        return self._table.get(code, self._default)

    def codes(self) -> frozenset[int]:
        """The request codes with a processor of their own."""
        return frozenset(self._table)


__all__ = [
    "OVERLOAD_REMARK",
    "REJECT_REQUEST_REMARK",
    "Guard",
    "Processor",
    "ProcessorTable",
    "Registration",
    "RejectCheck",
    "error_remark",
    "not_supported_remark",
    "system_response",
]
