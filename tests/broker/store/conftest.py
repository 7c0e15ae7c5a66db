"""Fixtures for the store tests."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A mock clock that jumps only after 10 ms of real idleness: the store
    creates files in worker threads, and a clock jumping while a thread works
    would run timeouts out before the thread is done."""
    return trio.testing.MockClock(autojump_threshold=0.01)
