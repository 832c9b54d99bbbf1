"""The server's Prometheus metrics: every one is defined here, and ``scrape`` renders them.

Metrics are facts about this process, like its log lines, so they live in one process-wide
registry (``REGISTRY``, not prometheus-client's global default) that the code recording a fact
updates in place: a counter or histogram costs a dictionary lookup and an addition under a lock.
What lives in the catalog or a connection pool (the append buffer, pool use) is read only when
``/metrics`` is scraped, through the sources the composition root registers (``watch_pool``,
``watch_append_buffer``), so an idle server does no work for metrics at all.

One server process per node: the figures are this process's (the catalog-wide gauges, the append
buffer's, are the same on every node). Datagrove runs one uvicorn process per node, so no
multi-process aggregation is needed; a deployment that ran several processes on one node would
have to scrape each on its own port.

Labels stay bounded: requests are counted by route *template* (``/v1/datasets/{dataset_id}``),
never by raw path, so ids never become label values.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

T = TypeVar("T")

# The ``_created`` series (a timestamp per counter and label set) double the scrape for nothing
# Prometheus' own queries use.
disable_created_metrics()

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # memory, CPU, open file descriptors of this process
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: The route label of a request that matched no route (a 404): one value, whatever the path.
UNMATCHED = "unmatched"
#: Where a middleware that answers without routing names the route template it serves.
ROUTE_KEY = "datagrove.route"

# Latencies from a cached metadata read (~1 ms) to a long import or query (minutes).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

HTTP_REQUESTS = Counter(
    "datagrove_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_SECONDS = Histogram(
    "datagrove_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
INGESTED_BYTES = Counter(
    "datagrove_ingested_bytes",
    "Bytes of CSV accepted into datasets (after decompression), by source: import, stream_part, append.",
    ["source"],
    registry=REGISTRY,
)
PARTS_CONVERTED = Counter(
    "datagrove_parts_converted",
    "CSV files converted to Parquet (imports and stream parts), by source and conversion: fast "
    "(the canonical-CSV fast path) or strict (the DuckDB conversion).",
    ["source", "conversion"],
    registry=REGISTRY,
)
COMMITS = Counter(
    "datagrove_commits",
    "Commits to datasets' tables, by kind (import, stream, fold, ...) and outcome (success, failure).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
COMMIT_SECONDS = Histogram(
    "datagrove_commit_duration_seconds",
    "Time a commit to a table takes (placing its files and the Iceberg commit), by kind.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUERIES = Counter(
    "datagrove_queries",
    "SQL queries over the query API, by outcome (success, failure, abandoned).",
    ["outcome"],
    registry=REGISTRY,
)
QUERY_SECONDS = Histogram(
    "datagrove_query_duration_seconds",
    "Time from a query's arrival to its last row sent (or its failure).",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "datagrove_job_runs",
    "Background job runs, by job (maintenance, connector_run, scheduler, append_fold, "
    "audit_retention) and outcome (success, failure, aborted).",
    ["job", "outcome"],
    registry=REGISTRY,
)


def route_of(scope: Mapping[str, Any]) -> str:
    """The template of the route that served the request (``UNMATCHED`` for none)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    named = scope.get(ROUTE_KEY)
    return named if isinstance(named, str) else UNMATCHED


#: Methods counted by name; any other (a client may send any token) counts as ``other``.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The labelled children per (method, route, status): ``labels()`` costs ~3 us a call (it checks and
# locks), twice per request; the key space is bounded by the routes, methods and statuses.
_served: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_served(scope: Mapping[str, Any], status: int, seconds: float) -> None:
    """Count one answered request and observe its latency, by route template (``RequestLog``)."""
    method = scope.get("method", "")
    key = (method if method in _METHODS else "other", route_of(scope), status)
    children = _served.get(key)
    if children is None:
        children = (
            HTTP_REQUESTS.labels(key[0], key[1], str(status)),
            HTTP_REQUEST_SECONDS.labels(key[0], key[1]),
        )
        _served[key] = children
    children[0].inc()
    children[1].observe(seconds)


def converted(source: str, *, fast: bool, csv_bytes: int) -> None:
    """One CSV file of ``csv_bytes`` converted to Parquet, by the fast path or the strict one."""
    INGESTED_BYTES.labels(source).inc(csv_bytes)
    PARTS_CONVERTED.labels(source, "fast" if fast else "strict").inc()


def job_ended(job: str, outcome: str) -> None:
    JOB_RUNS.labels(job, outcome).inc()


def query_ended(outcome: str, seconds: float) -> None:
    QUERIES.labels(outcome).inc()
    QUERY_SECONDS.observe(seconds)


@contextlib.contextmanager
def committing(kind: str) -> Iterator[None]:
    """Time the commit to a table in the ``with`` block; an exception out of it counts as failed."""
    started = time.monotonic()
    outcome = "failure"
    try:
        yield
        outcome = "success"
    finally:
        COMMITS.labels(kind, outcome).inc()
        COMMIT_SECONDS.labels(kind).observe(time.monotonic() - started)


@dataclass(frozen=True)
class PoolUse:
    """A connection pool's state: its configured size, connections lent out, idle in the pool,
    and opened beyond the size (overflow; negative while the pool is still filling)."""

    size: int
    checked_out: int
    idle: int
    overflow: int


@dataclass(frozen=True)
class AppendBuffer:
    """Buffered one-row appends not yet folded into tables, in the whole catalog."""

    rows: int
    oldest_age_seconds: float  # 0 when nothing waits


class _ScrapeTimeSources(Collector):
    """The gauges read when scraped. A source that fails is left out of that scrape (a metrics
    endpoint that fails because the catalog does would hide every other figure)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, Callable[[], PoolUse | None]] = {}
        self._append_buffer: Callable[[], AppendBuffer] | None = None
        self._append_queue: Callable[[], int] | None = None

    def watch_pool(self, name: str, use: Callable[[], PoolUse | None]) -> None:
        with self._lock:
            self._pools[name] = use

    def watch_append_buffer(self, buffer: Callable[[], AppendBuffer], queued: Callable[[], int]) -> None:
        with self._lock:
            self._append_buffer, self._append_queue = buffer, queued

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            pools = dict(self._pools)
            buffer, queued = self._append_buffer, self._append_queue
        yield from _pool_metrics(pools)
        if buffer is not None and queued is not None:
            yield from _append_metrics(buffer, queued)


def _pool_metrics(pools: dict[str, Callable[[], PoolUse | None]]) -> Iterator[Metric]:
    size = GaugeMetricFamily(
        "datagrove_catalog_pool_size", "Configured size of a catalog connection pool.", labels=["pool"]
    )
    connections = GaugeMetricFamily(
        "datagrove_catalog_pool_connections",
        "Catalog connections by pool and state: checked_out (in use) or idle.",
        labels=["pool", "state"],
    )
    overflow = GaugeMetricFamily(
        "datagrove_catalog_pool_overflow",
        "Catalog connections opened beyond the pool's size (negative while it fills).",
        labels=["pool"],
    )
    for name, read in sorted(pools.items()):
        use = _quietly(read)
        if use is None:
            continue
        size.add_metric([name], use.size)
        connections.add_metric([name, "checked_out"], use.checked_out)
        connections.add_metric([name, "idle"], use.idle)
        overflow.add_metric([name], use.overflow)
    yield from (size, connections, overflow)


def _append_metrics(buffer: Callable[[], AppendBuffer], queued: Callable[[], int]) -> Iterator[Metric]:
    queue_depth = _quietly(queued)
    if queue_depth is not None:
        yield GaugeMetricFamily(
            "datagrove_append_queue_requests",
            "One-row appends in this process waiting for their group commit.",
            value=queue_depth,
        )
    state = _quietly(buffer)
    if state is not None:
        yield GaugeMetricFamily(
            "datagrove_append_buffer_rows",
            "One-row appends buffered in the catalog and not yet folded into tables (every dataset).",
            value=state.rows,
        )
        yield GaugeMetricFamily(
            "datagrove_append_fold_lag_seconds",
            "Age of the oldest buffered one-row append not yet folded into its table (0: none waits).",
            value=state.oldest_age_seconds,
        )


def _quietly(read: Callable[[], T]) -> T | None:
    try:
        return read()
    except Exception:
        return None


_SOURCES = _ScrapeTimeSources()
REGISTRY.register(_SOURCES)
watch_pool = _SOURCES.watch_pool
watch_append_buffer = _SOURCES.watch_append_buffer


def scrape() -> tuple[bytes, str]:
    """Every metric in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
