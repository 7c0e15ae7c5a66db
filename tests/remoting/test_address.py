"""Addresses as RocketMQ writes them."""

from __future__ import annotations

import pytest

from pyrocket.errors import ConfigError
from pyrocket.remoting.address import format_sockaddr, split_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9876", ("127.0.0.1", 9876)),
        (" namesrv.example:10911 ", ("namesrv.example", 10911)),
        ("[::1]:9876", ("::1", 9876)),
        ("::1:9876", ("::1", 9876)),  # Java splits at the last colon too
    ],
)
def test_split_address(text: str, expected: tuple[str, int]) -> None:
    assert split_address(text) == expected


@pytest.mark.parametrize("text", ["", "9876", ":9876", "host:", "host:port", "host:70000"])
def test_split_address_refuses_what_has_no_port(text: str) -> None:
    with pytest.raises(ConfigError):
        split_address(text)


def test_format_sockaddr_gives_ip_and_port() -> None:
    assert format_sockaddr(("192.0.2.2", 51234)) == "192.0.2.2:51234"
    assert format_sockaddr(("::1", 9876, 0, 0)) == "::1:9876"
