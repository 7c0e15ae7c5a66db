"""TLS between Java RocketMQ 4.7 and pyrocket, both ways.

1. A pyrocket NameServer and broker enforcing TLS (certificates from
   ``trustme``, configured with the Java keys): Java's mqadmin lists the
   broker, and Java's producer and push consumer (``DataplaneClient.java``,
   started with ``-Dtls.enable=true``) send and receive through them.
2. A Java NameServer and broker enforcing TLS (``-Dtls.server.mode=enforcing``
   with the same certificates, ``tls.test.mode.enable=false``): pyrocket's
   Admin, Producer and PushConsumer with TLS settings reach them; without TLS
   they do not.

Skipped without ROCKETMQ_HOME (see compat/conftest.py).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from compat.java_cluster import JavaCluster, _java_major, free_port
from compat.test_broker_control import cluster_rows, mqadmin
from compat.test_broker_dataplane import run_client
from pyrocket.broker.app import serve_broker
from pyrocket.broker.config import load_broker_settings
from pyrocket.client.admin import Admin
from pyrocket.client.producer import Producer, SendStatus, new_message
from pyrocket.errors import PyrocketError
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import load_config
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from tests.client.helpers import consumer
from tests.remoting.tlscerts import TlsFiles

COUNT = 40


def java_client_flags(certs: TlsFiles, empty: Path) -> list[str]:
    """A Java client that uses TLS and verifies the server against the CA."""
    return [
        "-Dtls.enable=true",
        "-Dtls.test.mode.enable=false",
        "-Dtls.client.authServer=true",
        f"-Dtls.client.trustCertPath={certs.ca}",
        f"-Dtls.config.file={empty}",
    ]


def java_server_flags(certs: TlsFiles, empty: Path) -> list[str]:
    """A Java server enforcing TLS with the test certificate (and, for a
    broker, TLS to its NameServers)."""
    return [
        *java_client_flags(certs, empty),
        "-Dtls.server.mode=enforcing",
        f"-Dtls.server.certPath={certs.server.cert}",
        f"-Dtls.server.keyPath={certs.server.key}",
    ]


def empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "tls-none.properties"
    path.write_text("")
    return path


async def test_java_clients_with_tls_through_pyrocket_servers(
    java: JavaCluster, tmp_path: Path
) -> None:
    if _java_major() < 11:
        pytest.skip("running DataplaneClient.java from source needs Java 11 or newer")
    certs = TlsFiles.create(tmp_path)
    empty = empty_file(tmp_path)
    keys = {
        "tls.server.mode": "enforcing",
        "tls.server.certPath": certs.server.cert,
        "tls.server.keyPath": certs.server.key,
        "tls.client.authServer": "true",
        "tls.client.trustCertPath": certs.ca,
        "tls.config.file": str(empty),
    }
    home = tmp_path / "namesrv"
    namesrv = NameServer(
        load_config(
            None,
            {
                "rocketmqHome": str(home),
                "kvConfigPath": str(home / "kv.json"),
                "configStorePath": str(home / "namesrv.properties"),
                **keys,
            },
        )
    )
    with trio.fail_after(400):
        async with trio.open_nursery() as nursery:
            ns_port = await nursery.start(namesrv.serve, "127.0.0.1", 0)
            ns = f"127.0.0.1:{ns_port}"
            settings = load_broker_settings(
                None,
                {
                    "brokerName": "pytls",
                    "brokerIP1": "127.0.0.1",
                    "brokerIP2": "127.0.0.1",
                    "namesrvAddr": ns,
                    "listenPort": str(free_port()),
                    "storePathRootDir": str(tmp_path / "pystore"),
                    "mappedFileSizeCommitLog": str(64 * 1024 * 1024),
                    "autoCreateTopicEnable": "true",
                    **keys,
                },
            )
            await nursery.start(partial(serve_broker, settings, host="127.0.0.1"))

            java.jvm_flags = java_client_flags(certs, empty)
            assert cluster_rows(await mqadmin(java, "clusterList", "-n", ns), "pytls")
            report = await run_client(java, "produce", ns, "TlsJavaTopic", str(COUNT), seconds=120)
            assert report[0]["failures"] == [] and report[0]["sync_ok"] == COUNT // 4, report
            pushed = await run_client(
                java, "push", ns, "TlsJavaTopic", "tls_push", str(COUNT), "60", seconds=120
            )
            *messages, done = pushed
            assert done == {"done": COUNT}
            assert {int(str(m["i"])) for m in messages} == set(range(COUNT))

            # The same Java admin without TLS gets no answer from an enforcing server.
            java.jvm_flags = []
            plain = await trio.to_thread.run_sync(lambda: java.mqadmin("clusterList", "-n", ns))
            assert "pytls" not in plain.stdout
            nursery.cancel_scope.cancel()


async def test_pyrocket_clients_with_tls_through_java_servers(
    java: JavaCluster, tmp_path: Path
) -> None:
    certs = TlsFiles.create(tmp_path)
    empty = empty_file(tmp_path)
    java.jvm_flags = java_server_flags(certs, empty)
    ns_port, broker_port = free_port(), free_port(2)
    await trio.to_thread.run_sync(lambda: java.start_namesrv(ns_port))
    ns = f"127.0.0.1:{ns_port}"
    await trio.to_thread.run_sync(lambda: java.start_broker("javatls", broker_port, ns))
    tls = certs.client_settings()
    with trio.fail_after(300):
        # The broker registers over TLS; pyrocket's Admin sees it over TLS.
        while True:
            async with Admin(ns, tls=tls) as admin:
                info = await admin.cluster_info()
            if "javatls" in (info.broker_addr_table or {}):
                break
            await trio.sleep(1)
        async with Producer("py_tls_producer", [ns], tls=tls) as producer:
            for i in range(COUNT):
                result = await producer.send(new_message("TlsPyTopic", b"py %d" % i))
                assert result.status is SendStatus.SEND_OK
        reader = consumer(
            ns,
            "py_tls_group",
            "TlsPyTopic",
            consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
            tls=tls,
        )
        bodies: set[bytes] = set()
        async with reader:
            async for message in reader:
                bodies.add(message.body)
                if len(bodies) == COUNT:
                    break
        assert bodies == {b"py %d" % i for i in range(COUNT)}
        # Without TLS, the enforcing Java NameServer closes the connection.
        failed = False
        try:
            async with Admin(ns, timeout=3) as plain:
                await plain.cluster_info()
        except* PyrocketError:
            failed = True
        assert failed
