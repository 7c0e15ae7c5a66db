"""Host addresses as messages carry them: packed IPv4 or IPv6 address and
port (Java's ``InetSocketAddress`` in the stored layout and message ids).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from pyrocket.protocol.frozen import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class HostPort:
    """An IP address and port as a message carries them (``InetSocketAddress``).

    ``ip`` is the packed address: 4 bytes for IPv4, 16 for IPv6.
    """

    ip: bytes
    port: int

    def __post_init__(self) -> None:
        if len(self.ip) not in (4, 16):
            raise ValueError(f"an IP address has 4 or 16 bytes, not {len(self.ip)}")
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")

    @classmethod
    def of(cls, host: str, port: int) -> HostPort:
        """From a textual IP address. An IPv4-mapped IPv6 address becomes IPv4,
        as Java's ``InetAddress`` does. Raises ValueError for anything else."""
        address = ipaddress.ip_address(host.strip("[]"))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return cls(address.packed, port)

    @classmethod
    def parse(cls, text: str) -> HostPort:
        """From ``"ip:port"`` (``"[v6]:port"`` for IPv6). Raises ValueError."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"not an ip:port address: {text!r}")
        return cls.of(host, int(port))

    @property
    def is_v6(self) -> bool:
        return len(self.ip) == 16

    @property
    def host(self) -> str:
        return str(ipaddress.ip_address(self.ip))

    def packed(self) -> bytes:
        """The stored form: address bytes, then the port as a big-endian i32."""
        return self.ip + self.port.to_bytes(4, "big")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_v6 else f"{self.host}:{self.port}"


UNSPECIFIED_HOST: Final = HostPort(b"\x00\x00\x00\x00", 0)


__all__ = [
    "UNSPECIFIED_HOST",
    "HostPort",
]
