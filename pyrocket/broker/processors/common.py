"""What several message-path processors share: Java's remark helpers
(``FAQUrl.suggestTodo``, ``TopicConfig.toString``, a channel's address as
``SocketAddress.toString`` prints it), permission bits, and the host values
stored in messages.
"""

from __future__ import annotations

import functools
import socket
from typing import Final

from pyrocket.broker.topic_config import perm_to_string
from pyrocket.protocol.bodies.topic import PERM_READ, PERM_WRITE, TopicConfig
from pyrocket.protocol.message import UNSPECIFIED_HOST, HostPort

#: Every FAQUrl constant of 4.7.0 points here.
FAQ_URL: Final = "http://rocketmq.apache.org/docs/faq/"
#: MixAll.MASTER_ID.
MASTER_ID: Final = 0


def suggest_todo(url: str = FAQ_URL) -> str:
    """``FAQUrl.suggestTodo``: the hint Java appends to some remarks."""
    return f"\nSee {url} for further details."


def is_readable(perm: int) -> bool:
    return perm & PERM_READ == PERM_READ


def is_writeable(perm: int) -> bool:
    return perm & PERM_WRITE == PERM_WRITE


def retry_topic(group: str) -> str:
    """``MixAll.getRetryTopic``."""
    return f"%RETRY%{group}"


def dlq_topic(group: str) -> str:
    """``MixAll.getDLQTopic``."""
    return f"%DLQ%{group}"


def topic_config_string(config: TopicConfig) -> str:
    """``TopicConfig.toString()`` (quoted by some remarks)."""
    return (
        f"TopicConfig [topicName={config.topic_name}, readQueueNums={config.read_queue_nums}, "
        f"writeQueueNums={config.write_queue_nums}, perm={perm_to_string(config.perm)}, "
        f"topicFilterType={config.topic_filter_type.name}, topicSysFlag={config.topic_sys_flag}, "
        f"order={'true' if config.order else 'false'}]"
    )


def socket_address_string(remote_address: str) -> str:
    """A channel's remote address as Java's ``InetSocketAddress.toString()``
    prints it inside remarks: ``/127.0.0.1:54321``."""
    return f"/{remote_address}"


@functools.lru_cache(maxsize=4096)
def host_port(address: str) -> HostPort:
    """``ip:port`` (a connection's peer) as the host a message stores; the
    unspecified address when it cannot be read as one."""
    try:
        return HostPort.parse(address)
    except ValueError:
        return UNSPECIFIED_HOST


@functools.lru_cache(maxsize=64)
def resolve_host_port(host: str, port: int) -> HostPort:
    """``new InetSocketAddress(host, port)``: an IP address as it is, a host
    name resolved (the unspecified address when it does not resolve).

    A host name is looked up once (:func:`resolved_ip`); the broker does that
    at start, in a thread, so no request waits on a name lookup."""
    try:
        return HostPort.of(host, port)
    except ValueError:
        pass
    ip = resolved_ip(host)
    try:
        return HostPort.of(ip, port) if ip is not None else HostPort(UNSPECIFIED_HOST.ip, port)
    except ValueError:
        return HostPort(UNSPECIFIED_HOST.ip, port)


@functools.lru_cache(maxsize=64)
def resolved_ip(host: str) -> str | None:
    """The IPv4 address ``host`` resolves to, None when it does not; looked
    up once per name. Blocking: call it from a thread."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return None


__all__ = [
    "FAQ_URL",
    "MASTER_ID",
    "dlq_topic",
    "host_port",
    "is_readable",
    "is_writeable",
    "resolve_host_port",
    "resolved_ip",
    "retry_topic",
    "socket_address_string",
    "suggest_todo",
    "topic_config_string",
]
