"""Loading a store's files and recovering a consistent state (Java's
``DefaultMessageStore.load`` / ``recover`` and the reput at start).

After a clean shutdown the last three commit-log files are verified; after a
crash (the ``abort`` file is still there) the commit log is replayed, every
record checked (size, magic code, CRC when ``checkCRCOnRecover``) and
re-indexed into its consume queue, from the earlier of where Java's
``recoverAbnormally`` would start and what pyrocket's checkpoint says was
flushed everywhere. Either way the commit log is cut after its last valid
record (the rest of that file zeroed), consume-queue entries pointing beyond
it are dropped, and messages beyond the furthest consume queue are indexed.
A consume queue with a damaged entry is cut there and rebuilt from the commit
log (Java cuts it and leaves it short, so its consumers skip the messages).
All of it blocks; the store runs it in a worker thread before it starts.
"""

from __future__ import annotations

import logging
import mmap
from collections.abc import Callable

from pyrocket.broker.store.checkpoint import StoreCheckpoint
from pyrocket.broker.store.commitlog import BLANK, DeliverTime, DispatchRequest, check_record
from pyrocket.broker.store.files import DataFile
from pyrocket.broker.store.index import is_indexed_type, message_keys
from pyrocket.broker.store.storefiles import StoreFiles
from pyrocket.protocol.message import MESSAGE_MAGIC_CODE, store_timestamp_position

log = logging.getLogger(__name__)


def load(files: StoreFiles) -> None:
    """Open the commit log, every consume queue and the checkpoint. Raises
    StoreError for files of the wrong size or missing in the middle."""
    files.commit_log.load()
    root = files.consume_queue_root
    if root.is_dir():
        for topic_dir in sorted(root.iterdir()):
            if not topic_dir.is_dir():
                continue
            for queue_dir in sorted(topic_dir.iterdir()):
                try:
                    queue_id = int(queue_dir.name)
                except ValueError:
                    continue
                files.new_queue(topic_dir.name, queue_id).load()
    files.checkpoint = StoreCheckpoint(files.root / "checkpoint")


def recover(files: StoreFiles, deliver_time: DeliverTime, *, normal: bool) -> None:
    """Bring commit log, consume queues and queue offsets into agreement."""
    max_physical_in_queues = -1
    log_end = files.commit_log.max_offset
    #: Where the commit log must be re-read from to rebuild damaged queues.
    rebuild_from: int | None = None
    for queue in files.all_queues():
        queue.recover(log_end)
        max_physical_in_queues = max(max_physical_in_queues, queue.max_physic_offset)
        if queue.damaged:
            point = max(queue.max_physic_offset, files.commit_log.min_offset, 0)
            rebuild_from = point if rebuild_from is None else min(rebuild_from, point)
    _recover_commit_log(
        files, deliver_time, max_physical_in_queues, normal=normal, rebuild_from=rebuild_from
    )
    # A crash replay already dispatched from rebuild_from on.
    _dispatch_behind(files, deliver_time, rebuild_from if normal else None)
    min_physical = files.commit_log.min_offset
    table: dict[tuple[str, int], int] = {}
    for queue in files.all_queues():
        table[(queue.topic, queue.queue_id)] = queue.max_offset_in_queue
        for data_file in queue.correct_min_offset(min_physical):
            data_file.destroy()
    files.topic_queue_table = table
    files.commit_log.flushed_where = files.commit_log.max_offset


def _recover_commit_log(
    files: StoreFiles,
    deliver_time: DeliverTime,
    max_physical_in_queues: int,
    *,
    normal: bool,
    rebuild_from: int | None,
) -> None:
    data_files = files.commit_log.files.files
    if not data_files:
        # No commit log: no consume-queue entry can point anywhere.
        for queue in list(files.all_queues()):
            queue.destroy()
        files.queues.clear()
        return
    start = data_files[max(0, len(data_files) - 3)].base
    if not normal:
        start = _abnormal_replay_start(files)
        if rebuild_from is not None:
            start = max(data_files[0].base, min(start, rebuild_from))
        log.warning(
            "store %s was not shut down cleanly: replaying the commit log from offset %d",
            files.root,
            start,
        )
    end = scan(files, start, deliver_time, dispatch=not normal)
    log.info("commit log recovered up to offset %d", end)
    files.commit_log.files.truncate(end)
    last = files.commit_log.files.last
    if last is not None:
        last.sync()
    if max_physical_in_queues >= end:
        for queue in files.all_queues():
            queue.truncate_dirty(end)
            for data_file in queue.files:
                data_file.sync()


def _abnormal_replay_start(files: StoreFiles) -> int:
    """Where to replay from after a crash: the earlier of Java's rule (the
    last file whose first message is not newer than the checkpoint's
    timestamps minus 3 s, else the first file) and what pyrocket's
    checkpoint says was flushed everywhere (which does not trust the clock)."""
    checkpoint = files.checkpoint
    assert checkpoint is not None
    data_files = files.commit_log.files.files
    start = data_files[0].base
    for data_file in reversed(data_files):
        if _matches_checkpoint(data_file, checkpoint):
            start = data_file.base
            break
    recorded = checkpoint.replay_offset
    if recorded is not None:
        start = min(start, max(data_files[0].base, recorded))
    return start


def _matches_checkpoint(data_file: DataFile, checkpoint: StoreCheckpoint) -> bool:
    """``isMappedFileMatchedRecover``."""
    head = data_file.read(0, 96)
    if len(head) < 96 or int.from_bytes(head[4:8], "big", signed=True) != MESSAGE_MAGIC_CODE:
        return False
    at = store_timestamp_position(int.from_bytes(head[36:40], "big", signed=True))
    stored = int.from_bytes(data_file.read(at, 8), "big", signed=True)
    return stored != 0 and stored <= checkpoint.min_timestamp


def scan(
    files: StoreFiles,
    start: int,
    deliver_time: DeliverTime,
    *,
    dispatch: bool,
    visit: Callable[[DispatchRequest], None] | None = None,
) -> int:
    """Validate records from ``start`` on, dispatching each to its consume
    queue when asked (or to ``visit`` when given); return the offset after
    the last valid record."""
    if visit is None and dispatch:
        visit = files.dispatch
    queue = files.commit_log.files
    data_file = queue.find(start)
    if data_file is None:
        return start
    position = start - data_file.base
    check_crc = files.config.check_crc_on_recover
    while True:
        with mmap.mmap(data_file.fd, data_file.size, access=mmap.ACCESS_READ) as view:
            while True:
                found = check_record(
                    view, position, data_file.base, check_crc=check_crc, deliver_time=deliver_time
                )
                if not isinstance(found, DispatchRequest):
                    break
                if visit is not None:
                    visit(found)
                position += found.size
        if found == BLANK:
            following = queue.find(data_file.end)
            if following is not None:
                data_file, position = following, 0
                continue
        return data_file.base + position


def _dispatch_behind(
    files: StoreFiles, deliver_time: DeliverTime, rebuild_from: int | None
) -> None:
    """Index what the commit log holds beyond the furthest consume queue
    (Java's reput from ``max(consume queue max physical offset)``), or from
    ``rebuild_from`` when a damaged queue needs it (the others skip what they
    already hold)."""
    minimum = files.commit_log.min_offset
    start = max([minimum, 0, *(queue.max_physic_offset for queue in files.all_queues())])
    if rebuild_from is not None:
        start = max(minimum, min(start, rebuild_from))
    if start < files.commit_log.max_offset:
        scan(files, start, deliver_time, dispatch=True)


def recover_index(files: StoreFiles, deliver_time: DeliverTime, *, normal: bool) -> None:
    """Load the index files (after a crash dropping those newer than the
    checkpoint's index timestamp, as Java) and index every message of the
    commit log after the last one they hold, so that no message is missing
    from the index whatever ``messageIndexSafe`` says."""
    index = files.index
    checkpoint = files.checkpoint
    if index is None or checkpoint is None:
        return
    index.load(normal, checkpoint.index_msg_timestamp)
    through = index.indexed_through
    minimum = files.commit_log.min_offset
    if minimum < 0 or files.commit_log.max_offset <= max(through, minimum):
        return
    start = max(minimum, through, 0)
    added = 0

    def visit(request: DispatchRequest) -> None:
        nonlocal added
        offset = request.commit_log_offset
        if offset < through or not is_indexed_type(request.sys_flag):
            return
        keys = message_keys(request.topic, request.properties)
        if offset == through:
            # The last message indexed may have had its keys split over a
            # kept file and a dropped one: add only the missing ones.
            keys = [key for key in keys if not index.holds(key, offset)]
        if keys:
            index.build(keys, offset, request.store_timestamp, blocking=True)
            added += 1

    # ``through`` is the start of a record (the last indexed): scan from there.
    scan(files, start, deliver_time, dispatch=False, visit=visit)
    if added:
        log.info("indexed %d messages the index files missed", added)
