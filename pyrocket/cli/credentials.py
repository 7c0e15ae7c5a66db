"""The signing options of ``pyrocket admin``, ``produce`` and ``consume``:
``--acl-access-key`` / ``--acl-secret-key``, else ``$ROCKETMQ_ACCESS_KEY`` /
``$ROCKETMQ_SECRET_KEY``, else (``admin`` only, as Java's mqadmin)
``$ROCKETMQ_HOME/conf/tools.yml``. With keys every request is signed as
Java's AclClientRPCHook signs it."""

from __future__ import annotations

import argparse

from pyrocket.acl.signing import SessionCredentials
from pyrocket.client.signing import ACCESS_KEY_ENV, SECRET_KEY_ENV, find_credentials


def add_credential_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--acl-access-key",
        metavar="KEY",
        help=f"sign requests with this ACL access key (default: ${ACCESS_KEY_ENV})",
    )
    parser.add_argument(
        "--acl-secret-key",
        metavar="KEY",
        help=f"the ACL secret key (default: ${SECRET_KEY_ENV})",
    )


def credentials(args: argparse.Namespace, *, tools_yml: bool) -> SessionCredentials | None:
    """The keys ``args`` and the environment give; raises ConfigError."""
    return find_credentials(
        getattr(args, "acl_access_key", None),
        getattr(args, "acl_secret_key", None),
        tools_yml=tools_yml,
    )


__all__ = ["add_credential_options", "credentials"]
