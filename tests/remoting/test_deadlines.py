"""The deadline timer on a virtual clock: keys fire at their deadlines in
order, an earlier push wakes the sleeping task, entries no longer live are
skipped (and reported stale) or pruned, and many keys expiring at once are
fired in slices."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from pyrocket.remoting.deadlines import PRUNE_FLOOR, PRUNE_RATIO, DeadlineTimer


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class Keys:
    """Live keys with their deadlines, and what the timer did with them."""

    def __init__(self) -> None:
        self.deadlines: dict[int, float] = {}
        self.fired: list[tuple[int, float]] = []
        self.stale: list[int] = []

    def live(self, deadline: float, key: int) -> bool:
        return self.deadlines.get(key) == deadline

    def fire(self, key: int) -> None:
        del self.deadlines[key]
        self.fired.append((key, trio.current_time()))

    def add(self, timer: DeadlineTimer[int], key: int, deadline: float) -> None:
        self.deadlines[key] = deadline
        timer.push(deadline, key)


async def run_timer(
    nursery: trio.Nursery, timer: DeadlineTimer[int], keys: Keys, slice_size: int = 0
) -> None:
    nursery.start_soon(lambda: timer.run(keys.fire, stale=keys.stale.append, slice_size=slice_size))
    await trio.testing.wait_all_tasks_blocked()


async def test_keys_fire_at_their_deadlines_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    keys = Keys()
    timer: DeadlineTimer[int] = DeadlineTimer(keys.live)
    start = trio.current_time()
    for key, delay in [(1, 3.0), (2, 1.0), (3, 2.0), (4, 2.0)]:
        keys.add(timer, key, start + delay)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await run_timer(nursery, timer, keys)
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
    assert [key for key, _ in keys.fired] == [2, 3, 4, 1]
    assert all(
        at == pytest.approx(start + delay)
        for (_, at), delay in zip(keys.fired, [1.0, 2.0, 2.0, 3.0], strict=True)
    )
    assert keys.deadlines == {}
    assert len(timer) == 0


async def test_an_earlier_deadline_wakes_the_sleeping_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    keys = Keys()
    timer: DeadlineTimer[int] = DeadlineTimer(keys.live)
    start = trio.current_time()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            keys.add(timer, 1, start + 60)
            await run_timer(nursery, timer, keys)  # now asleep until start + 60
            keys.add(timer, 2, start + 1)
            await trio.sleep(2)
            assert [key for key, _ in keys.fired] == [2]
            assert keys.fired[0][1] == pytest.approx(start + 1)
            # A timer with nothing to do sleeps until a key is pushed.
            await trio.sleep(60)
            assert [key for key, _ in keys.fired] == [2, 1]
            keys.add(timer, 3, trio.current_time() + 0.5)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
    assert [key for key, _ in keys.fired] == [2, 1, 3]


async def test_entries_no_longer_live_are_skipped_as_stale(
    autojump_clock: trio.testing.MockClock,
) -> None:
    keys = Keys()
    timer: DeadlineTimer[int] = DeadlineTimer(keys.live)
    start = trio.current_time()
    keys.add(timer, 1, start + 1)
    keys.add(timer, 2, start + 2)
    keys.add(timer, 3, start + 3)
    del keys.deadlines[1]  # left early
    keys.add(timer, 3, start + 4)  # pushed again later: the first entry is dead
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await run_timer(nursery, timer, keys)
            await trio.sleep(5)
            nursery.cancel_scope.cancel()
    assert [key for key, _ in keys.fired] == [2, 3]
    assert [at for _, at in keys.fired] == pytest.approx([start + 2, start + 4])
    assert keys.stale == [1, 3]


async def test_prune_and_push_with_a_live_count_drop_dead_entries() -> None:
    keys = Keys()
    timer: DeadlineTimer[int] = DeadlineTimer(keys.live)
    total = PRUNE_FLOOR + 10
    for key in range(total):
        keys.add(timer, key, 1000.0 + key)
    for key in range(0, total, 2):
        del keys.deadlines[key]
    assert len(timer) == total
    timer.prune()
    assert len(timer) == len(keys.deadlines) == total // 2

    # push() prunes only past the floor and the ratio of dead to live.
    for key in range(total, total + PRUNE_FLOOR):
        keys.add(timer, key, 5000.0 + key)
    for key in list(keys.deadlines)[:-10]:
        del keys.deadlines[key]
    before = len(timer)
    assert before > PRUNE_FLOOR and before > PRUNE_RATIO * len(keys.deadlines)
    timer.push(9000.0, 10**6)  # no live count: no pruning
    assert len(timer) == before + 1
    keys.deadlines[10**6 + 1] = 9001.0
    timer.push(9001.0, 10**6 + 1, len(keys.deadlines))
    # Only the live keys are left (10**6 never was one), the new one included.
    assert len(timer) == len(keys.deadlines) == 11
    timer.clear()
    assert len(timer) == 0


@pytest.mark.parametrize(("slice_size", "checkpoints"), [(0, 0), (2, 3), (4, 1)])
async def test_keys_expiring_together_are_fired_in_slices(
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    slice_size: int,
    checkpoints: int,
) -> None:
    keys = Keys()
    timer: DeadlineTimer[int] = DeadlineTimer(keys.live)
    deadline = trio.current_time() + 1
    for key in range(6):
        keys.add(timer, key, deadline)
    seen: list[int] = []
    checkpoint = trio.lowlevel.checkpoint

    async def counting_checkpoint() -> None:
        seen.append(len(keys.fired))
        await checkpoint()

    monkeypatch.setattr(trio.lowlevel, "checkpoint", counting_checkpoint)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await run_timer(nursery, timer, keys, slice_size)
            await trio.sleep(2)
            nursery.cancel_scope.cancel()
    assert [key for key, _ in keys.fired] == list(range(6))
    assert len(seen) == checkpoints
    assert all(count % slice_size == 0 for count in seen)
