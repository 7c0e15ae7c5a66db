"""Live tests against a user's Java RocketMQ 4.7 install (``ROCKETMQ_HOME``).

Run with ``python -m pytest compat``; every test here is skipped when
ROCKETMQ_HOME is unset or holds no RocketMQ jars.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.java_cluster import JavaCluster, java_cluster, rocketmq_home


@pytest.fixture
def java(tmp_path: Path) -> Iterator[JavaCluster]:
    """A launcher for Java processes, all stopped when the test ends."""
    home = rocketmq_home()
    if home is None:
        pytest.skip("ROCKETMQ_HOME is not set to a RocketMQ 4.7 install")
    with java_cluster(home, tmp_path) as cluster:
        yield cluster
