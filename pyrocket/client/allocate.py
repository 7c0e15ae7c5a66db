"""How a consumer group shares a topic's queues (Java's
``AllocateMessageQueueStrategy``): pure functions of the sorted queue list,
the sorted client ids and this client's id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Q = TypeVar("Q")

#: (group, this client's id, every queue sorted, every client id sorted) ->
#: the queues this client reads.
AllocateStrategy = Callable[[str, str, Sequence[Q], Sequence[str]], list[Q]]


def allocate_averagely(
    group: str, client_id: str, queues: Sequence[Q], client_ids: Sequence[str]
) -> list[Q]:
    """``AllocateMessageQueueAveragely``: consecutive runs of queues, the
    first ``len(queues) % len(client_ids)`` clients getting one more. A client
    not in ``client_ids`` (not yet seen by the broker) gets nothing; with more
    clients than queues the last clients get nothing.

    Raises ValueError for an empty ``client_id``.
    """
    if not client_id:
        raise ValueError("currentCID is empty")
    if not queues or client_id not in client_ids:
        return []
    index = client_ids.index(client_id)
    total, clients = len(queues), len(client_ids)
    mod = total % clients
    if total <= clients:
        size = 1
    elif mod > 0 and index < mod:
        size = total // clients + 1
    else:
        size = total // clients
    start = index * size if mod > 0 and index < mod else index * size + mod
    count = min(size, total - start)
    return [queues[(start + i) % total] for i in range(max(0, count))]


__all__ = ["AllocateStrategy", "allocate_averagely"]
