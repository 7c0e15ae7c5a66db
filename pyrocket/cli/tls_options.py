"""The TLS options of the client commands (``produce``, ``consume``,
``admin ...``): what a Java client reads from ``-Dtls.*`` system properties.

    pyrocket produce --tls --tls-trust-cert ca.pem -n host:9876 -t T hello
    pyrocket admin clusterList -Dtls.enable=true -Dtls.config.file=/etc/rocketmq/tls.properties

``-D KEY=VALUE`` takes any ``tls.*`` key under its Java name (``tls.enable``,
``tls.client.keyPath``, ``tls.config.file``, ...); ``--tls`` is
``-Dtls.enable=true``; ``--tls-trust-cert FILE`` sets
``tls.client.trustCertPath`` and ``tls.client.authServer=true``;
``--tls-cert`` / ``--tls-key`` the client's own certificate and PKCS#8 key
(each of these three implies ``--tls``).
A key password belongs in the file ``tls.config.file`` names, not on a
command line others can read.
"""

from __future__ import annotations

import argparse

from pyrocket.errors import ConfigError
from pyrocket.remoting.tls import TLS_KEYS, TlsSettings


def add_tls_options(parser: argparse.ArgumentParser) -> None:
    """Add the TLS options to a client command's parser."""
    group = parser.add_argument_group("TLS (Java's -Dtls.* properties)")
    group.add_argument("--tls", action="store_true", help="connect with TLS (tls.enable=true)")
    group.add_argument(
        "-D",
        dest="tls_properties",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tls.* property under its Java name, e.g. -Dtls.client.authServer=true",
    )
    group.add_argument(
        "--tls-trust-cert",
        metavar="FILE",
        help="verify servers against these PEM CA certificates (tls.client.trustCertPath)",
    )
    group.add_argument("--tls-cert", metavar="FILE", help="client certificate chain (PEM)")
    group.add_argument("--tls-key", metavar="FILE", help="client private key (PKCS#8 PEM)")


def client_tls(args: argparse.Namespace) -> TlsSettings | None:
    """The TLS settings the options ask for, or None for plaintext.
    Raises ConfigError for a key that is not a tls.* key or a bad value."""
    properties: dict[str, str] = {}
    for item in getattr(args, "tls_properties", None) or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in TLS_KEYS:
            raise ConfigError(f"-D{item}: expected -Dtls.<key>=<value> with a tls.* key")
        properties[key] = value
    if getattr(args, "tls", False):
        properties["tls.enable"] = "true"
    trust = getattr(args, "tls_trust_cert", None)
    if trust:
        properties["tls.client.trustCertPath"] = trust
        properties["tls.client.authServer"] = "true"
    if getattr(args, "tls_cert", None):
        properties["tls.client.certPath"] = args.tls_cert
    if getattr(args, "tls_key", None):
        properties["tls.client.keyPath"] = args.tls_key
    if trust or getattr(args, "tls_cert", None) or getattr(args, "tls_key", None):
        properties.setdefault("tls.enable", "true")
    settings = TlsSettings().with_properties(properties)
    return settings if settings.enable else None


__all__ = ["add_tls_options", "client_tls"]
