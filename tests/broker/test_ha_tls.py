"""Replication over the HA port with TLS: the master's HA port honours its
``tls.server.mode`` (enforcing, permissive, disabled) and a pyrocket slave
connects with TLS when the broker's client connections use TLS."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import trio

from pyrocket.broker.app import Broker
from pyrocket.protocol.codes import ResponseCode
from pyrocket.protocol.ha import encode_offset_report
from pyrocket.remoting import ClientConfig, RemotingClient
from pyrocket.remoting.tls import TlsSettings
from tests.broker.helpers import send_request
from tests.broker.test_ha import TOPIC, assert_replica, ha_address, master, slave
from tests.broker.test_tls_cluster import tls_keys
from tests.remoting.helpers import wait_until
from tests.remoting.tlscerts import TlsFiles


def permissive_keys(certs: TlsFiles) -> dict[str, str]:
    """A server certificate, TLS optional, no client certificates."""
    return {
        "tls.server.mode": "permissive",
        "tls.server.certPath": certs.server.cert,
        "tls.server.keyPath": certs.server.key,
    }


def tls_client_keys(certs: TlsFiles) -> dict[str, str]:
    """A plain broker whose own connections use TLS (tls.enable), verifying servers."""
    return {
        "tls.enable": "true",
        "tls.client.authServer": "true",
        "tls.client.trustCertPath": certs.ca,
    }


async def send_some(broker: Broker, count: int, seed: int, tls: TlsSettings | None = None) -> None:
    """``count`` sends of 1 KiB to 150 KiB to ``broker``, over TLS if given."""
    rng = random.Random(seed)
    async with RemotingClient(ClientConfig(tls=tls)) as client:
        for n in range(count):
            size = 150 * 1024 if n % 7 == 0 else rng.randint(100, 4096)
            request = send_request(TOPIC, n % 4, rng.randbytes(size))
            answer = await client.invoke_sync(broker.broker_addr, request, 10)
            assert answer.code == ResponseCode.SUCCESS, answer.remark


def ha_streams(broker: Broker) -> list[type]:
    """The stream type of each slave connection the master serves."""
    return sorted(
        (type(connection._stream) for connection in broker.ha_service.connections),
        key=lambda kind: kind.__name__,
    )


async def test_enforcing_master_and_tls_slave_replicate_byte_for_byte(tmp_path: Path) -> None:
    certs = TlsFiles.create(tmp_path / "certs")
    keys = tls_keys(certs)
    with trio.fail_after(90):
        async with (
            master(tmp_path / "m", **keys) as m,
            slave(tmp_path / "s", ha_address(m), haUseTLS="true", **keys) as s,
        ):
            assert s.settings.client.use_tls and s.settings.ha_use_tls
            await send_some(m, 40, seed=3, tls=certs.client_settings(pair=certs.client))
            await assert_replica(m, s)
            assert s.ha_client is not None
            assert s.ha_client.connected_to.value == ha_address(m)
            assert ha_streams(m) == [trio.SSLStream]


async def test_enforcing_master_refuses_plaintext_slaves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    certs = TlsFiles.create(tmp_path / "certs")
    with trio.fail_after(60):
        async with master(tmp_path / "m", **tls_keys(certs)) as m:
            await send_some(m, 5, seed=4, tls=certs.client_settings(pair=certs.client))
            # A Java-style slave: plain TCP, its offset report first.
            host, _, port = ha_address(m).rpartition(":")
            raw = await trio.open_tcp_stream(host, int(port))
            async with raw:
                await raw.send_all(encode_offset_report(0))
                with trio.fail_after(5):
                    try:
                        data = await raw.receive_some()
                    except trio.BrokenResourceError:
                        data = b""  # closed with our report unread: a reset
                assert data == b"", "an enforcing master sent data to a plaintext slave"
            async with slave(tmp_path / "s", ha_address(m)) as s:
                assert not s.settings.client.use_tls
                with trio.fail_after(10):
                    await wait_until(
                        lambda: "not TLS, and this server enforces TLS" in caplog.text, 0.05
                    )
                await trio.sleep(1)
                assert s.store.max_phy_offset == 0
                assert m.store.max_phy_offset > 0
                assert not m.ha_service.connections


async def test_permissive_master_serves_plaintext_and_tls_slaves(tmp_path: Path) -> None:
    certs = TlsFiles.create(tmp_path / "certs")
    with trio.fail_after(90):
        async with (
            master(tmp_path / "m", **permissive_keys(certs)) as m,
            slave(tmp_path / "plain", ha_address(m)) as plain,
            slave(
                tmp_path / "tls", ha_address(m), haUseTLS="true", **tls_client_keys(certs)
            ) as tls,
            # TLS to the NameServers, plain TCP to the master (no haUseTLS).
            slave(tmp_path / "nsonly", ha_address(m), **tls_client_keys(certs)) as ns_only,
        ):
            assert not plain.settings.client.use_tls
            assert tls.settings.client.use_tls and tls.settings.ha_use_tls
            assert ns_only.settings.client.use_tls and not ns_only.settings.ha_use_tls
            await send_some(m, 40, seed=5)
            await assert_replica(m, plain)
            await assert_replica(m, tls)
            await assert_replica(m, ns_only)
            assert sorted(ha_streams(m), key=lambda kind: kind.__name__) == [
                trio.SSLStream,
                trio.SocketStream,
                trio.SocketStream,
            ]


async def test_tls_slave_against_a_plaintext_master_fails_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    certs = TlsFiles.create(tmp_path / "certs")
    with trio.fail_after(60):
        async with (
            master(tmp_path / "m") as m,
            slave(tmp_path / "s", ha_address(m), haUseTLS="true", **tls_client_keys(certs)) as s,
        ):
            await send_some(m, 5, seed=6)

            def failures() -> int:
                return caplog.text.count(f"cannot connect to HA master {ha_address(m)}")

            # The slave gives up on each attempt and tries again.
            with trio.fail_after(20):
                await wait_until(lambda: failures() >= 2, 0.05)
            assert "does not use TLS (tls.server.mode=disabled): closing" in caplog.text
            assert s.store.max_phy_offset == 0
            # The ClientHello was not taken for an offset report.
            assert m.ha_service.push2slave_max_offset.value == 0
            assert not m.ha_service.connections
