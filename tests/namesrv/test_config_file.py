"""UPDATE_NAMESRV_CONFIG's writes to the properties file: one writer, so
updates that come together share a write and none undoes another."""

from __future__ import annotations

from pathlib import Path

import trio

from pyrocket.namesrv.config import ConfigFileWriter


async def test_concurrent_updates_share_writes_and_keep_each_other(tmp_path: Path) -> None:
    conf = tmp_path / "namesrv.properties"
    conf.write_text("# kept\nlistenPort=9876\nk3=old\n")
    file = ConfigFileWriter(lambda: str(conf))
    count = 100

    async def update(number: int) -> None:
        await file.writer.wait(file.record({f"k{number}": str(number)}))
        lines = conf.read_text().splitlines()
        assert f"k{number}={number}" in lines

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(file.writer.run)
            async with trio.open_nursery() as updates:
                for number in range(count):
                    updates.start_soon(update, number)
            nursery.cancel_scope.cancel()
    lines = conf.read_text().splitlines()
    assert lines[:3] == ["# kept", "listenPort=9876", "k3=3"]
    assert {f"k{n}={n}" for n in range(count)} <= set(lines)
    assert len(lines) == count + 2
    assert 1 <= file.writer.rounds <= count // 10
