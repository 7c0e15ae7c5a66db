"""The NameServer's Prometheus figures, served on ``metricsPort``.

- ``pyrocket_namesrv_brokers_alive``: brokers in the live table;
- ``pyrocket_namesrv_brokers``, ``pyrocket_namesrv_clusters``,
  ``pyrocket_namesrv_topics``: the route tables' sizes;
- ``pyrocket_namesrv_requests_total{code,request}``: requests answered, by
  request code (the codes the NameServer has a processor for);
- ``pyrocket_namesrv_route_query_seconds``: a histogram of the time
  GET_ROUTEINFO_BY_TOPIC takes to answer;
- the process collector's figures.

:meth:`NamesrvMetrics.instrument` wraps each registered processor so that it
counts its requests (one counter increment; the wrapper keeps the wrapped
handler's name and plain-function kind). The table sizes are read when a
scrape collects them, in the worker thread :mod:`pyrocket.metrics_http`
uses, from a snapshot taken on the event loop.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any, Final

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pyrocket.metrics_http import render_registry, serve_metrics
from pyrocket.namesrv.routeinfo import RouteInfoManager
from pyrocket.protocol.codes import RequestCode
from pyrocket.remoting import RemotingServer

#: Buckets (seconds) of the route query histogram: route answers are cached
#: bodies, so most take well under a millisecond.
ROUTE_QUERY_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
)


class _TablesCollector(Collector):
    def __init__(self, routes: RouteInfoManager) -> None:
        self._routes = routes
        self._sizes: tuple[int, int, int, int] = (0, 0, 0, 0)

    def refresh(self) -> None:
        routes = self._routes
        self._sizes = (
            len(routes.live_brokers),
            len(routes.broker_names()),
            len(routes.cluster_names()),
            len(routes),
        )

    def collect(self) -> Iterator[Metric]:
        alive, brokers, clusters, topics = self._sizes
        for name, help_text, value in (
            ("pyrocket_namesrv_brokers_alive", "Brokers in the live table", alive),
            ("pyrocket_namesrv_brokers", "Broker names in the broker table", brokers),
            ("pyrocket_namesrv_clusters", "Clusters in the cluster table", clusters),
            ("pyrocket_namesrv_topics", "Topics in the route table", topics),
        ):
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family


class NamesrvMetrics:
    """A NameServer's registry and the counters its processors update."""

    def __init__(self, routes: RouteInfoManager) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "pyrocket_namesrv_requests",
            "Requests the NameServer answered, by request code",
            ("code", "request"),
            registry=self.registry,
        )
        self.route_query_seconds = Histogram(
            "pyrocket_namesrv_route_query_seconds",
            "Time GET_ROUTEINFO_BY_TOPIC took to answer",
            buckets=ROUTE_QUERY_BUCKETS,
            registry=self.registry,
        )
        self._tables = _TablesCollector(routes)
        self.registry.register(self._tables)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def instrument(self, server: RemotingServer) -> None:
        """Count the requests of every processor registered on ``server``."""
        table = server.processors
        for code in sorted(table.codes()):
            registration = table.lookup(code)
            if registration is None:  # pragma: no cover - codes() lists registered ones
                continue
            wrapped = self._counting(code, registration.processor)
            table.register(
                code,
                wrapped,
                reject_request=registration.reject_request,
                ordered=registration.ordered,
            )

    def _counting(self, code: int, processor: Any) -> Any:
        try:
            name = RequestCode(code).name
        except ValueError:
            name = str(code)
        counter = self.requests.labels(str(code), name)
        if code == RequestCode.GET_ROUTEINFO_BY_TOPIC:
            histogram = self.route_query_seconds

            @functools.wraps(processor)
            def timed(conn: Any, request: Any) -> Any:
                counter.inc()
                begin = time.perf_counter()
                try:
                    return processor(conn, request)
                finally:
                    histogram.observe(time.perf_counter() - begin)

            return timed

        @functools.wraps(processor)
        def counted(conn: Any, request: Any) -> Any:
            counter.inc()
            return processor(conn, request)

        return counted

    async def refresh(self) -> None:
        self._tables.refresh()


async def serve_namesrv_metrics(
    metrics: NamesrvMetrics,
    host: str | None,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` on ``host:port`` until cancelled; reports the bound
    port. Raises OSError when the address cannot be bound."""
    render = render_registry(metrics.registry, metrics.refresh)
    await serve_metrics(host, port, render, task_status=task_status)


__all__ = ["ROUTE_QUERY_BUCKETS", "NamesrvMetrics", "serve_namesrv_metrics"]
