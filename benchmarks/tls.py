"""Send throughput over TLS next to plaintext, against one broker.

A pyrocket broker runs in a child process with ``tls.server.mode=permissive``
(test certificates from ``trustme``, written to a temporary directory), so
the same broker and store serve both rounds on one port. Each round drives
SEND_MESSAGE_V2 of 1 KiB messages (ASYNC_FLUSH) from ``--connections``
connections with ``--inflight`` sync sends in flight on each; the plaintext
and TLS rounds alternate ``--rounds`` times and the best of each counts.

    python benchmarks/tls.py [--connections 4 --inflight 16 --seconds 3 --rounds 2]

Prints each round; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import trio
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.broker import QUEUES, send_request
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import ClientConfig, RemotingClient
from pyrocket.remoting.tls import TlsSettings


def write_certs(directory: Path) -> tuple[str, str, str]:
    """(CA, server certificate, server key) files."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca.cert_pem.write_to_path(str(paths[0]))
    issued.cert_chain_pems[0].write_to_path(str(paths[1]))
    issued.private_key_pem.write_to_path(str(paths[2]))
    return str(paths[0]), str(paths[1]), str(paths[2])


def start_broker(root: Path, cert: str, key: str) -> tuple[subprocess.Popen[str], str]:
    settings = {
        "brokerIP1": "127.0.0.1",
        "brokerName": "bench-broker",
        "listenPort": "0",
        "storePathRootDir": str(root / "store"),
        "flushDiskType": "ASYNC_FLUSH",
        "defaultTopicQueueNums": str(QUEUES),
        "tls.server.mode": "permissive",
        "tls.server.certPath": cert,
        "tls.server.keyPath": key,
        "tls.config.file": str(root / "none.properties"),
    }
    (root / "none.properties").write_text("")
    command = [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", "broker"]
    for name, value in settings.items():
        command += ["--set", f"{name}={value}"]
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    match = re.search(r"\[bench-broker, ([0-9.]+:[0-9]+)\] boot success", line)
    if match is None:
        child.kill()
        raise RuntimeError(f"broker did not start: {line!r}")
    return child, match.group(1)


async def drive(addr: str, config: ClientConfig, args: argparse.Namespace) -> int:
    """Sends per second over ``args.seconds`` after a one-second warm-up."""
    requests = [send_request(i, b"x" * 1024) for i in range(QUEUES * 8)]
    counted = 0
    measuring = False
    stop = False

    async def sender(client: RemotingClient, start: int) -> None:
        nonlocal counted
        index = start
        while not stop:
            response = await client.invoke_sync(addr, requests[index % len(requests)], 10.0)
            index += 1
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"send failed: {response!r}")
            if measuring:
                counted += 1

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(args.connections):
            client = await stack.enter_async_context(RemotingClient(config))
            await client.get_connection(addr)
            clients.append(client)
        await clients[0].invoke_sync(addr, requests[0], 10.0)
        async with trio.open_nursery() as nursery:
            for n, client in enumerate(clients):
                for k in range(args.inflight):
                    nursery.start_soon(sender, client, n * args.inflight + k)
            await trio.sleep(1.0)
            measuring = True
            start = time.perf_counter()
            await trio.sleep(args.seconds)
            measuring = False
            elapsed = time.perf_counter() - start
            stop = True
    return round(counted / elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyrocket-tls-bench-") as tmp:
        root = Path(tmp)
        ca, cert, key = write_certs(root)
        child, addr = start_broker(root, cert, key)
        tls = TlsSettings(
            enable=True,
            client_auth_server=True,
            client_trust_cert_path=ca,
            config_file=str(root / "none.properties"),
        )
        best = {"plain": 0, "tls": 0}
        try:
            for round_no in range(args.rounds):
                for name, config in (("plain", ClientConfig()), ("tls", ClientConfig(tls=tls))):
                    rate = trio.run(drive, addr, config, args)
                    print(f"round {round_no + 1} {name}: {rate} sends/s", flush=True)
                    best[name] = max(best[name], rate)
        finally:
            child.terminate()
            child.wait(30)
    cost = 100.0 * (1 - best["tls"] / best["plain"]) if best["plain"] else 0.0
    print(
        json.dumps(
            {
                "plain_sends_per_s": best["plain"],
                "tls_sends_per_s": best["tls"],
                "tls_cost_percent": round(cost, 1),
                "connections": args.connections,
                "inflight_per_connection": args.inflight,
                "body_bytes": 1024,
                "seconds_per_round": args.seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
