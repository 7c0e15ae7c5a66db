"""Test certificates for TLS tests, from ``trustme``, written as files the
way a Java operator would have them: PEM certificate chains and PKCS#8 PEM
private keys (optionally encrypted with a password).

    certs = TlsFiles.create(tmp_path)
    server = certs.server_settings(mode=TlsMode.PERMISSIVE)
    client = certs.client_settings()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

from pyrocket.remoting.tls import ClientAuth, TlsMode, TlsSettings


def _pkcs8(key_pem: bytes, password: str | None) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@dataclass(frozen=True)
class Pair:
    """A certificate chain file and its key file."""

    cert: str
    key: str
    password: str | None = None


def write_pair(
    ca: trustme.CA, directory: Path, name: str, identity: str, password: str | None = None
) -> Pair:
    issued = ca.issue_cert(identity)
    cert = directory / f"{name}.pem"
    key = directory / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(_pkcs8(issued.private_key_pem.bytes(), password))
    return Pair(str(cert), str(key), password)


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server and a client certificate it issued, and an unrelated CA
    with its own client certificate."""

    ca: str
    server: Pair
    client: Pair
    other_ca: str
    stranger: Pair

    @classmethod
    def create(cls, directory: Path, *, key_password: str | None = None) -> TlsFiles:
        directory.mkdir(parents=True, exist_ok=True)
        ca, other = trustme.CA(), trustme.CA()
        ca_path, other_path = directory / "ca.pem", directory / "other-ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        other.cert_pem.write_to_path(str(other_path))
        return cls(
            ca=str(ca_path),
            server=write_pair(ca, directory, "server", "127.0.0.1", key_password),
            client=write_pair(ca, directory, "client", "client.pyrocket.test"),
            other_ca=str(other_path),
            stranger=write_pair(other, directory, "stranger", "stranger.test"),
        )

    def server_settings(
        self,
        mode: TlsMode | None = TlsMode.PERMISSIVE,
        need_client_auth: ClientAuth = ClientAuth.NONE,
    ) -> TlsSettings:
        return TlsSettings(
            server_mode=mode,
            config_file=None,
            server_cert_path=self.server.cert,
            server_key_path=self.server.key,
            server_key_password=self.server.password,
            server_need_client_auth=need_client_auth,
            server_auth_client=need_client_auth is not ClientAuth.NONE,
            server_trust_cert_path=self.ca,
        )

    def client_settings(
        self, *, trust: str | None = None, pair: Pair | None = None, verify: bool = True
    ) -> TlsSettings:
        return TlsSettings(
            enable=True,
            client_auth_server=verify,
            client_trust_cert_path=(trust or self.ca) if verify else None,
            client_cert_path=pair.cert if pair else None,
            client_key_path=pair.key if pair else None,
            client_key_password=pair.password if pair else None,
        )
