"""Where the clients' access keys come from and how they sign.

A client given :class:`~pyrocket.acl.signing.SessionCredentials` signs every
request as Java's AclClientRPCHook does. The command line finds the keys as
flags, else in ``ROCKETMQ_ACCESS_KEY`` / ``ROCKETMQ_SECRET_KEY`` (pyrocket's
names), else, like Java's mqadmin, in ``<ROCKETMQ_HOME>/conf/tools.yml``
(``rocketmq.home.dir`` there is a Java system property; pyrocket reads the
environment variable only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Final

from pyrocket.acl.plain import TOOLS_FILE, credentials_from_tools_yml
from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.errors import ConfigError
from pyrocket.remoting.client import RequestHook

ACCESS_KEY_ENV: Final = "ROCKETMQ_ACCESS_KEY"
SECRET_KEY_ENV: Final = "ROCKETMQ_SECRET_KEY"


def signer(credentials: SessionCredentials | None) -> RequestHook | None:
    """The RPC hook that signs with ``credentials`` (None: no signing)."""
    if credentials is None:
        return None
    return partial(sign_request, credentials=credentials)


def find_credentials(
    access_key: str | None = None,
    secret_key: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    tools_yml: bool = True,
) -> SessionCredentials | None:
    """The keys to sign with: the arguments, else the environment, else (when
    ``tools_yml``) ``$ROCKETMQ_HOME/conf/tools.yml``; None when none are set.
    Raises ConfigError when only one of a pair is given or tools.yml is not YAML."""
    env = os.environ if environ is None else environ
    for source, ak, sk in (
        ("--access-key/--secret-key", access_key, secret_key),
        (f"{ACCESS_KEY_ENV}/{SECRET_KEY_ENV}", env.get(ACCESS_KEY_ENV), env.get(SECRET_KEY_ENV)),
    ):
        if ak or sk:
            if not (ak and sk):
                raise ConfigError(f"{source}: give both the access key and the secret key")
            return SessionCredentials(ak, sk)
    home = env.get("ROCKETMQ_HOME")
    if tools_yml and home:
        path = Path(home) / TOOLS_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        found = credentials_from_tools_yml(text)
        if found is not None:
            return SessionCredentials(*found)
    return None


__all__ = ["ACCESS_KEY_ENV", "SECRET_KEY_ENV", "find_credentials", "signer"]
