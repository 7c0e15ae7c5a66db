"""Message ids: the offset id (store host + commit-log offset, upper-case
hex) the broker answers a send with, and the client's unique id
(``MessageClientIDSetter``, the ``UNIQ_KEY`` property).
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyrocket.errors import LocalProtocolError, ProtocolError
from pyrocket.protocol.message.host import HostPort

_I64 = struct.Struct(">q")


def create_offset_message_id(store_host: HostPort, commit_log_offset: int) -> str:
    """The id the broker answers a send with: store host address, port and
    commit-log offset as upper-case hex (32 characters for IPv4, 56 for IPv6)."""
    if commit_log_offset >= 0:
        # One id per stored message: the host's hex is worked out once.
        return _host_hex(store_host) + f"{commit_log_offset:016X}"
    return (store_host.packed() + _I64.pack(commit_log_offset)).hex().upper()


@functools.lru_cache(maxsize=64)
def _host_hex(host: HostPort) -> str:
    return host.packed().hex().upper()


def decode_offset_message_id(msg_id: str) -> tuple[HostPort, int]:
    """The store host and commit-log offset of an offset message id.

    Raises ProtocolError when ``msg_id`` is not 32 or 56 hex digits.
    """
    if len(msg_id) not in (32, 56):
        raise ProtocolError(f"message id of {len(msg_id)} characters is neither 32 nor 56")
    try:
        raw = bytes.fromhex(msg_id)
    except ValueError as exc:
        raise ProtocolError(f"message id {msg_id!r} is not hex") from exc
    ip_length = 4 if len(raw) == 16 else 16
    port = int.from_bytes(raw[ip_length : ip_length + 4], "big", signed=True)
    if not 0 <= port <= 0xFFFF:
        raise ProtocolError(f"message id port {port} out of range")
    (offset,) = _I64.unpack_from(raw, ip_length + 4)
    return HostPort(raw[:ip_length], port), offset


@dataclass(frozen=True, slots=True)
class UniqueId:
    """The parts of a client unique message id (``UNIQ_KEY``)."""

    ip: bytes
    pid: int
    class_loader_hash: int
    time_offset_ms: int
    counter: int

    @property
    def host(self) -> str:
        return str(ipaddress.ip_address(self.ip))

    def approximate_time_ms(self, now_ms: int | None = None, tz: _dt.tzinfo | None = None) -> int:
        """When the id was made (``getNearlyTimeFromID``): the offset counts
        from the start of a month, taken as this month unless that lands in the
        future, then the previous one."""
        now = _wall_ms() if now_ms is None else now_ms
        start, _ = month_bounds_ms(now, tz)
        if start + self.time_offset_ms >= now:
            start, _ = month_bounds_ms(start - 1, tz)
        return start + self.time_offset_ms


def parse_unique_id(unique_id: str) -> UniqueId:
    """Split a client unique id into its parts.

    Raises ProtocolError when it is not 32 (IPv4) or 56 (IPv6) hex digits.
    """
    if len(unique_id) not in (32, 56):
        raise ProtocolError(f"unique id of {len(unique_id)} characters is neither 32 nor 56")
    try:
        raw = bytes.fromhex(unique_id)
    except ValueError as exc:
        raise ProtocolError(f"unique id {unique_id!r} is not hex") from exc
    ip_length = len(raw) - 12
    pid = int.from_bytes(raw[ip_length : ip_length + 2], "big")
    class_loader_hash = int.from_bytes(raw[ip_length + 2 : ip_length + 6], "big", signed=True)
    # Unsigned: a month has more milliseconds than an i32 holds (Java reads it
    # back through a long, too).
    time_offset = int.from_bytes(raw[ip_length + 6 : ip_length + 10], "big")
    counter = int.from_bytes(raw[ip_length + 10 :], "big")
    return UniqueId(raw[:ip_length], pid, class_loader_hash, time_offset, counter)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def month_bounds_ms(now_ms: int, tz: _dt.tzinfo | None = None) -> tuple[int, int]:
    """Start of the month containing ``now_ms`` and of the next one, in ms,
    in ``tz`` (the local zone when None), as Java's ``Calendar`` computes them."""
    moment = _dt.datetime.fromtimestamp(now_ms / 1000, tz)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    nxt = start.replace(year=year, month=month)
    if tz is None:
        # Naive local datetimes: mktime resolves the zone offset at each instant.
        return int(time.mktime(start.timetuple())) * 1000, int(time.mktime(nxt.timetuple())) * 1000
    return int(start.timestamp() * 1000), int(nxt.timestamp() * 1000)


class UniqueIdGenerator:
    """Makes ``UNIQ_KEY`` values as ``MessageClientIDSetter`` does, with the
    state (prefix, counter, month window) per instance instead of global.

    An id is 16 bytes (28 for an IPv6 ``ip``) in upper-case hex: the IP, the
    low 16 bits of the pid, the class-loader hash, milliseconds since the start
    of the current month (i32) and a 16-bit counter.
    """

    def __init__(
        self,
        ip: bytes,
        pid: int,
        class_loader_hash: int,
        *,
        now_ms: Callable[[], int] = _wall_ms,
        tz: _dt.tzinfo | None = None,
    ) -> None:
        if len(ip) not in (4, 16):
            raise LocalProtocolError(f"an IP address has 4 or 16 bytes, not {len(ip)}")
        head = (
            ip
            + (pid & 0xFFFF).to_bytes(2, "big")
            + (class_loader_hash & 0xFFFFFFFF).to_bytes(4, "big")
        )
        self._prefix = head.hex().upper()
        self._now_ms = now_ms
        self._tz = tz
        self._counter = 0
        self._start, self._next_start = month_bounds_ms(now_ms(), tz)

    def next_id(self) -> str:
        """A fresh unique id."""
        now = self._now_ms()
        if now >= self._next_start:
            self._start, self._next_start = month_bounds_ms(now, self._tz)
        span = (now - self._start) & 0xFFFFFFFF
        counter = self._counter & 0xFFFF
        self._counter += 1
        return f"{self._prefix}{span:08X}{counter:04X}"


__all__ = [
    "UniqueId",
    "UniqueIdGenerator",
    "create_offset_message_id",
    "decode_offset_message_id",
    "month_bounds_ms",
    "parse_unique_id",
]
