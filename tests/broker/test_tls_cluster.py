"""A NameServer and a broker that both enforce TLS with client certificates,
configured through their Java keys; the broker registers over TLS, and a
producer and a consumer with TLS send and receive through them. Plaintext
clients are refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import trio

from pyrocket.broker.app import serve_broker
from pyrocket.broker.config import load_broker_settings
from pyrocket.client.producer import Producer, SendStatus, new_message
from pyrocket.errors import PyrocketError
from pyrocket.namesrv.app import NameServer
from pyrocket.namesrv.config import load_config
from pyrocket.protocol.bodies.client import ConsumeFromWhere
from pyrocket.remoting.tls import TlsMode
from tests.client.helpers import consumer
from tests.remoting.tlscerts import TlsFiles


def tls_keys(certs: TlsFiles) -> dict[str, str]:
    """What an operator would put in namesrv.properties / broker.conf."""
    return {
        "tls.server.mode": "enforcing",
        "tls.server.need.client.auth": "require",
        "tls.server.certPath": certs.server.cert,
        "tls.server.keyPath": certs.server.key,
        "tls.server.authClient": "true",
        "tls.server.trustCertPath": certs.ca,
        "tls.client.certPath": certs.client.cert,
        "tls.client.keyPath": certs.client.key,
        "tls.client.authServer": "true",
        "tls.client.trustCertPath": certs.ca,
    }


async def test_cluster_over_tls(tmp_path: Path) -> None:
    certs = TlsFiles.create(tmp_path)
    keys = tls_keys(certs)
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
    assert namesrv.config.tls.server_mode is TlsMode.ENFORCING
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(namesrv.serve, "127.0.0.1", 0)
            namesrv_addr = f"127.0.0.1:{port}"
            settings = load_broker_settings(
                None,
                {
                    "brokerName": "broker-tls",
                    "brokerIP1": "127.0.0.1",
                    "brokerIP2": "127.0.0.1",
                    "namesrvAddr": namesrv_addr,
                    "listenPort": "0",
                    "storePathRootDir": str(tmp_path / "broker"),
                    "autoCreateTopicEnable": "true",
                    **keys,
                },
            )
            # BrokerStartup: an enforcing broker talks TLS to its NameServers.
            assert settings.client.use_tls
            # Reported once registered with the NameServer, over TLS.
            broker = await nursery.start(partial(serve_broker, settings, host="127.0.0.1"))
            assert broker is not None

            client_tls = certs.client_settings(pair=certs.client)
            async with Producer("tls-producer", [namesrv_addr], tls=client_tls) as producer:
                for i in range(5):
                    result = await producer.send(new_message("TlsTopic", b"secret %d" % i))
                    assert result.status is SendStatus.SEND_OK

            reader = consumer(
                namesrv_addr,
                "tls-group",
                "TlsTopic",
                consume_from=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                tls=client_tls,
            )
            bodies: set[bytes] = set()
            async with reader:
                async for message in reader:
                    bodies.add(message.body)
                    if len(bodies) == 5:
                        break
            assert bodies == {b"secret %d" % i for i in range(5)}

            # Plaintext, or TLS without a client certificate, gets nowhere.
            for tls in (None, certs.client_settings()):
                failed = False
                try:
                    async with Producer(
                        "plain-producer", [namesrv_addr], tls=tls, send_timeout=2
                    ) as plain:
                        await plain.send(new_message("TlsTopic", b"x"))
                except* PyrocketError:
                    failed = True
                assert failed
            nursery.cancel_scope.cancel()
