"""The faust worker: consume `tally.submissions`, run each partition's run of events through the
pipeline, write the batch to ClickHouse, and only then let faust ack (and later commit) the offsets.

Records come from faust's consumer in bulk (`streams.kafka.bulk`), one fetch at a time, not through an
agent's per-message stream. All decisions live in `pipeline.Processor`; ClickHouse I/O runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
from faust.types import TP

from streams.clickhouse.client import connect
from streams.clickhouse.registry_store import read_registry, registry_version
from streams.clickhouse.sink import ClickHouseSink, Fenced
from streams.core.batch import Batch
from streams.core.pipeline import Message, Processor
from streams.core.placement import forwarded_from
from streams.core.registry import Registry
from streams.embedded.servers import kafka_bootstrap
from streams.kafka.auth import faust_options, kafka_options
from streams.kafka.bulk import BulkApp
from streams.kafka.epochs import changed_partitions, current_epoch, last_decided, next_epoch
from streams.kafka.forward import Forwarder
from streams.kafka.logs import REMIND_S, logging_config
from streams.kafka.metrics import WorkerMetrics
from streams.kafka.produce import partition_count, partition_lag
from streams.kafka.stalls import Stalls
from streams.kafka.verify_threads import ThreadVerifier
from streams.settings import REJECTED, SUBMISSIONS, Settings

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
    live until it is written, over ever older generations: a five-ballot batch of 5,000 events builds
    ~5,000 vote dicts and ~110,000 row lists, and collecting cost more than the work (offline, per
    event: decide 146 -> 112 us, totals rows 140 -> 22 us; RESULTS). What a batch builds has no
    cycles (reference counting frees it), so the collector waits until the batch is written."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def freeze_long_lived() -> None:
    """Move what lives now (the registry: 820k TPS and their keys) out of the collector's sight, so a
    full collection does not walk it again and again; done after each registry load."""
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


LAG_POLL_S = 10.0  # how often a worker reads the group's lag (and so whether the broker answers)
STALLS_REPORT_S = 2.0  # how often a worker tells ClickHouse which of its partitions wait (`tally status`)


def create_app(settings: Settings, metrics: WorkerMetrics | None = None) -> faust.App:
    timeout = settings.rebalance_timeout_s
    datadir = settings.data_dir / "faust" / settings.group_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust makes the last level only
    app = BulkApp(
        settings.group_id,
        broker=f"kafka://{kafka_bootstrap(settings)}",
        store="memory://",
        topic_partitions=settings.partitions,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=timeout,
        broker_session_timeout=max(timeout * 2, 6.0),
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.batch_size,
        web_enabled=False,
        # faust keeps its (unused, memory store) table data here; its default is the current directory.
        datadir=str(datadir),
        producer_linger=0.005,
        **faust_options(settings),
    )

    def raw_topic(name: str) -> faust.TopicT:  # bytes in, bytes out: decoding is the pipeline's job
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    submissions, rejected = raw_topic(SUBMISSIONS), raw_topic(REJECTED)

    metrics = metrics or WorkerMetrics()
    app.stalls = stalls = Stalls()
    forwarder = Forwarder(kafka_bootstrap(settings), kafka_options(settings))
    layout: list[int] = []  # the topic's partition count, as recorded in ClickHouse (topic_layout)
    sink = ClickHouseSink(
        connect(settings),
        deadline_s=settings.insert_deadline_s,
        receive_timeout_s=settings.receive_timeout_s,
        cluster=settings.cluster,
    )
    registry = RegistryCache(sink)
    processor = Processor(registry.get, settings.require_signatures, settings.log, ThreadVerifier(settings.verify_threads))
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    assignments = itertools.count(1)
    leases: dict[int, str] = {}  # partition -> owner token this worker writes under
    # Held while a fetch is decided. The write it starts goes on in `writes` while the next fetch is
    # decided; a rebalance takes the lock and waits for every write, so no batch straddles one:
    # otherwise a batch fenced by the new lease would still be acked by faust, and lost.
    in_flight = asyncio.Lock()
    writes: list[asyncio.Task] = []  # at most two: the one in ClickHouse and the next, queued behind it

    async def settled() -> None:
        """Wait for every write started so far (the caller holds `in_flight`, so none starts meanwhile)."""
        while writes:
            await asyncio.gather(*writes, return_exceptions=True)
            writes[:] = [w for w in writes if not w.done()]

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set, **_: object) -> None:
        async with in_flight:  # the batches being written finish under the leases they were decided with
            await settled()
        topic = submissions.get_topic_name()
        handed = {tp.partition: leases[tp.partition] for tp in revoked if tp.topic == topic and tp.partition in leases}
        # Every write has returned: release the leases, so the next owner need not wait out our inserts.
        with contextlib.suppress(Exception):  # not released: the next owner waits, which is only slower
            await asyncio.wait_for(asyncio.to_thread(sink.release_leases, topic, handed), 5)
        for partition in handed:
            leases.pop(partition, None)
        stalls.forget(set(handed))
        processor.forget()  # another worker may move these keys on; re-read them at the next assignment

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set, **_: object) -> None:
        # Take each partition's lease before reading its events: from now on a previous owner's
        # writes are refused, and our state, read after this, holds all it wrote before.
        token = f"{worker_id}#{next(assignments)}"
        async with in_flight:
            await settled()
            await take_leases(assigned, token)
        log.info("leases taken for partitions %s as %s; state of %d keys loaded", sorted(leases), token, len(processor.state))

    # Read when scraped: they stay true while a write waits for ClickHouse.
    metrics.clickhouse_up.set_function(lambda: float(sink.up))
    metrics.state_keys.set_function(lambda: len(processor.state))
    metrics.partitions.set_function(lambda: len(leases))
    broker_down_since: list[float] = []  # monotonic time of the first failed poll of an outage

    @app.timer(LAG_POLL_S, on_leader=False)
    async def poll_lag() -> None:
        """Lag per partition for /metrics, and whether the broker answers: one line when it stops
        answering and one when it is back (aiokafka's own complaints are held back meanwhile)."""
        topic = submissions.get_topic_name()
        try:
            offsets = await asyncio.wait_for(
                partition_lag(kafka_bootstrap(settings), settings.group_id, topic, kafka_options(settings)), LAG_POLL_S / 2
            )
        except Exception as exc:  # noqa: BLE001 - the broker away is what this poll is for
            metrics.broker_up.set(0)
            broker_down_since.append(time.monotonic())
            if len(broker_down_since) == 1:
                log.warning("the broker does not answer (%s); nothing is acked meanwhile", type(exc).__name__)
            elif len(broker_down_since) % round(REMIND_S / LAG_POLL_S) == 1:  # a reminder every 30 s
                away = broker_down_since[-1] - broker_down_since[0]
                log.warning("the broker still does not answer after %.0f s (%d failed polls)", away, len(broker_down_since))
            return
        metrics.broker_up.set(1)
        metrics.lags(offsets)
        if broker_down_since:
            away, polls = time.monotonic() - broker_down_since[0], len(broker_down_since)
            broker_down_since.clear()
            log.warning("the broker answers again after %.0f s and %d failed polls", away, polls)

    reported: dict[int, tuple[int, str, float]] = {}  # the stalls ClickHouse was last told of

    @app.timer(STALLS_REPORT_S, on_leader=False)
    async def report_stalls() -> None:
        """Partitions that wait on a batch they cannot read, for `tally status` and the metrics."""
        now = stalls.snapshot()
        metrics.stalled(now)
        changed = {p: now.get(p, (-1, "", 0.0)) for p in set(now) | set(reported) if now.get(p) != reported.get(p)}
        if changed:
            topic = submissions.get_topic_name()
            rows = [(topic, p, offset, reason, worker_id) for p, (offset, reason, _) in sorted(changed.items())]
            with contextlib.suppress(Exception):  # ClickHouse away: told at the next report
                await asyncio.wait_for(asyncio.to_thread(sink.note_stalls, rows), 10)
                reported.clear()
                reported.update(now)

    async def take_leases(assigned: set, token: str) -> None:
        processor.forget()
        topic = submissions.get_topic_name()
        await check_layout(topic)
        mine = sorted(tp.partition for tp in assigned if tp.topic == topic)
        unreleased: dict[int, str] = {}
        for partition in mine:
            before = await asyncio.to_thread(sink.acquire_lease, topic, partition, token)
            leases[partition] = token
            if sink.unreleased(before, token):
                unreleased[partition] = before
        if unreleased:
            # Their owners stopped without handing them on (a crash, or a stall past the session
            # timeout): an insert of theirs that passed its lease check before ours may still land.
            # Wait until none of theirs runs on the server; it ends any insert at its deadline (docs/exactly-once.md).
            waited = await asyncio.to_thread(sink.wait_out, set(unreleased.values()))
            log.warning(
                "partitions %s taken over from %s without a release: waited %.1f s (at most %.0f) for their inserts "
                "in flight to land or end before reading state",
                sorted(unreleased),
                ", ".join(sorted(set(unreleased.values()))),
                waited,
                sink.takeover_wait_s,
            )
        for partition in mine:
            # In a thread, read page by page into the packed state: never the whole partition at once.
            await asyncio.to_thread(lambda p=partition: processor.preload(p, *sink.load_partition(p)))
        await check_epoch(topic)

    async def check_layout(topic: str) -> None:
        """Homes are computed with the topic's partition count: counting on with another count than the
        one the night began with would give TPS new homes without their state, and count them again."""
        count = app.consumer.topic_partitions(topic) or await partition_count(
            kafka_bootstrap(settings), topic, kafka_options(settings)
        )
        recorded = await asyncio.to_thread(sink.record_layout, topic, count)
        if recorded != count:
            log.critical(
                "%s has %d partitions, but its tallies were placed and decided on %d: a TPS's home partition depends on "
                "the count, so counting on would decide TPS without their state. Restore the topic's %d partitions (or "
                "count this night into a new database). Exiting without commit.",
                topic,
                count,
                recorded,
                recorded,
            )
            os._exit(78)
        layout[:] = [count]

    async def check_epoch(topic: str) -> None:
        """Is the broker's log still the one ClickHouse decided on? (`streams.kafka.epochs`)"""
        epoch = await asyncio.to_thread(current_epoch, sink, topic)
        decided = await asyncio.to_thread(last_decided, sink, list(leases), epoch)
        try:
            changed = await asyncio.wait_for(
                changed_partitions(kafka_bootstrap(settings), topic, decided, kafka_options(settings)), 30
            )
        except Exception as exc:  # noqa: BLE001 - the group just assigned us, so the broker answers; if not, say so
            log.error(
                "could not check whether the broker restarted empty (%s: %s); counting on as epoch %d",
                type(exc).__name__,
                exc,
                epoch,
            )
            changed = {}
        if changed:
            reason = "; ".join(f"partition {p}: {why}" for p, why in sorted(changed.items()))
            log.critical(
                "THE BROKER RESTARTED EMPTY (%s). Events it held and had not delivered are gone: resend them from the "
                "gateways' logs (`tally produce`; events already counted are recognised by their ids and not counted "
                "again). The totals in ClickHouse stand. Counting on as epoch %d.",
                reason,
                epoch + 1,
            )
            epoch = await asyncio.to_thread(next_epoch, sink, topic, epoch, reason)
        sink.epoch = epoch
        metrics.broker_epoch.set(epoch)

    app.topics.add(submissions)  # subscribe: the records reach `handle_records`, not an agent

    async def handle_records(records: Mapping[TP, Sequence[Any]], generation: int) -> asyncio.Task | None:
        try:
            async with in_flight:
                if app.consumer_generation_id != generation:
                    return None  # fetched before a rebalance: faust seeks back; the owner reads them
                with collector_paused():
                    decided = await decide(records)
                # Written after the write before it, under the leases held now.
                task = asyncio.create_task(guarded(write(decided, dict(leases), list(writes))))
                writes.append(task)
                task.add_done_callback(lambda t: t in writes and writes.remove(t))
                return task
        except Exception:
            log.critical("unexpected error while deciding a batch; exiting without commit", exc_info=True)
            os._exit(70)

    app.records_handler = handle_records

    async def guarded(writing: Awaitable[bool]) -> bool:
        try:
            return await writing
        except Fenced as exc:
            # Only a worker that lost its group membership (stalled past the session timeout) gets
            # here. Its events must not be acked: stop now; the partition's owner replays them.
            log.critical("fenced: %s; exiting without commit", exc)
            os._exit(75)
        except Exception:
            # Never let anything ack events that were not written. Stop hard; a restart replays
            # from the last commit.
            log.critical("unexpected error while writing a batch; exiting without commit", exc_info=True)
            os._exit(70)

    async def decide(records: Mapping[TP, Sequence[Any]]) -> Decided:
        now = time.time()
        started = time.perf_counter()
        await asyncio.to_thread(registry.refresh)
        batches = []
        for tp, fetched in records.items():
            if tp.partition not in leases:  # leases are taken for every assigned partition: a bug, so do not ack
                raise RuntimeError(f"events of partition {tp.partition} arrived without a lease")
            messages = [
                Message(
                    r.offset,
                    r.value or b"",
                    r.timestamp / 1000.0 if r.timestamp is not None else now,
                    r.key if r.key is not None else b"",
                    forwarded_from(r.headers) if r.headers else "",
                    now,
                )
                for r in fetched
            ]
            batches.append(processor.process(tp.topic, tp.partition, messages, layout[0]))
        # Records off their home partition go there now; their offsets are acked with the batch's, once
        # the broker has every copy (`write`).
        forwarded = []
        for batch in batches:
            forwarded += await forwarder.send(batch.topic, batch.partition, batch.forward)
            metrics.forwarded(batch.partition, len(batch.forward))
        decided = Decided(batches, sum(map(len, records.values())), started, time.perf_counter(), forwarded)
        metrics.batch_events.observe(decided.events)
        metrics.decide_seconds.observe(decided.decided - started)
        return decided

    async def write(decided: Decided, owners: dict[int, str], before: list[asyncio.Task]) -> bool:
        await asyncio.gather(*before)  # one write at a time, in the order decided
        queued = time.perf_counter()
        await asyncio.to_thread(sink.write_all, decided.batches, owners)
        await asyncio.gather(*decided.forwarded)  # raises if the broker refused a copy: nothing is acked
        written = time.perf_counter()
        metrics.written((row for batch in decided.batches for row in batch.decisions), sink.insert_seconds, time.time())
        rejections = [row for batch in decided.batches for row in batch.rejections]
        partitions = len(decided.batches)
        del decided.batches[:]  # the rows are written: free them before the trim below
        release_memory()
        for row in rejections:
            await rejected.send(
                key=(row[1] or row[10] or "").encode(),
                value=orjson.dumps(
                    {
                        "event_id": row[0],
                        "tps": row[1],
                        "ballot": row[2],
                        "gateway": row[3],
                        "reasons": row[4],
                        "findings": row[5],
                        "payload": row[6],
                        "partition": row[7],
                        "offset": row[8],
                        "received_at": row[9],
                        "kafka_key": row[10],
                    }
                ),
            )
        log.info(
            "batch: %d events of %d partitions in %.0f ms (decide %.0f, write %.0f after %.0f queued; inserts %s); "
            "decisions so far %s; forwarded home so far %d",
            decided.events,
            partitions,
            (time.perf_counter() - decided.started) * 1000,
            (decided.decided - decided.started) * 1000,
            (written - queued) * 1000,
            (queued - decided.decided) * 1000,
            " ".join(f"{table} {1000 * seconds:.0f}" for table, seconds in sink.insert_seconds.items()),
            processor.counts,
            sum(forwarder.sent.values()),
        )
        return True

    return app


STOP_GRACE_S = 8.0  # a SIGTERM or SIGINT ends the process within this, whatever it waits for


class TallyWorker(faust.Worker):
    """faust's worker runner, with a deadline on stopping. With the broker or ClickHouse away, faust's
    stop waits on its consumer thread (and aiokafka's fetcher) or on a write that retries; measured: a
    worker still running 45 s after SIGTERM. Past the grace it exits at once. That is safe by design:
    offsets are committed only after their batch was written, so what was not written is read again by
    the partition's next owner, as after a crash (docs/exactly-once.md)."""

    def _schedule_shutdown(self, signal: Any) -> None:
        first = not self._signal_stop_time
        super()._schedule_shutdown(signal)
        if first:
            deadline = threading.Timer(STOP_GRACE_S, _stop_now)
            deadline.daemon = True
            deadline.start()


def _stop_now() -> None:
    log.warning(
        "still stopping after %.0f s (is the broker or ClickHouse away?): exiting now; nothing unwritten was committed",
        STOP_GRACE_S,
    )
    logging.shutdown()
    os._exit(0)


def run_worker(settings: Settings, loglevel: str = "info", log_format: str = "text", metrics_port: int | None = None) -> None:
    metrics = WorkerMetrics()
    if metrics_port is not None:
        metrics.serve(metrics_port)
    app = create_app(settings, metrics)
    worker = TallyWorker(
        app,
        loglevel=loglevel,
        quiet=True,
        logging_config=logging_config(loglevel, log_format),
        # mode would log each write to stderr as a record of its own: a traceback became one per character.
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
