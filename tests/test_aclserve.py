"""The running side of ACL: the refusal log stays bounded, a file that
disappears keeps the last good configuration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import pytest

from pyrocket.aclserve import LOGGED_PEERS, AclGuard
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.remoting import Connection

ACL_YML = "accounts:\n- accessKey: someaccount\n  secretKey: somesecret\n"


class FakeConnection:
    def __init__(self, remote_address: str) -> None:
        self.remote_address = remote_address


def guard(tmp_path: Path) -> AclGuard:
    path = tmp_path / "plain_acl.yml"
    path.write_text(ACL_YML)
    return AclGuard.load(path)


def test_the_refusal_log_remembers_a_bounded_number_of_peers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acl = guard(tmp_path)
    request = RemotingCommand(code=RequestCode.GET_BROKER_RUNTIME_INFO)
    caplog.set_level(logging.WARNING, "pyrocket.acl")
    for n in range(LOGGED_PEERS + 500):
        conn = cast(Connection, FakeConnection(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}:1"))
        answer = acl(conn, request)
        assert answer is not None and answer.code == ResponseCode.SYSTEM_ERROR
        acl(conn, request)  # a second refusal of the same peer is not logged
    assert len(acl._logged) == LOGGED_PEERS
    assert len([r for r in caplog.records if "ACL refused" in r.getMessage()]) == LOGGED_PEERS + 500


async def test_a_vanished_file_keeps_the_last_good_configuration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acl = guard(tmp_path)
    before = acl.config
    acl.path.unlink()
    caplog.set_level(logging.ERROR, "pyrocket.acl")
    assert await acl.reload_if_changed() is False
    assert acl.config is before and "not reloaded" in caplog.text
    assert await acl.reload_if_changed() is False
    assert caplog.text.count("not reloaded") == 1  # the same problem logged once
    acl.path.write_text(ACL_YML.replace("someaccount", "otheraccount"))
    assert await acl.reload_if_changed() is True
    assert set(acl.config.accounts) == {"otheraccount"}
