"""One fetch through a worker: decided by the pipeline, its strays sent home, written to ClickHouse,
its rejections sent to their topic; and the registry it is decided against, kept current.

Deciding runs on the event loop (the pipeline is pure; Ed25519 runs on threads); writing runs in a
thread (clickhouse-connect is synchronous). `streams.kafka.worker` calls these in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import TP

from streams.clickhouse.registry_store import read_registry, registry_version
from streams.clickhouse.sink import ClickHouseSink
from streams.core.batch import Batch
from streams.core.pipeline import Message, Processor
from streams.core.placement import forwarded_from
from streams.core.registry import Registry
from streams.kafka.forward import Forwarder
from streams.kafka.metrics import WorkerMetrics

log = logging.getLogger("tally.worker")

REGISTRY_CHECK_S = 2.0


def _malloc_trim() -> Callable[[], object]:
    """glibc keeps memory freed by the batch thread in its own arena instead of returning it to the
    system: trimming after each batch keeps a worker's RSS near what it uses. A no-op where the C
    library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX: two arenas, not eight per core
        return lambda: libc.malloc_trim(0)
    except (OSError, AttributeError):
        return lambda: None


release_memory = _malloc_trim()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """CPython's cyclic collector runs after every 700 new containers, and, as a batch's objects
    live until it is written, over ever older generations: a five-ballot batch of 5,000 events
    builds ~5,000 vote dicts and ~110,000 row lists, and collecting cost more than the work
    (offline, per event: decide 146 -> 112 us, totals rows 140 -> 22 us; RESULTS). What a batch
    builds has no cycles (reference counting frees it), so the collector waits until the batch is
    written."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def freeze_long_lived() -> None:
    """Move what lives now (the registry: 820k TPS and their keys) out of the collector's sight, so
    a full collection does not walk it again and again; done after each registry load."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass
class Decided:
    """One fetch, decided and waiting to be written."""

    batches: list[Batch]
    events: int
    started: float
    decided: float
    forwarded: list[asyncio.Future]  # the copies sent home: acked only once the broker has them all


class RegistryCache:
    """The registry as last loaded into ClickHouse; re-read when `tally registry load` ran again."""

    def __init__(self, sink: ClickHouseSink) -> None:
        self.sink = sink
        self.version = -1
        self.registry: Registry | None = None
        self.checked = 0.0

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.checked < REGISTRY_CHECK_S:
            return
        self.checked = now
        version = self.sink.call("registry version", registry_version)
        if version != self.version:
            self.registry = self.sink.call("registry", read_registry)
            self.version = version
            freeze_long_lived()
            log.info("registry loaded: %d TPS, version %d", len(self.registry.dpt), version)

    def get(self) -> Registry | None:
        return self.registry


class Batches:
    """Decide a fetch (`decide`), then write it (`write`), for the partitions whose leases are
    held."""

    def __init__(
        self,
        processor: Processor,
        registry: RegistryCache,
        sink: ClickHouseSink,
        forwarder: Forwarder,
        rejected: faust.TopicT,
        metrics: WorkerMetrics,
    ) -> None:
        self.processor = processor
        self.registry = registry
        self.sink = sink
        self.forwarder = forwarder
        self.rejected = rejected
        self.metrics = metrics
        self.partitions = 0  # the topic's partition count, as recorded in ClickHouse (topic_layout)

    async def decide(
        self, records: Mapping[TP, Sequence[Any]], leases: Mapping[int, str]
    ) -> Decided:
        now = time.time()
        started = time.perf_counter()
        await asyncio.to_thread(self.registry.refresh)
        batches = []
        for tp, fetched in records.items():
            # leases are taken for every assigned partition: a bug, so do not ack
            if tp.partition not in leases:
                raise RuntimeError(f"events of partition {tp.partition} arrived without a lease")
            messages = [message_of(r, now) for r in fetched]
            batches.append(
                self.processor.process(tp.topic, tp.partition, messages, self.partitions)
            )
        # Records off their home partition go there now; their offsets are acked with the batch's,
        # once the broker has every copy (`write`).
        forwarded = []
        for batch in batches:
            forwarded += await self.forwarder.send(batch.topic, batch.partition, batch.forward)
            self.metrics.forwarded(batch.partition, len(batch.forward))
        decided = Decided(
            batches, sum(map(len, records.values())), started, time.perf_counter(), forwarded
        )
        self.metrics.batch_events.observe(decided.events)
        self.metrics.decide_seconds.observe(decided.decided - started)
        return decided

    async def write(
        self, decided: Decided, owners: dict[int, str], before: list[asyncio.Task]
    ) -> bool:
        await asyncio.gather(*before)  # one write at a time, in the order decided
        queued = time.perf_counter()
        await asyncio.to_thread(self.sink.write_all, decided.batches, owners)
        # raises if the broker refused a copy: nothing is acked
        await asyncio.gather(*decided.forwarded)
        written = time.perf_counter()
        decisions = (row for batch in decided.batches for row in batch.decisions)
        self.metrics.written(decisions, self.sink.insert_seconds, time.time())
        rejections = [row for batch in decided.batches for row in batch.rejections]
        partitions = len(decided.batches)
        del decided.batches[:]  # the rows are written: free them before the trim below
        release_memory()
        for row in rejections:
            fields = row._asdict()
            fields["partition"], fields["offset"] = (
                fields.pop("src_partition"),
                fields.pop("src_offset"),
            )
            await self.rejected.send(
                key=(row.tps or row.kafka_key or "").encode(), value=orjson.dumps(fields)
            )
        log.info(
            "batch: %d events of %d partitions in %.0f ms (decide %.0f, write %.0f after %.0f "
            "queued; inserts %s); "
            "decisions so far %s; forwarded home so far %d",
            decided.events,
            partitions,
            (time.perf_counter() - decided.started) * 1000,
            (decided.decided - decided.started) * 1000,
            (written - queued) * 1000,
            (queued - decided.decided) * 1000,
            " ".join(
                f"{table} {1000 * seconds:.0f}"
                for table, seconds in self.sink.insert_seconds.items()
            ),
            self.processor.counts,
            sum(self.forwarder.sent.values()),
        )
        return True


def message_of(record: Any, now: float) -> Message:
    """A fetched record as the pipeline reads it: no timestamp is "now", no key is empty."""
    return Message(
        record.offset,
        record.value or b"",
        record.timestamp / 1000.0 if record.timestamp is not None else now,
        record.key if record.key is not None else b"",
        forwarded_from(record.headers) if record.headers else "",
        now,
    )
