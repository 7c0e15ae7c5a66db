"""Later: one result, handed to one consumer by a callback or an await."""

from __future__ import annotations

import pytest
import trio

from pyrocket.later import Later


def test_a_callback_registered_first_runs_when_settled() -> None:
    later: Later[int] = Later()
    seen: list[int] = []
    later.when_settled(lambda done: seen.append(done.result()))
    assert not later.settled
    assert seen == []
    later.settle(5)
    assert seen == [5]
    assert later.result() == 5  # (raises unless settled)


def test_a_callback_registered_after_settling_runs_at_once() -> None:
    later: Later[str] = Later()
    later.settle("x")
    seen: list[str] = []
    later.when_settled(lambda done: seen.append(done.result()))
    assert seen == ["x"]


def test_then_maps_the_value_and_passes_errors_on() -> None:
    first: Later[int] = Later()
    doubled = first.then(lambda value: value * 2)
    first.settle(21)
    assert doubled.result() == 42

    failing: Later[int] = Later()
    mapped = failing.then(lambda value: value + 1)
    failing.fail(ValueError("no disk"))
    with pytest.raises(ValueError, match="no disk"):
        mapped.result()

    raising: Later[int] = Later()
    broken = raising.then(lambda value: 1 // value)
    raising.settle(0)
    with pytest.raises(ZeroDivisionError):
        broken.result()


def test_misuse_is_refused() -> None:
    later: Later[int] = Later()
    with pytest.raises(RuntimeError):
        later.result()
    later.when_settled(lambda _: None)
    with pytest.raises(RuntimeError):
        later.when_settled(lambda _: None)
    later.settle(1)
    with pytest.raises(RuntimeError):
        later.settle(2)


async def test_awaiting_gives_the_value_once_settled() -> None:
    later: Later[int] = Later()

    async def settle_soon() -> None:
        await trio.sleep(0.01)
        later.settle(7)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(settle_soon)
            assert await later == 7
        done: Later[int] = Later()
        done.settle(3)
        assert await done == 3
