"""Addresses as RocketMQ writes them: ``"host:port"`` strings.

Java renders a peer with ``RemotingHelper.parseChannelRemoteAddr`` (the IP
and port, no host name, no brackets) and parses ``"host:port"`` at the last
colon; these helpers do the same for trio streams.
"""

from __future__ import annotations

import trio

from pyrocket.errors import ConfigError


def split_address(addr: str) -> tuple[str, int]:
    """``"host:port"`` -> (host, port); IPv6 hosts may be bracketed.

    Raises ConfigError for text that has no valid port.
    """
    host, sep, port_text = addr.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"address {addr!r} is not host:port")
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ConfigError(f"address {addr!r} has no valid port") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"address {addr!r} has a port out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def format_sockaddr(sockaddr: object) -> str:
    """``"ip:port"`` for a socket address tuple, as Java prints a peer."""
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return f"{sockaddr[0]}:{sockaddr[1]}"
    return str(sockaddr)


def stream_addresses(stream: trio.abc.Stream) -> tuple[str, str]:
    """(remote, local) ``"ip:port"`` of a socket stream (or of a TLS stream
    over one); ``("", "")`` if unknown."""
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            return (
                format_sockaddr(stream.socket.getpeername()),
                format_sockaddr(stream.socket.getsockname()),
            )
        except OSError:
            return "", ""
    return "", ""
