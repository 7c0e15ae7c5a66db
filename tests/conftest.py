"""Shared fixtures and hooks: the golden vectors recorded from Java RocketMQ
4.7.0 (shipped in tests/vectors/, or $PYROCKET_VECTORS), the skip rule for
tests that need an optional peer, and the replay summary lines."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

import pytest
from hypothesis import settings

from tests.vectorset import default_vectors_dir, scenario_files

# Property tests run a bounded number of examples in CI; fuzz/ runs long ones.
settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile("ci")

#: The skip reason of every test marked ``interop`` when the C++ client is absent.
CPP_CLIENT_MISSING = "the rocketmq wheel (C++ client) is not installed"


@functools.cache
def cpp_client_problem() -> str | None:
    """Why the C++ client of PyPI's ``rocketmq`` wheel cannot be used here, or None."""
    try:
        importlib.import_module("rocketmq.client")
    except ImportError as exc:
        return f"{CPP_CLIENT_MISSING} ({exc})"
    except OSError as exc:  # the wheel is there but its librocketmq.so does not load
        return f"the rocketmq wheel's C++ library does not load ({exc})"
    return None


def require_cpp_client() -> None:
    """Skip the calling test (or module, at import time) without the C++ client."""
    problem = cpp_client_problem()
    if problem is not None:
        pytest.skip(problem, allow_module_level=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # One rule for every test that talks to the C++ client: marked ``interop``,
    # skipped with the same reason when the wheel is absent.
    interop = [item for item in items if item.get_closest_marker("interop")]
    if interop and (problem := cpp_client_problem()) is not None:
        for item in interop:
            item.add_marker(pytest.mark.skip(reason=problem))


#: One line per replayed scenario and server, shown at the end of the run.
REPLAY_SUMMARY: list[str] = []


def report_replay(line: str) -> None:
    """Print a replay's summary line and keep it for the terminal summary."""
    print(line)
    REPLAY_SUMMARY.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPLAY_SUMMARY:
        terminalreporter.section("replay summary")
        for line in REPLAY_SUMMARY:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    directory = default_vectors_dir()
    # Fail loudly: a missing vectors directory must never look like a pass.
    assert directory.is_dir(), f"golden vectors missing at {directory}"
    assert scenario_files(directory), f"no captures in {directory}"
    return directory
