"""Send throughput with ACL next to plain: SEND_MESSAGE_V2 of 1 KiB messages
to a broker in a child process, once with ``aclEnable=false`` and unsigned
requests, once with ``aclEnable=true`` and every request signed as Java's
AclClientRPCHook signs it (the client signs, the broker checks the signature
and the topic permission).

    python benchmarks/acl.py [--connections 4 --inflight 16 --seconds 5]

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
from functools import partial
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyrocket.acl.signing import SessionCredentials, sign_request
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand
from pyrocket.protocol.headers import SendMessageRequestHeaderV2
from pyrocket.protocol.message import encode_properties
from pyrocket.remoting import ClientConfig, RemotingClient

TOPIC = "AclBenchTopic"
QUEUES = 8
CREDENTIALS = SessionCredentials("benchaccount", "benchsecret")
ACL_YML = """\
globalWhiteRemoteAddresses: []
accounts:
- accessKey: benchaccount
  secretKey: benchsecret
  defaultTopicPerm: DENY
  defaultGroupPerm: SUB
  topicPerms:
  - AclBenchTopic=PUB
  - TBW102=PUB
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_broker(root: Path, acl: bool) -> tuple[subprocess.Popen[str], str]:
    home = root / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(ACL_YML)
    settings = {
        "brokerIP1": "127.0.0.1",
        "brokerName": "bench-broker",
        "listenPort": "0",
        "storePathRootDir": str(root / "store"),
        "flushDiskType": "ASYNC_FLUSH",
        "defaultTopicQueueNums": str(QUEUES),
        "aclEnable": "true" if acl else "false",
        "rocketmqHome": str(home),
    }
    command = [sys.executable, "-m", "pyrocket", "--log-level", "WARNING", "broker"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
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


def send_request(i: int, body: bytes) -> RemotingCommand:
    properties = encode_properties({"KEYS": f"K{i}", "TAGS": "TagBench", "WAIT": "true"})
    header = SendMessageRequestHeaderV2(
        producer_group="bench_producer",
        topic=TOPIC,
        default_topic="TBW102",
        default_topic_queue_nums=QUEUES,
        queue_id=i % QUEUES,
        sys_flag=0,
        born_timestamp=int(time.time() * 1000),
        flag=0,
        properties=properties,
        reconsume_times=0,
        unit_mode=False,
        batch=False,
    )
    return RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, header, body=body)


async def drive_sends(
    addr: str, signed: bool, connections: int, inflight: int, warmup: float, seconds: float
) -> tuple[int, int]:
    body = b"x" * 1024
    requests = [send_request(i, body) for i in range(QUEUES * 8)]
    hook = partial(sign_request, credentials=CREDENTIALS) if signed else None
    counted = 0
    sent = 0
    measuring = False
    stop = False

    async def sender(client: RemotingClient, start: int) -> None:
        nonlocal counted, sent
        index = start
        while not stop:
            request = requests[index % len(requests)]
            index += 1
            response = await client.invoke_sync(addr, request, 10.0)
            if response.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"send failed: {response!r}")
            sent += 1
            if measuring:
                counted += 1

    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(connections):
            client = RemotingClient(ClientConfig(), rpc_hook=hook)
            await stack.enter_async_context(client)
            await client.get_connection(addr)
            clients.append(client)
        await clients[0].invoke_sync(addr, requests[0], 10.0)
        async with trio.open_nursery() as nursery:
            for n, client in enumerate(clients):
                for k in range(inflight):
                    nursery.start_soon(sender, client, n * inflight + k)
            await trio.sleep(warmup)
            measuring = True
            start = time.perf_counter()
            await trio.sleep(seconds)
            measuring = False
            elapsed = time.perf_counter() - start
            stop = True
    return round(counted / elapsed), sent + 1


def run_round(acl: bool, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pyrocket-bench-") as tmp:
        child, addr = start_broker(Path(tmp), acl)
        try:
            before = cpu_seconds(child.pid)
            rate, sent = trio.run(
                drive_sends, addr, acl, args.connections, args.inflight, args.warmup, args.seconds
            )
            cpu = cpu_seconds(child.pid) - before
        finally:
            child.terminate()
            child.wait(timeout=30)
    key = "acl" if acl else "plain"
    figures = {
        f"send_{key}_msgs_per_s": float(rate),
        f"broker_cpu_us_per_send_{key}": round(cpu * 1e6 / max(sent, 1), 1),
    }
    print(
        f"{key}: {rate} msgs/s, broker CPU {figures[f'broker_cpu_us_per_send_{key}']} us/send",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    figures = run_round(False, args)
    figures.update(run_round(True, args))
    plain, acl = figures["send_plain_msgs_per_s"], figures["send_acl_msgs_per_s"]
    figures["acl_throughput_cost_percent"] = round(100 * (1 - acl / plain), 1) if plain else 0.0
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
