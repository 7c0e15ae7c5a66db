"""Host names are looked up once, at start and in a thread: a broker whose
brokerIP1 is a name never resolves it on a request path."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from pyrocket.broker.processors import common
from pyrocket.protocol.message import HostPort
from tests.broker.helpers import broker_settings, running_broker

NAME = "broker-host.pyrocket.invalid"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every gethostbyname call as (name, thread name); NAME resolves to loopback."""
    seen: list[tuple[str, str]] = []

    def gethostbyname(host: str) -> str:
        seen.append((host, threading.current_thread().name))
        if host == NAME:
            return "127.0.0.1"
        raise OSError(f"unknown host {host}")

    monkeypatch.setattr(common.socket, "gethostbyname", gethostbyname)
    common.resolved_ip.cache_clear()
    common.resolve_host_port.cache_clear()
    yield seen
    common.resolved_ip.cache_clear()
    common.resolve_host_port.cache_clear()


async def test_the_broker_host_name_is_resolved_once_at_start(
    tmp_path: Path, lookups: list[tuple[str, str]]
) -> None:
    main = threading.current_thread().name
    with trio.fail_after(15):
        async with running_broker(broker_settings(tmp_path, brokerIP1=NAME)) as broker:
            assert [host for host, _ in lookups] == [NAME]
            assert all(thread != main for _, thread in lookups)
            # What the message path asks for, from the event loop: no new lookup.
            port = broker.listen_port
            assert common.resolve_host_port(NAME, port) == HostPort.parse(f"127.0.0.1:{port}")
            assert common.resolve_host_port(NAME, port + 1).port == port + 1
            assert len(lookups) == 1


def test_a_name_that_does_not_resolve_is_the_unspecified_address(
    lookups: list[tuple[str, str]],
) -> None:
    address = common.resolve_host_port("nowhere.pyrocket.invalid", 10911)
    assert address.port == 10911 and set(address.ip) == {0}
    common.resolve_host_port("nowhere.pyrocket.invalid", 10912)
    assert len(lookups) == 1
