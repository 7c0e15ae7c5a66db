"""Java's iteration order inside bodies: which hash maps and hash sets of
the typed bodies are Java hash-based collections (the ``_HASHED`` table), and
:func:`java_order`, which puts each in an order a Java one iterates in (by
bucket) so a re-encoded body can match the recorded bytes.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pyrocket.protocol.bodies import (
    Bean,
    BrokerData,
    ClusterInfo,
    ConsumerConnection,
    ConsumerData,
    ConsumerOffsetSerializeWrapper,
    ConsumeStats,
    DelayOffsetSerializeWrapper,
    GroupList,
    KVTable,
    LockBatchRequestBody,
    LockBatchResponseBody,
    SubscriptionData,
    SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper,
    TopicList,
    TopicRouteData,
    TopicStatsTable,
    UnlockBatchRequestBody,
)
from pyrocket.protocol.javahash import (
    MAXIMUM_CAPACITY,
    int_hash,
    long_hash,
    spread,
    string_hash,
    table_size_for,
)


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A Java hash-based collection inside a body: a map (``HashMap`` or
    ``ConcurrentHashMap``, which iterate alike: by bucket, the bucket being
    the low bits of the spread hash) or a ``HashSet``, with how its keys hash
    and, for maps of collections, what the values are."""

    java: str
    hasher: Callable[[Any], int]
    values: _Hashed | None = None


def _nullable(hasher: Callable[[Any], int]) -> Callable[[Any], int]:
    # Java's HashMap puts a null key in bucket 0.
    return lambda key: 0 if key is None else hasher(key)


_STRING: Final = _nullable(string_hash)
_MQ: Final = _nullable(lambda mq: mq.java_hash_code())

#: (bean, property) -> the Java collection behind it, for the bodies whose
#: Java type is a hash map or hash set with keys of a known hashCode. Lists,
#: TreeMaps, Hashtables (Properties) and sets of beans without a hashCode
#: (ProducerData, ConsumerData, Connection) are not listed: their order is
#: taken as recorded. One list is: a route's brokerDatas, which the NameServer
#: fills by walking a HashSet of broker names.
_HASHED: Final[dict[tuple[type[Bean], str], _Hashed]] = {
    (BrokerData, "brokerAddrs"): _Hashed("HashMap<Long,String>", long_hash),
    (TopicRouteData, "filterServerTable"): _Hashed("HashMap<String,List>", _STRING),
    # A list, filled by walking a fresh HashSet of the topic's broker names.
    (TopicRouteData, "brokerDatas"): _Hashed(
        "HashSet<String> of broker names", lambda bd: _STRING(bd.broker_name)
    ),
    (ClusterInfo, "brokerAddrTable"): _Hashed("HashMap<String,BrokerData>", _STRING),
    (ClusterInfo, "clusterAddrTable"): _Hashed(
        "HashMap<String,Set>", _STRING, _Hashed("HashSet<String>", _STRING)
    ),
    (KVTable, "table"): _Hashed("HashMap<String,String>", _STRING),
    (TopicList, "topicList"): _Hashed("HashSet<String>", _STRING),
    (GroupList, "groupList"): _Hashed("HashSet<String>", _STRING),
    (TopicConfigSerializeWrapper, "topicConfigTable"): _Hashed(
        "ConcurrentHashMap<String,TopicConfig>", _STRING
    ),
    (SubscriptionGroupWrapper, "subscriptionGroupTable"): _Hashed(
        "ConcurrentHashMap<String,SubscriptionGroupConfig>", _STRING
    ),
    (ConsumerOffsetSerializeWrapper, "offsetTable"): _Hashed(
        "ConcurrentHashMap<String,ConcurrentMap>",
        _STRING,
        _Hashed("ConcurrentHashMap<Integer,Long>", int_hash),
    ),
    (DelayOffsetSerializeWrapper, "offsetTable"): _Hashed(
        "ConcurrentHashMap<Integer,Long>", int_hash
    ),
    (TopicStatsTable, "offsetTable"): _Hashed("HashMap<MessageQueue,TopicOffset>", _MQ),
    (ConsumeStats, "offsetTable"): _Hashed("HashMap<MessageQueue,OffsetWrapper>", _MQ),
    (ConsumerConnection, "subscriptionTable"): _Hashed(
        "ConcurrentHashMap<String,SubscriptionData>", _STRING
    ),
    (ConsumerData, "subscriptionDataSet"): _Hashed(
        "HashSet<SubscriptionData>", lambda sd: sd.java_hash_code()
    ),
    (SubscriptionData, "tagsSet"): _Hashed("HashSet<String>", _STRING),
    (SubscriptionData, "codeSet"): _Hashed("HashSet<Integer>", int_hash),
    (LockBatchRequestBody, "mqSet"): _Hashed("HashSet<MessageQueue>", _MQ),
    (UnlockBatchRequestBody, "mqSet"): _Hashed("HashSet<MessageQueue>", _MQ),
    (LockBatchResponseBody, "lockOKMQSet"): _Hashed("HashSet<MessageQueue>", _MQ),
}


def java_order(value: Any, notes: list[str] | None = None, path: str = "body") -> Any:
    """``value`` (a decoded body) with every hash map and hash set whose Java
    type is known (see ``_HASHED``) put in an order a Java one iterates in.

    The recorded order is kept when it is one: sorted by bucket for some
    power-of-two table size at least the one its size needs at load factor
    0.75 (a table never shrinks, and within a bucket any insertion order
    may have happened). Otherwise the keys are sorted into the buckets of the
    smallest such table, which is not the recorded order, and ``notes`` gets
    a line naming the collection.
    """
    if not isinstance(value, Bean):
        return value
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(value):  # type: ignore[arg-type]
        wire = f.metadata.get("wire", f.name)
        item = getattr(value, f.name)
        if item is None:
            continue
        where = f"{path}.{wire}"
        rebuilt = _walk(item, _HASHED.get((type(value), wire)), notes, where)
        if rebuilt is not item:
            changes[f.name] = rebuilt
    return dataclasses.replace(value, **changes) if changes else value  # type: ignore[type-var]


def _walk(item: Any, hashed: _Hashed | None, notes: list[str] | None, where: str) -> Any:
    if isinstance(item, Bean):
        return java_order(item, notes, where)
    if isinstance(item, Mapping):
        values = hashed.values if hashed is not None else None
        walked = {k: _walk(v, values, notes, f"{where}[{k!r}]") for k, v in item.items()}
        if hashed is not None:
            keys = _bucket_order(list(walked), hashed, notes, where)
            return {k: walked[k] for k in keys}
        changed = any(walked[k] is not v for k, v in item.items())
        return walked if changed else item
    if isinstance(item, tuple):
        walked_items = [_walk(v, None, notes, f"{where}[{i}]") for i, v in enumerate(item)]
        if hashed is not None:
            return tuple(_bucket_order(walked_items, hashed, notes, where))
        changed = any(a is not b for a, b in zip(walked_items, item, strict=True))
        return tuple(walked_items) if changed else item
    return item


def _bucket_order(
    keys: list[Any], hashed: _Hashed, notes: list[str] | None, where: str
) -> list[Any]:
    spreads = [spread(hashed.hasher(key)) for key in keys]
    smallest = max(1, table_size_for(-(-len(keys) * 4 // 3)))
    size = smallest
    while size <= MAXIMUM_CAPACITY:
        mask = size - 1
        buckets = [s & mask for s in spreads]
        if all(a <= b for a, b in itertools.pairwise(buckets)):
            return keys
        size <<= 1
    if notes is not None:
        notes.append(f"{where}: no Java {hashed.java} iterates its {len(keys)} keys in this order")
    mask = smallest - 1
    order = sorted(range(len(keys)), key=lambda i: spreads[i] & mask)
    return [keys[i] for i in order]
