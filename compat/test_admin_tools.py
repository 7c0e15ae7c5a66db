"""Java's mqadmin and ``pyrocket admin`` run the same commands against one
pyrocket cluster and print the same layout: updateOrderConf, allocateMQ,
updateTopicPerm, sendMessage, consumerProgress, printMsg, printMsgByQueue,
consumeMessage, queryMsgByOffset, queryCq, checkMsgSendRT and sendMsgStatus.

Where the output holds values that differ from run to run (message ids,
times, the queue a producer picks) the comparison is of the layout: the
column positions and the fixed text.
"""

from __future__ import annotations

import re
from pathlib import Path

import trio

from compat.java_cluster import JavaCluster
from pyrocket.client.admin import Admin
from pyrocket.protocol.bodies.topic import TopicConfig
from tests.cli.test_broker_cli import cli
from tests.client.helpers import consumer, running_up
from tests.remoting.helpers import wait_until


async def java_out(java: JavaCluster, *args: str) -> str:
    result = await trio.to_thread.run_sync(lambda: java.mqadmin(*args))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


async def ours(*args: str) -> str:
    code, out, err = await cli("admin", *args)
    assert code == 0, err
    return out


def layout(text: str) -> list[str]:
    """Each line with runs of word characters masked: what stays is the
    spacing and punctuation, i.e. the columns."""
    return [re.sub(r"[\w.%:/@-]+", "x", line) for line in text.splitlines()]


async def test_same_output_as_mqadmin(java: JavaCluster, tmp_path: Path) -> None:
    with trio.fail_after(600):
        async with running_up(tmp_path) as running:
            ns = running.namesrv_addr
            addr = running.broker.broker_addr
            async with Admin(ns) as admin:
                await admin.update_topic_on_broker(addr, TopicConfig("CmpTopic", 4, 4))
            await wait_until(lambda: running.namesrv.state.routes.queue_datas("CmpTopic") != [])

            # Exact output, both ways round.
            for args in (
                ("updateOrderConf", "-t", "CmpTopic", "-m", "put", "-v", "broker-a:4"),
                ("updateOrderConf", "-t", "CmpTopic", "-m", "get"),
                ("allocateMQ", "-t", "CmpTopic", "-i", "10.0.0.1,10.0.0.2,10.0.0.3"),
                ("updateOrderConf", "-t", "CmpTopic", "-m", "delete"),
            ):
                assert await ours(*args, "-n", ns) == await java_out(java, *args, "-n", ns)

            java_perm = await java_out(
                java, "updateTopicPerm", "-n", ns, "-b", addr, "-t", "CmpTopic", "-p", "4"
            )
            await wait_until(
                lambda: running.namesrv.state.routes.queue_datas("CmpTopic")[0].perm == 4
            )
            # Back to 6 ours, then to 4 again: the same text as Java's change.
            await ours("updateTopicPerm", "-n", ns, "-b", addr, "-t", "CmpTopic", "-p", "6")
            await wait_until(
                lambda: running.namesrv.state.routes.queue_datas("CmpTopic")[0].perm == 6
            )
            assert (
                await ours("updateTopicPerm", "-n", ns, "-b", addr, "-t", "CmpTopic", "-p", "4")
                == java_perm
            )
            # The command reads the current perm from the NameServer: wait for
            # the change to reach it, or the next one may see the old value.
            await wait_until(
                lambda: running.namesrv.state.routes.queue_datas("CmpTopic")[0].perm == 4
            )
            await ours("updateTopicPerm", "-n", ns, "-b", addr, "-t", "CmpTopic", "-p", "6")
            await wait_until(
                lambda: running.namesrv.state.routes.queue_datas("CmpTopic")[0].perm == 6
            )

            # Sends: the same table, values aside.
            mine = await ours("sendMessage", "-n", ns, "-t", "CmpTopic", "-p", "a", "-c", "T1")
            theirs = await java_out(
                java, "sendMessage", "-n", ns, "-t", "CmpTopic", "-p", "b", "-c", "T1"
            )
            assert mine.splitlines()[0] == theirs.splitlines()[0]
            assert layout(mine) == layout(theirs)

            for queue in range(4):
                args = ("printMsgByQueue", "-n", ns, "-t", "CmpTopic", "-a", "broker-a",
                        "-i", str(queue), "-f", "true")  # fmt: skip
                assert await ours(*args) == await java_out(java, *args)

            # Both read the same stored messages, so the text is the same to
            # the byte: Java's MessageExt.toString, queue order, tracks.
            filled = next(
                q for q in range(4) if running.broker.store.get_max_offset_in_queue("CmpTopic", q)
            )
            for args in (
                ("printMsg", "-n", ns, "-t", "CmpTopic"),
                ("printMsg", "-n", ns, "-t", "CmpTopic", "-d", "false", "-s", "T1"),
                ("printMsgByQueue", "-n", ns, "-t", "CmpTopic", "-a", "broker-a",
                 "-i", str(filled), "-p", "true", "-d", "true"),
                ("consumeMessage", "-n", ns, "-t", "CmpTopic"),
                ("consumeMessage", "-n", ns, "-t", "CmpTopic", "-b", "broker-a",
                 "-i", str(filled), "-o", "0", "-c", "1"),
                ("queryMsgByOffset", "-n", ns, "-t", "CmpTopic", "-b", "broker-a",
                 "-i", str(filled), "-o", "0"),
                ("queryCq", "-n", ns, "-t", "CmpTopic", "-q", str(filled), "-i", "0"),
            ):  # fmt: skip
                assert await ours(*args) == await java_out(java, *args), args

            rt = ("checkMsgSendRT", "-n", ns, "-t", "CmpTopic", "-a", "3", "-s", "10")
            mine, theirs = await ours(*rt), await java_out(java, *rt)
            assert mine.splitlines()[0] == theirs.splitlines()[0]
            assert layout(mine) == layout(theirs)
            status = ("sendMsgStatus", "-n", ns, "-b", "broker-a", "-c", "2")
            mine, theirs = await ours(*status), await java_out(java, *status)
            assert layout(mine) == layout(theirs)

            # A group that read the topic: the same queue rows and totals.
            async with consumer(ns, "cmp_group", "CmpTopic") as reader:
                total = sum(
                    running.broker.store.get_max_offset_in_queue("CmpTopic", q) for q in range(4)
                )
                with trio.fail_after(30):
                    for _ in range(total):
                        await reader.receive()
                    await reader.commit()
                for args in (
                    ("consumerProgress", "-n", ns, "-g", "cmp_group", "-s", "true"),
                    ("consumerProgress", "-n", ns, "-g", "cmp_group"),
                ):
                    mine, theirs = await ours(*args), await java_out(java, *args)
                    assert "127.0.0.1" in mine or "-s" not in args
                    # The TPS line may move between the two calls.
                    assert [x for x in mine.splitlines() if not x.startswith("Consume TPS")] == [
                        x for x in theirs.splitlines() if not x.startswith("Consume TPS")
                    ]
                progress = ("consumerProgress", "-n", ns)
                mine, theirs = await ours(*progress), await java_out(java, *progress)
                assert mine.splitlines()[0] == theirs.splitlines()[0]
                mine_row = [x for x in mine.splitlines() if x.startswith("cmp_group ")]
                their_row = [x for x in theirs.splitlines() if x.startswith("cmp_group ")]
                assert len(mine_row) == 1 and layout(mine_row[0]) == layout(their_row[0])
                assert mine_row[0][:90] == their_row[0][:90]
