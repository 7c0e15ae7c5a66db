"""Request signatures as Java's AclClientRPCHook makes them and
PlainAccessValidator checks them.

The signed content is the values of the request's ext fields, sorted by field
name, ``Signature`` (and, on the checking side, ``_UNIQUE_KEY_QUERY``, which a
Java client adds after signing) left out, concatenated and UTF-8 encoded, with
the body appended. The signature is HmacSHA1 of that under the secret key
(UTF-8), in Base64.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.javahash import hashmap_order

ACCESS_KEY = "AccessKey"
SECRET_KEY = "SecretKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"
#: Added to QUERY_MESSAGE by Java's client after its RPC hook ran.
UNIQUE_MSG_QUERY_FLAG = "_UNIQUE_KEY_QUERY"

_UNSIGNED = frozenset({SIGNATURE, UNIQUE_MSG_QUERY_FLAG})


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    """An account's keys, as a client holds them. ``repr`` hides the secret."""

    access_key: str
    secret_key: str
    security_token: str | None = None

    def __repr__(self) -> str:
        return f"SessionCredentials(access_key={self.access_key!r}, secret_key=<hidden>)"


def _java_string_key(text: str) -> bytes:
    # Java's TreeMap orders Strings by UTF-16 code units.
    return text.encode("utf-16-be")


def signed_content(ext_fields: Mapping[str, str] | None, body: bytes | None) -> bytes:
    """The bytes a signature covers (see the module docs)."""
    if ext_fields:
        keys = [key for key in ext_fields if key not in _UNSIGNED]
        if any(not key.isascii() for key in keys):
            keys.sort(key=_java_string_key)
        else:
            keys.sort()
        text = "".join([ext_fields[key] for key in keys]).encode("utf-8")
    else:
        text = b""
    return text + body if body else text


def calculate_signature(content: bytes, secret_key: str) -> str:
    """HmacSHA1 of ``content`` under ``secret_key``, Base64 (Java's AclSigner)."""
    digest = hmac.new(secret_key.encode("utf-8"), content, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


@functools.lru_cache(maxsize=512)
def _signed_order(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(hashmap_order(keys))


def sign_request(request: RemotingCommand, credentials: SessionCredentials) -> RemotingCommand:
    """``request`` with ``AccessKey``, ``Signature`` (and ``SecurityToken``)
    added as Java's AclClientRPCHook adds them: the hook puts them into the
    command's fresh ext map before the header's fields are written, so the
    wire order is that of a HashMap filled in that order."""
    fields: dict[str, str] = {
        key: value
        for key, value in (request.ext_fields or {}).items()
        if key not in (SIGNATURE, ACCESS_KEY, SECURITY_TOKEN)
    }
    fields[ACCESS_KEY] = credentials.access_key
    if credentials.security_token is not None:
        fields[SECURITY_TOKEN] = credentials.security_token
    signature = calculate_signature(signed_content(fields, request.body), credentials.secret_key)
    fields[SIGNATURE] = signature
    first = (SIGNATURE, ACCESS_KEY) + (
        (SECURITY_TOKEN,) if credentials.security_token is not None else ()
    )
    rest = tuple(key for key in fields if key not in first)
    order = _signed_order(first + rest)
    return request.replace(ext_fields={key: fields[key] for key in order})


__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "SECURITY_TOKEN",
    "SIGNATURE",
    "UNIQUE_MSG_QUERY_FLAG",
    "SessionCredentials",
    "calculate_signature",
    "sign_request",
    "signed_content",
]
