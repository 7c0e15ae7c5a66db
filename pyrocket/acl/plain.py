"""``plain_acl.yml``: the accounts and white lists, read as Java's
PlainPermissionManager reads them, and the edits the ACL admin requests make
to the file.

pyrocket fails closed where Java fails open: anything Java would log and skip
(an unreadable file, an account with keys of 6 characters or fewer, a white
address it cannot parse) is a ConfigError naming the problem. Error texts
never include a secret key.

The document itself (what ``yaml.safe_load`` gives) is kept next to the
parsed form, so an edit changes only what Java's edit changes and writes the
rest back as it was.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from pyrocket.acl.addresses import AddressMatcher, address_matcher
from pyrocket.errors import ConfigError
from pyrocket.protocol import fastjson

ACL_FILE: Final = "conf/plain_acl.yml"
TOOLS_FILE: Final = "conf/tools.yml"
RETRY_PREFIX: Final = "%RETRY%"
KEY_MIN_LENGTH: Final = 6

DENY: Final = 1
ANY: Final = 2
PUB: Final = 4
SUB: Final = 8

_PERMS: Final = {"PUB": PUB, "SUB": SUB, "PUB|SUB": PUB | SUB, "SUB|PUB": PUB | SUB, "DENY": DENY}


def parse_perm(text: str | None) -> int:
    """Java's ``Permission.parsePermFromString``: anything unknown is DENY."""
    if text is None:
        return DENY
    return _PERMS.get(text.strip(), DENY)


def check_permission(needed: int, owned: int) -> bool:
    """Java's ``Permission.checkPermission``."""
    if owned & DENY:
        return False
    if needed & ANY:
        return bool(owned & (PUB | SUB))
    return bool(needed & owned)


def retry_topic(group: str) -> str:
    return RETRY_PREFIX + group


@dataclass(frozen=True, slots=True)
class Account:
    """One account of the file, ready for checks."""

    access_key: str
    secret_key: str = field(repr=False)
    white_remote_address: str | None
    white: AddressMatcher = field(repr=False, compare=False)
    admin: bool
    default_topic_perm: int
    default_group_perm: int
    #: Topic perms by topic, group perms by the group's retry topic.
    perms: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class AclConfig:
    """A loaded ``plain_acl.yml``."""

    accounts: Mapping[str, Account]
    global_white: tuple[AddressMatcher, ...] = field(repr=False, compare=False)
    global_white_addresses: tuple[str, ...]
    counter: int
    timestamp: int
    document: Mapping[str, Any] = field(repr=False, compare=False)

    def version_json(self) -> str:
        """The DataVersion as GET_BROKER_CLUSTER_ACL_INFO reports it."""
        return fastjson.dumps({"counter": self.counter, "timestamp": self.timestamp})


def _text(value: Any) -> str | None:
    """A scalar as fastjson's ``getString`` gives it (``12345678`` -> "12345678")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"expected a text value, got {type(value).__name__}")


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{where}: admin must be true or false")


def _resource_perms(items: list[Any], *, topics: bool, where: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in items:
        text = _text(item) or ""
        parts = [part for part in text.split("=") if part]
        if len(parts) != 2:
            kind = "topic" if topics else "group"
            raise ConfigError(f"{where}: cannot parse the {kind} permission {text!r}")
        name = parts[0].strip()
        found[name if topics else retry_topic(name)] = parse_perm(parts[1])
    return found


def parse_account(raw: Any, where: str = "account") -> Account:
    """One account mapping; raises ConfigError as described in the module docs."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    access_key = _text(raw.get("accessKey"))
    secret_key = _text(raw.get("secretKey"))
    if access_key is None or len(access_key) <= KEY_MIN_LENGTH:
        raise ConfigError(
            f"{where}: accessKey {access_key!r} must be longer than {KEY_MIN_LENGTH} characters"
        )
    if secret_key is None or len(secret_key) <= KEY_MIN_LENGTH:
        raise ConfigError(
            f"{where} ({access_key}): secretKey must be longer than {KEY_MIN_LENGTH} characters"
        )
    where = f"{where} ({access_key})"
    white_text = _text(raw.get("whiteRemoteAddress"))
    perms = _resource_perms(_list(raw, "groupPerms"), topics=False, where=where)
    perms.update(_resource_perms(_list(raw, "topicPerms"), topics=True, where=where))
    return Account(
        access_key=access_key,
        secret_key=secret_key,
        white_remote_address=white_text,
        white=address_matcher(white_text),
        admin=_bool(raw.get("admin"), where),
        default_topic_perm=parse_perm(_text(raw.get("defaultTopicPerm"))),
        default_group_perm=parse_perm(_text(raw.get("defaultGroupPerm"))),
        perms=perms,
    )


def parse_document(document: Any, source: str = "plain_acl.yml") -> AclConfig:
    """The configuration a loaded YAML document holds. Raises ConfigError."""
    if not isinstance(document, dict) or not document:
        raise ConfigError(f"{source}: the file holds no ACL configuration")
    try:
        whites = [_text(item) or "" for item in _list(document, "globalWhiteRemoteAddresses")]
        matchers = tuple(address_matcher(item) for item in whites)
        accounts: dict[str, Account] = {}
        for index, raw in enumerate(_list(document, "accounts")):
            account = parse_account(raw, f"accounts[{index}]")
            accounts[account.access_key] = account
        counter, timestamp = 0, 0
        versions = _list(document, "dataVersion")
        if versions:
            first = versions[0]
            if not isinstance(first, Mapping):
                raise ConfigError("dataVersion must be a list of mappings")
            counter = int(first.get("counter") or 0)
            timestamp = int(first.get("timestamp") or 0)
    except (ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return AclConfig(accounts, matchers, tuple(whites), counter, timestamp, document)


def load_text(text: str, source: str = "plain_acl.yml") -> AclConfig:
    """Parse the file's content. Raises ConfigError."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return parse_document(document, source)


def dump_document(document: Mapping[str, Any]) -> str:
    """The file content for ``document``, block style as SnakeYAML's dumpAsMap."""
    text: str = yaml.safe_dump(
        dict(document), default_flow_style=False, sort_keys=False, allow_unicode=True
    )
    return text


# -- the admin requests' edits -------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessConfigUpdate:
    """UPDATE_AND_CREATE_ACL_CONFIG's fields (Java's PlainAccessConfig)."""

    access_key: str
    secret_key: str | None = field(default=None, repr=False)
    white_remote_address: str | None = None
    admin: bool = False
    default_topic_perm: str | None = None
    default_group_perm: str | None = None
    topic_perms: tuple[str, ...] = ()
    group_perms: tuple[str, ...] = ()


def split_list(text: str | None) -> tuple[str, ...]:
    """Java's ``UtilAll.string2List(text, ",")``."""
    if not text:
        return ()
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _stamp(document: dict[str, Any], config: AclConfig, now_ms: int) -> dict[str, Any]:
    document["dataVersion"] = [{"counter": config.counter + 1, "timestamp": now_ms}]
    return document


def update_account(config: AclConfig, update: AccessConfigUpdate, now_ms: int) -> dict[str, Any]:
    """The document after creating or updating an account as Java does (the
    account moves to the end of the list). Raises ConfigError for keys Java
    refuses, a file without ``accounts``, or a result that does not load."""
    document = copy.deepcopy(dict(config.document))
    accounts = document.get("accounts")
    if not isinstance(accounts, list):
        raise ConfigError("the ACL file has no accounts list")
    key = update.access_key
    if not key or len(key) <= KEY_MIN_LENGTH:
        raise ConfigError(f"The accessKey={key} cannot be null and length should longer than 6")
    existing: dict[str, Any] = {}
    for index, account in enumerate(accounts):
        if isinstance(account, dict) and _text(account.get("accessKey")) == key:
            existing = accounts.pop(index)
            break
    existing["accessKey"] = key
    if update.secret_key:
        if len(update.secret_key) <= KEY_MIN_LENGTH:
            raise ConfigError("The secretKey value length should longer than 6")
        existing["secretKey"] = update.secret_key
    if update.white_remote_address:
        existing["whiteRemoteAddress"] = update.white_remote_address
    existing["admin"] = update.admin
    if update.default_topic_perm:
        existing["defaultTopicPerm"] = update.default_topic_perm
    if update.default_group_perm:
        existing["defaultGroupPerm"] = update.default_group_perm
    if update.topic_perms:
        existing["topicPerms"] = list(update.topic_perms)
    if update.group_perms:
        existing["groupPerms"] = list(update.group_perms)
    accounts.append(existing)
    parse_document(document)
    return _stamp(document, config, now_ms)


def delete_account(config: AclConfig, access_key: str, now_ms: int) -> dict[str, Any] | None:
    """The document without the account, or None when there is none."""
    document = copy.deepcopy(dict(config.document))
    accounts = document.get("accounts")
    if not access_key or not isinstance(accounts, list):
        return None
    for index, account in enumerate(accounts):
        if isinstance(account, dict) and _text(account.get("accessKey")) == access_key:
            del accounts[index]
            return _stamp(document, config, now_ms)
    return None


def update_global_white(
    config: AclConfig, addresses: Sequence[str], now_ms: int
) -> dict[str, Any] | None:
    """The document with the global white list replaced, or None when the
    file has no ``globalWhiteRemoteAddresses`` list (Java refuses then).
    Raises ConfigError for an address pattern that does not parse."""
    document = copy.deepcopy(dict(config.document))
    if not isinstance(document.get("globalWhiteRemoteAddresses"), list):
        return None
    for address in addresses:
        address_matcher(address)
    document["globalWhiteRemoteAddresses"] = list(addresses)
    return _stamp(document, config, now_ms)


def access_config_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An account as fastjson writes a PlainAccessConfig (fields in
    alphabetical order, nulls left out, ``admin`` always)."""
    out: dict[str, Any] = {"accessKey": _text(raw.get("accessKey"))}
    out["admin"] = bool(raw.get("admin") or False)
    for key in ("defaultGroupPerm", "defaultTopicPerm"):
        if raw.get(key) is not None:
            out[key] = _text(raw.get(key))
    if raw.get("groupPerms") is not None:
        out["groupPerms"] = [_text(item) for item in raw.get("groupPerms") or []]
    if raw.get("secretKey") is not None:
        out["secretKey"] = _text(raw.get("secretKey"))
    if raw.get("topicPerms") is not None:
        out["topicPerms"] = [_text(item) for item in raw.get("topicPerms") or []]
    if raw.get("whiteRemoteAddress") is not None:
        out["whiteRemoteAddress"] = _text(raw.get("whiteRemoteAddress"))
    return {key: value for key, value in out.items() if value is not None}


def cluster_acl_config_body(config: AclConfig) -> bytes:
    """GET_BROKER_CLUSTER_ACL_CONFIG's body (GetBrokerClusterAclConfigResponseBody)."""
    accounts = [
        access_config_json(raw)
        for raw in _list(config.document, "accounts")
        if isinstance(raw, dict)
    ]
    body = {
        "globalWhiteAddrs": list(config.global_white_addresses),
        "plainAccessConfigs": accounts,
    }
    return fastjson.dumps_bytes(body)


def credentials_from_tools_yml(text: str) -> tuple[str, str] | None:
    """``(accessKey, secretKey)`` of a ``tools.yml`` as mqadmin reads it, or
    None when either is blank (mqadmin then does not sign). Raises ConfigError
    for a file that is not YAML."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"tools.yml: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        return None
    access_key = _text(document.get("accessKey"))
    secret_key = _text(document.get("secretKey"))
    if not access_key or not access_key.strip() or not secret_key or not secret_key.strip():
        return None
    return access_key, secret_key


__all__ = [
    "ACL_FILE",
    "ANY",
    "DENY",
    "PUB",
    "SUB",
    "TOOLS_FILE",
    "AccessConfigUpdate",
    "Account",
    "AclConfig",
    "access_config_json",
    "check_permission",
    "cluster_acl_config_body",
    "credentials_from_tools_yml",
    "delete_account",
    "dump_document",
    "load_text",
    "parse_account",
    "parse_document",
    "parse_perm",
    "retry_topic",
    "split_list",
    "update_account",
    "update_global_white",
]
