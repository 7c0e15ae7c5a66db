"""pyrocket's Producer and PushConsumer with a real peer, the C++ RocketMQ
client (PyPI ``rocketmq==0.4.4``, run in subprocesses by
tests/broker/cpp_client.py), through ``pyrocket up``: what the C++ producer
sends the pyrocket consumer receives, and what the pyrocket producer sends
the C++ pull consumer receives, each message once with body (compressed
ones included), tags, keys and properties."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio

from pyrocket.client.producer import Producer, new_message
from tests.broker.cpp_client import ORIGIN, expected
from tests.broker.helpers import stored_in_topic
from tests.broker.test_cpp_interop import check_received, run_client
from tests.client.helpers import consumer, running_up
from tests.conftest import require_cpp_client

require_cpp_client()

pytestmark = pytest.mark.interop

COUNT = 100


async def test_cpp_producer_to_pyrocket_consumer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            report = await run_client(home, "produce", ns, "CppToPy", str(COUNT), seconds=30)
            assert report == [
                {"sync_ok": 25, "orderly_ok": 25, "oneway": 25, "async_ok": 25, "async_failed": 0}
            ]
            async with consumer(ns, "py_from_cpp", "CppToPy") as reader:
                messages = [await reader.receive() for _ in range(COUNT)]
                with trio.move_on_after(0.5):
                    extra = await reader.receive()
                    pytest.fail(f"unexpected {extra}")
    seen = sorted(int(m.properties["idx"]) for m in messages)
    assert seen == list(range(COUNT))
    for m in messages:
        want = expected(int(m.properties["idx"]))
        assert (m.tags, m.keys) == (want["tags"], want["keys"])
        assert m.properties["origin"] == ORIGIN
        assert hashlib.sha256(m.body).hexdigest() == want["body_sha"]
        assert len(m.body) == want["body_len"]


async def test_pyrocket_producer_to_cpp_pull_consumer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with trio.fail_after(60):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            async with Producer("py_to_cpp", [ns], client_ip="127.0.0.1") as producer:
                for i in range(COUNT):
                    spec = expected(i)
                    body = spec["body"]
                    assert isinstance(body, bytes)
                    message = new_message(
                        "PyToCpp",
                        body,
                        tags=str(spec["tags"]),
                        keys=str(spec["keys"]),
                        properties={"idx": str(i), "origin": ORIGIN},
                    )
                    if spec["mode"] == "oneway":
                        await producer.send_oneway(message)
                    elif spec["mode"] == "orderly":
                        await producer.send_orderly(message, i)
                    else:
                        await producer.send(message)
            # The last oneway sends may still be on their way.
            assert await stored_in_topic(running.broker, "PyToCpp", COUNT) == COUNT
            pulled = await run_client(home, "pull", ns, "PyToCpp", "cpp_from_py", seconds=30)
    check_received(pulled, "C++ pull consumer", COUNT)
