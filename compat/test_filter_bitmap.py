"""Filter bit maps against Java 4.7.0: a Java broker with
``enableCalcFilterBitMap`` and ``enableConsumeQueueExt`` writes consume-queue
extension files whose units pyrocket reads with
:mod:`pyrocket.broker.store.consumequeue_ext`, and whose bit maps are exactly
the bloom-filter bits :mod:`pyrocket.filter.bloom` computes for the SQL92
groups each message matches (Java's murmur3 positions).

Skipped when ROCKETMQ_HOME is unset.
"""

from __future__ import annotations

from pathlib import Path

import trio

from compat.java_cluster import JavaCluster, free_port
from compat.test_broker_control import start_namesrv as start_java_namesrv
from pyrocket.broker.store.consumequeue_ext import ConsumeQueueExt, CqExtUnit, decorate
from pyrocket.broker.store.files import DataFile
from pyrocket.filter import compile_selector
from pyrocket.filter.bloom import BloomFilter
from pyrocket.protocol.codes import ResponseCode
from pyrocket.remoting import RemotingClient
from tests.broker.test_filter_bitmap import MINE, OTHER, THEIRS, beat
from tests.broker.test_sql92 import GROUP, TOPIC, send

COUNT = 30


def _properties(i: int) -> dict[str, str]:
    properties = {"a": str(i), "colour": "red" if i % 2 else "blue"}
    if i % 5 == 0:
        del properties["colour"]
    return properties


def _units(path: Path, file_size: int) -> list[CqExtUnit]:
    ext = ConsumeQueueExt(TOPIC, 0, path, file_size)
    ext.load()
    ext.recover()
    units: list[CqExtUnit] = []
    address = decorate(0)
    while (unit := ext.get(address)) is not None:
        units.append(unit)
        address += unit.size
    ext.files.close()
    return units


async def test_java_bit_maps_are_pyrocket_bloom_bits(java: JavaCluster, tmp_path: Path) -> None:
    file_size = 1024 * 1024
    ns_port, port = free_port(), free_port(3)
    await start_java_namesrv(java, ns_port)
    await trio.to_thread.run_sync(
        lambda: java.start_broker(
            "bitmapbroker",
            port,
            f"127.0.0.1:{ns_port}",
            {
                "enablePropertyFilter": "true",
                "enableCalcFilterBitMap": "true",
                "enableConsumeQueueExt": "true",
                "mappedFileSizeConsumeQueueExt": str(file_size),
            },
        )
    )
    addr = f"127.0.0.1:{port}"
    root = java.workdir / f"store-bitmapbroker-{port}" / "consumequeue_ext" / TOPIC / "0"
    with trio.fail_after(120):
        async with RemotingClient() as client:
            for group, expression in ((GROUP, MINE), (OTHER, THEIRS)):
                answer = await client.invoke_sync(addr, beat(group, expression, 7), 10)
                assert answer.code == ResponseCode.SUCCESS, answer.remark
            await trio.sleep(0.05)
            for i in range(COUNT):
                answer = await client.invoke_sync(addr, send(i, **_properties(i)), 10)
                assert answer.code == ResponseCode.SUCCESS, answer.remark
            while True:  # Java computes bit maps in its dispatch thread
                files = sorted(root.glob("0" * 20)) if root.is_dir() else []
                if files and len(_units(root, file_size)) >= COUNT:
                    break
                await trio.sleep(0.2)
    units = _units(root, file_size)
    assert len(units) == COUNT
    # bloom filter of the defaults: maxErrorRateOfBloomFilter=20, expectConsumerNumUseFilter=32
    bloom = BloomFilter(20, 32)
    selectors = {GROUP: compile_selector(MINE), OTHER: compile_selector(THEIRS)}
    for i, unit in enumerate(units):
        bits = bloom.new_bits()
        for group, selector in selectors.items():
            if selector.matches({**_properties(i), "idx": str(i)}):
                bloom.hash_to(bloom.generate(f"{group}#{TOPIC}"), bits)
        assert unit.bit_map == bits.to_bytes(), i
        assert unit.tags_code == 0 and unit.store_timestamp > 0
    assert any(any(unit.bit_map or b"") for unit in units)
    # The file is in the layout pyrocket writes: a fresh file of the same units
    # holds the same bytes.
    mine = tmp_path / "mine"
    ext = ConsumeQueueExt(TOPIC, 0, mine, file_size)
    for unit in units:
        ext.put(unit)
    ext.files.close()
    theirs = DataFile.open(root / ("0" * 20), 0, file_size)
    ours = DataFile.open(mine / ("0" * 20), 0, file_size)
    try:
        assert ours.read(0, file_size) == theirs.read(0, file_size)
    finally:
        theirs.close()
        ours.close()
