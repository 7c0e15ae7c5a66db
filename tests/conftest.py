"""Shared fixtures: the golden vectors recorded from Java RocketMQ 4.7.0."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

from pyrocket.vectors import default_vectors_dir, scenario_files

# Property tests run a bounded number of examples in CI; fuzz/ runs long ones.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    directory = default_vectors_dir()
    # Fail loudly: a missing vectors directory must never look like a pass.
    assert directory.is_dir(), f"golden vectors missing at {directory}"
    assert scenario_files(directory), f"no captures in {directory}"
    return directory
