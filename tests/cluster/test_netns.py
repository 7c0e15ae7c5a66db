"""The namespace helper itself: members reach each other over the bridge, a
cut stops new connections and stalls established ones, healing restores
both, and every namespace is gone after the block, also when it fails."""

from __future__ import annotations

import pytest
import trio

from tests.cluster.netns import Network, netns_problem, network, run_ip, sockets_in


@pytest.fixture
def namespaces() -> None:
    problem = netns_problem()
    if problem is not None:
        pytest.skip(problem)


def listed() -> set[str]:
    return {line.split(" ", 1)[0] for line in run_ip("ip", "netns", "list").stdout.splitlines()}


async def connect(net: Network, source: str, target: str, port: int) -> trio.SocketStream:
    with sockets_in(net[source]):
        return await trio.open_tcp_stream(net[target].ip, port)


@pytest.mark.usefixtures("namespaces")
async def test_cut_and_heal_between_two_members() -> None:
    with network(["a", "b", "c"]) as net, trio.fail_after(20):
        with sockets_in(net["b"]):
            listeners = await trio.open_tcp_listeners(0, host=net["b"].ip)
        port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery, listeners[0]:

            async def echo(stream: trio.SocketStream) -> None:
                async for data in stream:
                    await stream.send_all(data)

            nursery.start_soon(trio.serve_listeners, echo, listeners)
            established = await connect(net, "a", "b", port)
            await established.send_all(b"ping")
            assert await established.receive_some() == b"ping"
            net.cut("a", "b")
            with pytest.raises(OSError):
                await connect(net, "a", "b", port)
            # The established connection hangs instead of failing.
            await established.send_all(b"lost?")
            with trio.move_on_after(0.5) as waited:
                await established.receive_some()
            assert waited.cancelled_caught
            # Other members still reach b.
            other = await connect(net, "c", "b", port)
            await other.send_all(b"c")
            assert await other.receive_some() == b"c"
            net.heal("a", "b")
            # Retransmitted after healing.
            assert await established.receive_some() == b"lost?"
            again = await connect(net, "a", "b", port)
            await again.send_all(b"back")
            assert await again.receive_some() == b"back"
            for stream in (established, other, again):
                await stream.aclose()
            nursery.cancel_scope.cancel()


@pytest.mark.usefixtures("namespaces")
def test_every_namespace_is_deleted_when_the_block_fails() -> None:
    names: set[str] = set()
    with pytest.raises(RuntimeError), network(["x", "y"]) as net:
        names = {net.hub, *(m.netns for m in net.members.values())}
        assert names <= listed()
        raise RuntimeError("test failure")
    assert len(names) == 3
    assert not names & listed()
