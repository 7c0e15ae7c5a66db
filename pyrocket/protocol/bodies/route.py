"""Route bodies the NameServer hands out: a topic's route (GET_ROUTEINFO_BY_TOPIC)
and the cluster map (GET_BROKER_CLUSTER_INFO).

Every map and set in them is written in the order the caller's mapping
iterates; the NameServer keeps its tables in ``JavaHashMap``/``JavaHashSet``
with Java's capacities, so handing them over as they are gives Java's bytes.
Broker ids are ``Long`` keys, written bare (``{0:"127.0.0.1:10911"}``).

Besides the beans, the NameServer's fast path lives here: it answers from
plain tables (tuples of names and numbers) and caches parts of the encoded
bytes, so :meth:`TopicRouteData.encode_head`, :meth:`TopicRouteData.encode_tail`,
:meth:`TopicRouteData.join_encoded` and :meth:`ClusterInfo.encode_tables`
build the exact bytes :meth:`Bean.encode` writes for the same values, without
building the beans. Tests hold the two paths equal.

A route encodes with its properties in name order, ``brokerDatas``,
``filterServerTable``, ``orderTopicConf``, ``queueDatas``: the head (the
broker part, shared by every topic the same brokers hold) and the tail (the
queue part, shared by every topic with the same queue data) are encoded
apart, and ``orderTopicConf``, when there is one, goes between them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pyrocket.protocol.bodies._bean import INT, LONG, STR, Bean, bean, list_of, map_of, prop
from pyrocket.protocol.fastjson import quote

#: MixAll.MASTER_ID: the broker id of a master.
MASTER_ID = 0

QueueNums = tuple[int, int, int, int]
"""A topic's queue data on one broker, without the broker name:
(readQueueNums, writeQueueNums, perm, topicSynFlag)."""

QueueRow = tuple[str, QueueNums]
"""One :class:`QueueData` as a plain row: (broker name, queue numbers)."""

BrokerRow = tuple[str | None, str | None, Mapping[int, str]]
"""One :class:`BrokerData` as a plain row: (cluster, broker name, addresses
by broker id, in the order they are to be written)."""


@dataclass(frozen=True, slots=True)
class QueueData(Bean):
    """A topic's queues on one broker (by broker name)."""

    broker_name: str | None = prop("brokerName", STR)
    read_queue_nums: int = prop("readQueueNums", INT, default=0)
    write_queue_nums: int = prop("writeQueueNums", INT, default=0)
    perm: int = prop("perm", INT, default=0)
    topic_syn_flag: int = prop("topicSynFlag", INT, default=0)

    @staticmethod
    def row_text(row: QueueRow) -> str:
        """Java's ``QueueData.toString`` of a row, as the NameServer logs it."""
        broker_name, (read, write, perm, flag) = row
        return (
            f"QueueData [brokerName={broker_name}, readQueueNums={read}, "
            f"writeQueueNums={write}, perm={perm}, topicSynFlag={flag}]"
        )


@dataclass(frozen=True, slots=True)
class BrokerData(Bean):
    """One broker name's addresses by broker id (0 is the master)."""

    cluster: str | None = prop("cluster", STR)
    broker_name: str | None = prop("brokerName", STR)
    broker_addrs: Mapping[int, str] | None = prop("brokerAddrs", map_of(LONG, STR))

    def master_addr(self) -> str | None:
        """The master's address, if the master is registered."""
        return None if self.broker_addrs is None else self.broker_addrs.get(MASTER_ID)


@dataclass(frozen=True, slots=True)
class TopicRouteData(Bean):
    """GET_ROUTEINFO_BY_TOPIC's answer. Java's default instance has every
    field null; the NameServer fills all but ``orderTopicConf``."""

    order_topic_conf: str | None = prop("orderTopicConf", STR)
    queue_datas: tuple[QueueData, ...] | None = prop("queueDatas", list_of(bean(QueueData)))
    broker_datas: tuple[BrokerData, ...] | None = prop("brokerDatas", list_of(bean(BrokerData)))
    filter_server_table: Mapping[str, tuple[str, ...]] | None = prop(
        "filterServerTable", map_of(STR, list_of(STR))
    )

    @staticmethod
    def encode_head(
        broker_datas: Iterable[BrokerRow],
        filter_server_table: Mapping[str, Sequence[str] | None],
    ) -> bytes:
        """The encoded route up to ``orderTopicConf``: the opening brace,
        ``brokerDatas`` and ``filterServerTable`` (None values are left out,
        as fastjson leaves out null map values). Finish it with
        :meth:`join_encoded`."""
        out = ['{"brokerDatas":[']
        separator = ""
        for row in broker_datas:
            out.append(separator)
            separator = ","
            _write_broker(row, out)
        out.append('],"filterServerTable":{')
        separator = ""
        for addr, servers in filter_server_table.items():
            if servers is not None:
                out.append(f"{separator}{quote(addr)}:[{','.join(map(quote, servers))}]")
                separator = ","
        out.append("}")
        return "".join(out).encode("utf-8", "replace")

    @staticmethod
    def encode_tail(queue_datas: Iterable[QueueRow]) -> bytes:
        """The encoded route from ``queueDatas`` to the closing brace."""
        rows = ",".join(
            f'{{"brokerName":{quote(name)},"perm":{perm},"readQueueNums":{read},'
            f'"topicSynFlag":{flag},"writeQueueNums":{write}}}'
            for name, (read, write, perm, flag) in queue_datas
        )
        return f',"queueDatas":[{rows}]}}'.encode("utf-8", "replace")

    @staticmethod
    def join_encoded(head: bytes, tail: bytes, order_topic_conf: str | None = None) -> bytes:
        """The whole route from a head and a tail, with ``orderTopicConf``
        between them unless it is None."""
        if order_topic_conf is None:
            return head + tail
        conf = quote(order_topic_conf).encode("utf-8", "replace")
        return b"".join((head, b',"orderTopicConf":', conf, tail))


@dataclass(frozen=True, slots=True)
class ClusterInfo(Bean):
    """GET_BROKER_CLUSTER_INFO's answer: brokers by name, broker names by cluster."""

    broker_addr_table: Mapping[str, BrokerData] | None = prop(
        "brokerAddrTable", map_of(STR, bean(BrokerData))
    )
    # A broker that registered without a name leaves null in its cluster's set.
    cluster_addr_table: Mapping[str, tuple[str | None, ...]] | None = prop(
        "clusterAddrTable", map_of(STR, list_of(STR, nullable=True))
    )

    @staticmethod
    def encode_tables(
        broker_addr_table: Iterable[tuple[str, BrokerRow]],
        cluster_addr_table: Iterable[tuple[str, Iterable[str | None]]],
    ) -> bytes:
        """The encoded cluster map from (broker name, broker row) and
        (cluster, broker names) pairs, each written in the order given (one
        pair per key, as the map they come from has)."""
        out = ['{"brokerAddrTable":{']
        separator = ""
        for name, row in broker_addr_table:
            out.append(f"{separator}{quote(name)}:")
            separator = ","
            _write_broker(row, out)
        out.append('},"clusterAddrTable":{')
        separator = ""
        for cluster, names in cluster_addr_table:
            listed = ",".join("null" if name is None else quote(name) for name in names)
            out.append(f"{separator}{quote(cluster)}:[{listed}]")
            separator = ","
        out.append("}}")
        return "".join(out).encode("utf-8", "replace")


def _write_broker(row: BrokerRow, out: list[str]) -> None:
    """Append a broker data row as :class:`BrokerData` encodes (null
    properties left out)."""
    cluster, broker_name, addrs = row
    listed = ",".join(f"{broker_id}:{quote(addr)}" for broker_id, addr in addrs.items())
    out.append(f'{{"brokerAddrs":{{{listed}}}')
    if broker_name is not None:
        out.append(f',"brokerName":{quote(broker_name)}')
    if cluster is not None:
        out.append(f',"cluster":{quote(cluster)}')
    out.append("}")


__all__ = [
    "MASTER_ID",
    "BrokerData",
    "BrokerRow",
    "ClusterInfo",
    "QueueData",
    "QueueNums",
    "QueueRow",
    "TopicRouteData",
]
