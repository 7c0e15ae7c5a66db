"""White-list patterns in each of Java's RemoteAddressStrategy forms."""

from __future__ import annotations

import pytest

from pyrocket.acl.addresses import address_matcher, peer_ip
from pyrocket.errors import ConfigError

CASES = [
    ("*", "8.8.8.8", True),
    ("*.*.*.*", "10.0.0.1", True),
    ("", "127.0.0.1", False),
    (None, "127.0.0.1", False),
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("192.168.0.*", "192.168.0.77", True),
    ("192.168.0.*", "192.168.1.77", False),
    ("192.168.*.*", "192.168.200.1", True),
    ("192.168.*.*", "192.169.0.1", False),
    ("10.1.0.1-10", "10.1.0.10", True),
    ("10.1.0.1-10", "10.1.0.11", False),
    ("10.1.0.1-10", "10.1.0.0", False),
    ("10.1.5-6.*", "10.1.6.200", True),
    ("10.1.5-6.*", "10.1.7.1", False),
    ("10.2.3.{1,2,3}", "10.2.3.2", True),
    ("10.2.3.{1,2,3}", "10.2.3.4", False),
    ("1.1.1.1,2.2.2.2", "2.2.2.2", True),
    ("1.1.1.1,2.2.2.2", "3.3.3.3", False),
    ("::1", "0:0:0:0:0:0:0:1", True),
    ("192.168.0.*", "::1", False),
    ("2::ac5:78:1-200", "2:0:0:0:0:ac5:78:1ff", True),
    ("2::ac5:78:1-200", "2:0:0:0:0:ac5:78:201", False),
    ("2::ac5:78:1-200", "2:0:0:0:0:ac5:79:1", False),
    ("2::ac5:78:1-200:*", "2:0:0:0:ac5:78:10:ffff", True),
    ("2::ac5:78:1-200:*", "2:0:0:0:ac5:78:300:1", False),
    ("2::ac5:*", "2::ac5:1234", True),
    ("2::ac5:*", "2::ac6:1234", False),
    ("1:2:3:4:5:6:7:*", "1:2:3:4:5:6:7:abcd", True),
    ("1:2:3:4:5:6:7:*", "127.0.0.1", False),
    ("1:2:3:1-5", "1:2:3:5:ffff:0:0:1", True),
    ("1:2:3:1-5", "1:2:3:6::1", False),
]


@pytest.mark.parametrize(("pattern", "ip", "expected"), CASES)
def test_patterns(pattern: str | None, ip: str, expected: bool) -> None:
    assert address_matcher(pattern)(ip) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "300.1.1.1",
        "1.1.1.-5",
        "1.1.1.9-3",
        "1.1.1.1-300",
        "abc",
        "1.1.*",
        "1.1.1.{x,2}",
        "1:2:*:4",
        "1:2:3:1-5:6",
        "1::2:9-3",
        "1::2:1-10000",
        "1-5:*",
        "1:2:3:4:5:6:7:8:1-2",
    ],
)
def test_patterns_java_refuses_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError, match="white remote address"):
        address_matcher(pattern)


def test_peer_ip_cuts_the_port() -> None:
    assert peer_ip("127.0.0.1:4567") == "127.0.0.1"
    assert peer_ip("[::1]:4567") == "::1"
