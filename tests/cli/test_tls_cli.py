"""``pyrocket namesrv`` enforcing TLS from its properties file, and
``pyrocket admin`` reaching it with the TLS options (and failing without)."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrocket.cli.tls_options import client_tls
from pyrocket.errors import ConfigError
from tests.cli.test_namesrv_cli import ROOT, _pyrocket, admin
from tests.remoting.tlscerts import TlsFiles


@pytest.fixture
def tls_namesrv(tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    certs = TlsFiles.create(tmp_path)
    conf = tmp_path / "namesrv.properties"
    conf.write_text(
        f"kvConfigPath={tmp_path / 'kvConfig.json'}\nrocketmqHome={tmp_path}\n"
        "tls.server.mode=enforcing\n"
        f"tls.server.certPath={certs.server.cert}\ntls.server.keyPath={certs.server.key}\n"
        "tls.server.keyPassword=unused-secret\n"
    )
    process = subprocess.Popen(
        _pyrocket("namesrv", "-c", str(conf), "-p", "0", "--host", "127.0.0.1"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            assert "unused-secret" not in line
            match = re.search(r"NameServer ready on 127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port is not None, "the NameServer did not report ready"
        yield f"127.0.0.1:{port}", certs
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_admin_with_tls_options(
    tls_namesrv: tuple[str, TlsFiles], capsys: pytest.CaptureFixture[str]
) -> None:
    addr, certs = tls_namesrv
    status, out, _ = admin(capsys, "getNamesrvConfig", "-n", addr, "--tls-trust-cert", certs.ca)
    assert status == 0
    assert re.search(r"^tls\.server\.mode +=  enforcing$", out, re.MULTILINE)
    assert "unused-secret" not in out
    # Java's spelling of the same, verifying against the CA.
    status, out, _ = admin(
        capsys,
        "getNamesrvConfig",
        "-n",
        addr,
        "-Dtls.enable=true",
        "-Dtls.client.authServer=true",
        f"-Dtls.client.trustCertPath={certs.ca}",
    )
    assert status == 0 and "listenPort" in out
    # Plaintext, and TLS trusting another CA, are refused.
    for extra in ([], ["--tls-trust-cert", certs.other_ca]):
        status, _, err = admin(capsys, "getNamesrvConfig", "-n", addr, *extra)
        assert status == 1, err


def test_client_tls_options() -> None:
    def parsed(**values: object) -> argparse.Namespace:
        defaults: dict[str, object] = {
            "tls": False,
            "tls_properties": [],
            "tls_trust_cert": None,
            "tls_cert": None,
            "tls_key": None,
        }
        defaults.update(values)
        return argparse.Namespace(**defaults)

    assert client_tls(parsed()) is None
    assert client_tls(parsed(tls_properties=["tls.client.authServer=true"])) is None
    settings = client_tls(parsed(tls_trust_cert="/ca.pem", tls_key="/k.pem"))
    assert settings is not None
    assert settings.client_auth_server and settings.client_trust_cert_path == "/ca.pem"
    assert settings.client_key_path == "/k.pem"
    off = ["tls.enable=false"]
    assert client_tls(parsed(tls_properties=off, tls_trust_cert="/ca.pem")) is None
    with pytest.raises(ConfigError, match="tls"):
        client_tls(parsed(tls_properties=["brokerName=x"]))
