"""A worker's Prometheus metrics, served as text at `/metrics` (`tally worker --metrics-port N`).

What an operator asks on election night, as numbers a dashboard can plot and alert on: events by
decision and reason, lag per partition, batch sizes, write time per table, state held, memory, the
last successful write, and whether the broker and ClickHouse answer. Names follow Prometheus
conventions (`tally_..._total` counters, `_seconds`, base units). Each worker has its own registry,
so a test can run several in one process.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from streams.core.rows import DecisionRow

WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000)


class WorkerMetrics:
    def __init__(self) -> None:
        # Long because it is the list of what a worker exports, one declaration a metric.
        self.registry = registry = CollectorRegistry()
        # process_resident_memory_bytes, process_cpu_seconds_total, ..
        ProcessCollector(registry=registry)
        self.events = Counter(
            "tally_events",
            "Events decided and written, by decision (applied, duplicate, stale, conflict, "
            "rejected) and, for "
            "a rejection, its first reason code",
            ["decision", "reason"],
            registry=registry,
        )
        self.lag = Gauge(
            "tally_consumer_lag",
            "Events of a partition the group has not committed",
            ["partition"],
            registry=registry,
        )
        self.batch_events = Histogram(
            "tally_batch_events", "Events in one fetch", buckets=BATCH_BUCKETS, registry=registry
        )
        self.decide_seconds = Histogram(
            "tally_decide_seconds",
            "Time to decide one fetch",
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.write_seconds = Histogram(
            "tally_write_seconds",
            "Time of one insert, by table",
            ["table"],
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.state_keys = Gauge(
            "tally_state_keys",
            "(ballot, TPS) keys whose applied tally this worker holds",
            registry=registry,
        )
        self.partitions = Gauge(
            "tally_partitions_owned", "Partitions this worker holds the lease of", registry=registry
        )
        self.last_write = Gauge(
            "tally_last_write_timestamp_seconds",
            "When this worker last wrote a batch (Unix time)",
            registry=registry,
        )
        self.broker_up = Gauge(
            "tally_broker_up",
            "1 if the broker answered the last lag poll, else 0",
            registry=registry,
        )
        self.broker_epoch = Gauge(
            "tally_broker_epoch",
            "Incarnation of the submissions topic: rises when the broker restarted empty",
            registry=registry,
        )
        self.clickhouse_up = Gauge(
            "tally_clickhouse_up",
            "1 if ClickHouse took the last statement, else 0",
            registry=registry,
        )
        self.forwarded_records = Counter(
            "tally_forwarded",
            "Records found off their TPS's home partition and forwarded there, by the partition "
            "they arrived on",
            ["partition"],
            registry=registry,
        )
        self.stalled_offset = Gauge(
            "tally_partition_stalled_offset",
            "Offset a partition waits at because its records cannot be read (a missing codec, a "
            "corrupt batch); "
            "-1 once it reads again",
            ["partition"],
            registry=registry,
        )
        self.stalled_partitions = Gauge(
            "tally_partitions_stalled",
            "Partitions of this worker that wait on a batch they cannot read",
            registry=registry,
        )

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics on a thread of its own (prometheus_client's server)."""
        start_http_server(port, address, registry=self.registry)

    def written(
        self, decisions: Iterable[DecisionRow], inserts: Mapping[str, float], at: float
    ) -> None:
        """Count a written batch: its decision rows (by decision and first reason code) and insert
        times."""
        for (decision, reason), n in Tally(
            (row.decision, row.reasons[0] if row.reasons else "") for row in decisions
        ).items():
            self.events.labels(decision, reason).inc(n)
        for table, seconds in inserts.items():
            self.write_seconds.labels(table).observe(seconds)
        self.last_write.set(at)

    def lags(self, offsets: Mapping[int, tuple[int, int]]) -> None:
        for partition, (end, committed) in offsets.items():
            self.lag.labels(str(partition)).set(max(0, end - committed))

    def forwarded(self, partition: int, records: int) -> None:
        if records:
            self.forwarded_records.labels(str(partition)).inc(records)

    def stalled(self, stalls: Mapping[int, tuple[int, str, float]]) -> None:
        """The partitions that wait now, and -1 for those that waited before and read again."""
        for partition, (offset, _, _) in stalls.items():
            self.stalled_offset.labels(str(partition)).set(offset)
        for labels in list(self.stalled_offset._metrics):  # noqa: SLF001 - the partitions seen so far
            if int(labels[0]) not in stalls:
                self.stalled_offset.labels(*labels).set(-1)
        self.stalled_partitions.set(len(stalls))
