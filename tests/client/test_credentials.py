"""Where the clients' ACL keys come from: flags, environment, tools.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.signing import find_credentials
from pyrocket.errors import ConfigError


def test_flags_then_environment_then_tools_yml(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "tools.yml").write_text("accessKey: rocketmq2\nsecretKey: 12345678\n")
    env = {
        "ROCKETMQ_HOME": str(tmp_path),
        "ROCKETMQ_ACCESS_KEY": "envkey12",
        "ROCKETMQ_SECRET_KEY": "envsecret",
    }
    flags = find_credentials("flagkey1", "flagsecret", environ=env)
    assert flags == SessionCredentials("flagkey1", "flagsecret")
    assert find_credentials(environ=env) == SessionCredentials("envkey12", "envsecret")
    home_only = {"ROCKETMQ_HOME": str(tmp_path)}
    assert find_credentials(environ=home_only) == SessionCredentials("rocketmq2", "12345678")
    assert find_credentials(environ=home_only, tools_yml=False) is None
    assert find_credentials(environ={}) is None


def test_half_a_pair_is_refused() -> None:
    with pytest.raises(ConfigError, match="both"):
        find_credentials("onlykey1", None, environ={})
    with pytest.raises(ConfigError, match="ROCKETMQ_ACCESS_KEY"):
        find_credentials(environ={"ROCKETMQ_SECRET_KEY": "x"})
