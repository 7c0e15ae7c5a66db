"""White-list address patterns, as Java's RemoteAddressStrategyFactory reads
them: ``*`` (anyone), an exact address, ``a.b.c.*`` / ``a.b.*.*``, ranges
``a.b.c.1-10`` / ``a.b.1-10.*``, ``a.b.c.{1,2,3}`` and comma-separated lists of
exact addresses. A blank pattern matches nobody.

IPv6 takes the same forms as Java reads them: exact addresses and lists
(compared in their full form), ``prefix:*``, ``prefix:1-ff`` and
``prefix:1-ff:*`` (the group after the prefix, in hex, in the range, the
groups after it free; a prefix with ``::`` is filled with zero groups up to
the seventh, or with ``:*`` after the range the sixth, group).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from pyrocket.errors import ConfigError

AddressMatcher = Callable[[str], bool]
"""True when a peer's IP (no port) is covered by the pattern."""

_ANYONE = frozenset({"*", "*.*.*.*", "*:*:*:*:*:*:*:*"})


def peer_ip(remote_address: str) -> str:
    """The IP of ``"ip:port"`` (Java cuts at the last colon)."""
    host = remote_address.rpartition(":")[0] if ":" in remote_address else remote_address
    return host.strip("[]")


def _canonical(address: str) -> str | None:
    """The comparable form of an IPv4 or IPv6 address, None if it is neither."""
    text = address.strip()
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address):
        return parsed.exploded.upper()
    return str(parsed)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _nobody(_: str) -> bool:
    return False


def _anyone(_: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _Set:
    members: frozenset[str]

    def __call__(self, ip: str) -> bool:
        canonical = _canonical(ip)
        return canonical is not None and canonical in self.members


@dataclass(frozen=True, slots=True)
class _Range:
    """The first ``index`` octets fixed (``head``), octet ``index`` in
    ``[start, end]``, the octets after it free."""

    head: tuple[str, ...]
    index: int
    start: int
    end: int

    def __call__(self, ip: str) -> bool:
        if not _is_ipv4(ip):
            return False
        parts = ip.split(".")
        if tuple(parts[: self.index]) != self.head:
            return False
        return self.start <= int(parts[self.index]) <= self.end


def _bad(pattern: str, why: str) -> ConfigError:
    return ConfigError(f"white remote address {pattern!r}: {why}")


def _octet(text: str, pattern: str) -> int:
    if not text.strip().isdigit():
        raise _bad(pattern, f"{text!r} is not a number")
    value = int(text)
    if not 0 <= value <= 255:
        raise _bad(pattern, f"{value} is out of 0-255")
    return value


def _members(addresses: list[str], pattern: str) -> frozenset[str]:
    found = set()
    for address in addresses:
        canonical = _canonical(address)
        if canonical is None:
            raise _bad(pattern, f"{address.strip()!r} is not an IP address")
        found.add(canonical)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class _Range6:
    """The first ``len(head)`` groups fixed, the next in ``[start, end]``."""

    head: tuple[int, ...]
    start: int
    end: int

    def __call__(self, ip: str) -> bool:
        try:
            parsed = ipaddress.IPv6Address(ip)
        except ValueError:
            return False
        groups = [int(group, 16) for group in parsed.exploded.split(":")]
        index = len(self.head)
        return tuple(groups[:index]) == self.head and self.start <= groups[index] <= self.end


def _group(text: str, pattern: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise _bad(pattern, f"{text!r} is not a hex group") from None
    if not 0 <= value <= 0xFFFF or not text.isalnum():
        raise _bad(pattern, f"{text!r} is out of 0-ffff")
    return value


def _range6(pattern: str) -> _Range6:
    if "*" in pattern and not pattern.endswith("*"):
        raise _bad(pattern, "'*' must be the last part")
    parts = pattern.split(":")
    if parts[-1] == "*" and len(parts) >= 2 and "-" in parts[-2]:
        range_text, prefix, position = parts[-2], ":".join(parts[:-2]), 6
    elif parts[-1] == "*":
        range_text, prefix, position = "0-ffff", ":".join(parts[:-1]), 7
    elif "-" in parts[-1]:
        range_text, prefix, position = parts[-1], ":".join(parts[:-1]), 7
    else:
        raise _bad(pattern, "a range must be in the last group, or before a final '*'")
    low, _, high = range_text.partition("-")
    start, end = _group(low, pattern), _group(high, pattern)
    if start > end:
        raise _bad(pattern, f"range {range_text!r} is empty")
    if "::" in prefix:
        left, _, right = prefix.partition("::")
        lefts = [g for g in left.split(":") if g]
        rights = [g for g in right.split(":") if g]
        missing = position - len(lefts) - len(rights)
        if missing < 0 or "::" in right:
            raise _bad(pattern, "too many groups")
        groups = lefts + ["0"] * missing + rights
    else:
        # Without "::" the prefix is taken as written: the range is the group
        # right after it, the groups after the range are free.
        groups = prefix.split(":") if prefix else []
        if not 1 <= len(groups) <= position:
            raise _bad(pattern, f"a range follows 1 to {position} groups")
    return _Range6(tuple(_group(g, pattern) for g in groups), start, end)


def _range(pattern: str) -> _Range | _Range6:
    if ":" in pattern:
        return _range6(pattern)
    parts = [part.strip() for part in pattern.split(".")]
    if len(parts) != 4:
        raise _bad(pattern, "an IPv4 pattern has four parts")
    for index in (1, 2, 3):
        value = parts[index]
        if value == "*":
            start, end = 0, 255
        elif "-" in value:
            low, _, high = value.partition("-")
            if not low:
                raise _bad(pattern, f"range {value!r} has no start")
            start, end = _octet(low, pattern), _octet(high, pattern)
            if start > end:
                raise _bad(pattern, f"range {value!r} is empty")
        else:
            continue
        head = tuple(parts[:index])
        for octet in head:
            _octet(octet, pattern)
        rest = parts[index + 1 :]
        if any(part != "*" for part in rest):
            raise _bad(pattern, "only '*' may follow a range")
        return _Range(tuple(str(int(octet)) for octet in head), index, start, end)
    raise _bad(pattern, "no range or '*' in the second to fourth part")


def address_matcher(pattern: str | None) -> AddressMatcher:
    """The matcher for one pattern. Raises ConfigError for a pattern Java
    would refuse (or one this module does not read, see the module docs)."""
    if pattern is None or not pattern.strip():
        return _nobody
    pattern = pattern.strip()
    if pattern in _ANYONE:
        return _anyone
    if pattern.endswith("}"):
        head, brace, inner = pattern.rpartition("{")
        if not brace or not (head.endswith(".") or head.endswith(":")):
            raise _bad(pattern, "'{...}' must be the last part")
        choices = [item for item in inner[:-1].split(",") if item.strip()]
        return _Set(_members([head + item.strip() for item in choices], pattern))
    if "," in pattern:
        return _Set(_members([item for item in pattern.split(",") if item.strip()], pattern))
    if "*" in pattern or "-" in pattern:
        return _range(pattern)
    return _Set(_members([pattern], pattern))


__all__ = ["AddressMatcher", "address_matcher", "peer_ip"]
