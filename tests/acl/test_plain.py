"""plain_acl.yml read as Java reads it (failing closed), and the edits of the
ACL admin requests."""

from __future__ import annotations

import pytest
import yaml

from pyrocket.acl.plain import (
    ANY,
    DENY,
    PUB,
    SUB,
    AccessConfigUpdate,
    check_permission,
    cluster_acl_config_body,
    credentials_from_tools_yml,
    delete_account,
    load_text,
    parse_perm,
    update_account,
    update_global_white,
)
from pyrocket.errors import ConfigError
from pyrocket.protocol import fastjson

#: The distribution's conf/plain_acl.yml, comments left out.
DISTRIBUTION = """\
globalWhiteRemoteAddresses:
- 10.10.103.*
- 192.168.0.*

accounts:
- accessKey: RocketMQ
  secretKey: 12345678
  whiteRemoteAddress:
  admin: false
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - topicA=DENY
  - topicB=PUB|SUB
  - topicC=SUB
  groupPerms:
  - groupA=DENY
  - groupB=PUB|SUB
  - groupC=SUB

- accessKey: rocketmq2
  secretKey: 12345678
  whiteRemoteAddress: 192.168.1.*
  admin: true
"""


def test_the_distribution_file_loads() -> None:
    config = load_text(DISTRIBUTION)
    assert set(config.accounts) == {"RocketMQ", "rocketmq2"}
    first = config.accounts["RocketMQ"]
    assert first.secret_key == "12345678"  # a YAML number, read as text
    assert first.default_topic_perm == DENY and first.default_group_perm == SUB
    assert first.perms == {
        "topicA": DENY,
        "topicB": PUB | SUB,
        "topicC": SUB,
        "%RETRY%groupA": DENY,
        "%RETRY%groupB": PUB | SUB,
        "%RETRY%groupC": SUB,
    }
    assert not first.white("192.168.1.5")
    second = config.accounts["rocketmq2"]
    assert second.admin and second.white("192.168.1.5")
    assert second.default_topic_perm == DENY  # no default: DENY
    assert config.global_white_addresses == ("10.10.103.*", "192.168.0.*")
    assert [m("192.168.0.9") for m in config.global_white] == [False, True]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "holds no ACL configuration"),
        ("accounts: [", "not valid YAML"),
        ("- a\n- b\n", "holds no ACL configuration"),
        ("accounts:\n- accessKey: short\n  secretKey: 12345678\n", "accessKey 'short'"),
        ("accounts:\n- accessKey: longenough\n  secretKey: 123456\n", "secretKey must be longer"),
        ("accounts:\n- accessKey: longenough\n", "secretKey must be longer"),
        (
            "accounts:\n- accessKey: longenough\n  secretKey: 1234567\n  topicPerms: [x]\n",
            "cannot parse the topic permission",
        ),
        ("globalWhiteRemoteAddresses: [999.1.1.1]\n", "white remote address"),
        ("accounts: 5\n", "accounts must be a list"),
    ],
)
def test_bad_files_are_refused(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_text(text)


def test_a_refusal_never_names_the_secret() -> None:
    with pytest.raises(ConfigError) as raised:
        load_text("accounts:\n- accessKey: longenough\n  secretKey: s3cr3\n")
    assert "s3cr3" not in str(raised.value)


def test_update_creates_then_updates_an_account() -> None:
    config = load_text(DISTRIBUTION)
    update = AccessConfigUpdate(
        access_key="newaccount",
        secret_key="newsecret1",
        default_topic_perm="PUB",
        topic_perms=("t1=SUB",),
    )
    document = update_account(config, update, now_ms=1234)
    assert document["dataVersion"] == [{"counter": 1, "timestamp": 1234}]
    created = document["accounts"][-1]
    assert created == {
        "accessKey": "newaccount",
        "secretKey": "newsecret1",
        "admin": False,
        "defaultTopicPerm": "PUB",
        "topicPerms": ["t1=SUB"],
    }
    # Updating the first account keeps its secret and moves it to the end.
    again = load_text(yaml.safe_dump(document))
    document = update_account(again, AccessConfigUpdate("RocketMQ", admin=True), now_ms=99)
    assert [a["accessKey"] for a in document["accounts"]] == ["rocketmq2", "newaccount", "RocketMQ"]
    assert document["accounts"][-1]["secretKey"] == 12345678
    assert document["accounts"][-1]["admin"] is True
    assert document["dataVersion"] == [{"counter": 2, "timestamp": 99}]


@pytest.mark.parametrize(
    "update",
    [AccessConfigUpdate("short"), AccessConfigUpdate("longenough", secret_key="123")],
)
def test_update_refuses_short_keys(update: AccessConfigUpdate) -> None:
    with pytest.raises(ConfigError, match="length should longer than 6"):
        update_account(load_text(DISTRIBUTION), update, now_ms=0)


def test_delete_and_white_list_edits() -> None:
    config = load_text(DISTRIBUTION)
    document = delete_account(config, "RocketMQ", now_ms=5)
    assert document is not None
    assert [a["accessKey"] for a in document["accounts"]] == ["rocketmq2"]
    assert delete_account(config, "nobodyhere", now_ms=5) is None
    white = update_global_white(config, ["127.0.0.1", "10.0.0.*"], now_ms=6)
    assert white is not None and white["globalWhiteRemoteAddresses"] == ["127.0.0.1", "10.0.0.*"]
    with pytest.raises(ConfigError):
        update_global_white(config, ["not-an-ip"], now_ms=6)
    bare = load_text("accounts: []\n")
    assert update_global_white(bare, ["127.0.0.1"], now_ms=6) is None


def test_cluster_acl_config_body_is_fastjson_shaped() -> None:
    body = fastjson.loads(cluster_acl_config_body(load_text(DISTRIBUTION)))
    assert body["globalWhiteAddrs"] == ["10.10.103.*", "192.168.0.*"]
    first = body["plainAccessConfigs"][0]
    assert list(first) == sorted(first)
    assert first["accessKey"] == "RocketMQ" and first["secretKey"] == "12345678"
    assert "whiteRemoteAddress" not in first  # null: left out


def test_tools_yml() -> None:
    assert credentials_from_tools_yml("accessKey: rocketmq2\nsecretKey: 12345678\n") == (
        "rocketmq2",
        "12345678",
    )
    assert credentials_from_tools_yml("accessKey: rocketmq2\n") is None
    assert credentials_from_tools_yml("") is None


@pytest.mark.parametrize(
    ("text", "perm"),
    [
        ("PUB", PUB),
        ("SUB", SUB),
        ("PUB|SUB", PUB | SUB),
        ("SUB|PUB", PUB | SUB),
        (" SUB ", SUB),
        ("DENY", DENY),
        ("pub", DENY),
        ("ANY", DENY),
        (None, DENY),
    ],
)
def test_permission_strings(text: str | None, perm: int) -> None:
    assert parse_perm(text) == perm


def test_check_permission_rules() -> None:
    assert check_permission(PUB, PUB | SUB) and check_permission(SUB, PUB | SUB)
    assert not check_permission(PUB, SUB) and not check_permission(SUB, PUB)
    assert not check_permission(PUB, DENY | PUB)  # DENY wins
    assert check_permission(ANY, SUB) and not check_permission(ANY, DENY)
