"""The faust worker: consume `tally.submissions`, run each partition's run of events through the
pipeline, write the batch to ClickHouse, and only then let faust ack (and later commit) the offsets.

Records come from faust's consumer in bulk (`streams.kafka.bulk`), one fetch at a time, not through
an agent's per-message stream. All decisions live in `pipeline.Processor`; a fetch's way through the
worker in `streams.kafka.batches`; the write queue, the leases, the broker's epoch and the watches
in modules of their own. `Counting` holds them; `create_app` wires it to faust's callbacks and
timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import faust
from faust.types import TP

from streams.clickhouse.client import connect
from streams.clickhouse.sink import ClickHouseSink
from streams.core.pipeline import Processor
from streams.embedded.servers import kafka_bootstrap
from streams.kafka.auth import faust_options, kafka_options
from streams.kafka.batches import Batches, RegistryCache, collector_paused
from streams.kafka.bulk import BulkApp
from streams.kafka.epochs import check_epoch
from streams.kafka.forward import Forwarder
from streams.kafka.leases import LayoutChanged, Leases
from streams.kafka.logs import REMIND_S, logging_config
from streams.kafka.metrics import WorkerMetrics
from streams.kafka.produce import partition_count, partition_lag
from streams.kafka.stalls import Stalls
from streams.kafka.verify_threads import ThreadVerifier
from streams.kafka.watch import BrokerWatch, StallReport
from streams.kafka.writes import EXIT_BUG, WriteQueue
from streams.settings import REJECTED, SUBMISSIONS, Settings

log = logging.getLogger("tally.worker")

LAG_POLL_S = 10.0  # how often a worker reads the group's lag (and so whether the broker answers)
STALLS_REPORT_S = (
    2.0  # how often a worker tells ClickHouse which of its partitions wait (`tally status`)
)
EXIT_LAYOUT = 78  # the topic's partition count changed: counting on would count TPS again


def faust_app(settings: Settings) -> BulkApp:
    """The consumer group's app: at-least-once, offsets committed by faust once acked (after
    writes)."""
    timeout = settings.rebalance_timeout_s
    datadir = settings.data_dir / "faust" / settings.group_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust makes the last level only
    return BulkApp(
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
        # faust keeps its (unused, memory store) table data here; its default is the current
        # directory.
        datadir=str(datadir),
        producer_linger=0.005,
        **faust_options(settings),
    )


def raw_topic(app: faust.App, settings: Settings, name: str) -> faust.TopicT:
    """Bytes in, bytes out: decoding is the pipeline's job."""
    return app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )


class Counting:
    """One worker's parts, and what faust calls them for: a rebalance (`revoked`, `assigned`), a
    fetch (`records`) and the timers (`poll_lag`, `report_stalls`)."""

    def __init__(self, app: BulkApp, settings: Settings, metrics: WorkerMetrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics
        self.submissions = raw_topic(app, settings, SUBMISSIONS)
        self.topic = self.submissions.get_topic_name()
        self.bootstrap, self.auth = kafka_bootstrap(settings), kafka_options(settings)
        self.stalls = Stalls()
        self.sink = ClickHouseSink(
            connect(settings),
            deadline_s=settings.insert_deadline_s,
            receive_timeout_s=settings.receive_timeout_s,
            cluster=settings.cluster,
        )
        registry = RegistryCache(self.sink)
        verifier = ThreadVerifier(settings.verify_threads)
        self.processor = Processor(
            registry.get, settings.require_signatures, settings.log, verifier
        )
        forwarder = Forwarder(self.bootstrap, self.auth)
        rejected = raw_topic(app, settings, REJECTED)
        self.batches = Batches(self.processor, registry, self.sink, forwarder, rejected, metrics)
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leases, self.queue = Leases(self.sink, self.worker), WriteQueue()
        self.broker, self.stall_report = BrokerWatch(LAG_POLL_S, REMIND_S), StallReport()

    async def revoked(self, app: faust.App, revoked: set, **_: object) -> None:
        # The batches being written finish under the leases they were decided with.
        async with self.queue.deciding:
            await self.queue.settled()
        partitions = {tp.partition for tp in revoked if tp.topic == self.topic}
        self.stalls.forget(await self.leases.release(self.topic, partitions))
        # Another worker may move these keys on; re-read them at the next assignment.
        self.processor.forget()

    async def assigned(self, app: faust.App, assigned: set, **_: object) -> None:
        # Take each partition's lease before reading its events: from now on a previous owner's
        # writes are refused, and our state, read after this, holds all it wrote before.
        token = self.leases.next_token()
        mine = {tp.partition for tp in assigned if tp.topic == self.topic}
        async with self.queue.deciding:
            await self.queue.settled()
            self.processor.forget()
            await self._check_layout()
            await self.leases.take(self.topic, mine, token)
            for partition in sorted(mine):
                # In a thread, read page by page into the packed state: never the whole partition
                # at once.
                await asyncio.to_thread(self._preload, partition)
            held = self.leases.held
            self.sink.epoch = await check_epoch(
                self.sink, self.bootstrap, self.topic, held, self.auth
            )
            self.metrics.broker_epoch.set(self.sink.epoch)
        log.info(
            "leases taken for partitions %s as %s; state of %d keys loaded",
            sorted(self.leases.held),
            token,
            len(self.processor.state),
        )

    async def _check_layout(self) -> None:
        count = self.app.consumer.topic_partitions(self.topic) or await partition_count(
            self.bootstrap, self.topic, self.auth
        )
        try:
            self.batches.partitions = await self.leases.check_layout(self.topic, count)
        except LayoutChanged as exc:
            log.critical("%s Exiting without commit.", exc)
            os._exit(EXIT_LAYOUT)

    def _preload(self, partition: int) -> None:
        self.processor.preload(partition, *self.sink.load_partition(partition))

    async def poll_lag(self) -> None:
        """Lag per partition for /metrics, and whether the broker answers."""
        lag = partition_lag(self.bootstrap, self.settings.group_id, self.topic, self.auth)
        try:
            offsets = await asyncio.wait_for(lag, LAG_POLL_S / 2)
        except Exception as exc:  # noqa: BLE001 - the broker away is what this poll is for
            self.metrics.broker_up.set(0)
            self.broker.failed(exc)
            return
        self.metrics.broker_up.set(1)
        self.metrics.lags(offsets)
        self.broker.answered()

    async def report_stalls(self) -> None:
        """Partitions that wait on a batch they cannot read, for `tally status` and the metrics."""
        now = self.stalls.snapshot()
        self.metrics.stalled(now)
        changed = self.stall_report.changes(now)
        if changed:
            rows = self.stall_report.rows(self.topic, self.worker, changed)
            with contextlib.suppress(Exception):  # ClickHouse away: told at the next report
                await asyncio.wait_for(asyncio.to_thread(self.sink.note_stalls, rows), 10)
                self.stall_report.taken(now)

    async def records(
        self, records: Mapping[TP, Sequence[Any]], generation: int
    ) -> asyncio.Task | None:
        try:
            async with self.queue.deciding:
                if self.app.consumer_generation_id != generation:
                    # Fetched before a rebalance: faust seeks back; the owner reads them.
                    return None
                with collector_paused():
                    decided = await self.batches.decide(records, self.leases.held)
                # Written after the write before it, under the leases held now.
                owners = dict(self.leases.held)
                return self.queue.start(lambda before: self.batches.write(decided, owners, before))
        except Exception:
            log.critical(
                "unexpected error while deciding a batch; exiting without commit", exc_info=True
            )
            os._exit(EXIT_BUG)


def create_app(settings: Settings, metrics: WorkerMetrics | None = None) -> faust.App:
    app = faust_app(settings)
    metrics = metrics or WorkerMetrics()
    counting = Counting(app, settings, metrics)
    app.stalls = counting.stalls
    app.on_partitions_revoked.connect(counting.revoked)
    app.on_partitions_assigned.connect(counting.assigned)
    app.timer(LAG_POLL_S, on_leader=False)(counting.poll_lag)
    app.timer(STALLS_REPORT_S, on_leader=False)(counting.report_stalls)
    # Read when scraped: they stay true while a write waits for ClickHouse.
    metrics.clickhouse_up.set_function(lambda: float(counting.sink.up))
    metrics.state_keys.set_function(lambda: len(counting.processor.state))
    metrics.partitions.set_function(lambda: len(counting.leases.held))
    app.topics.add(counting.submissions)  # subscribe: the records reach `records`, not an agent
    app.records_handler = counting.records
    return app


STOP_GRACE_S = 8.0  # a SIGTERM or SIGINT ends the process within this, whatever it waits for


class TallyWorker(faust.Worker):
    """faust's worker runner, with a deadline on stopping. With the broker or ClickHouse away,
    faust's stop waits on its consumer thread (and aiokafka's fetcher) or on a write that retries;
    measured: a worker still running 45 s after SIGTERM. Past the grace it exits at once. That is
    safe by design: offsets are committed only after their batch was written, so what was not
    written is read again by the partition's next owner, as after a crash (docs/exactly-once.md)."""

    def _schedule_shutdown(self, signal: Any) -> None:
        first = not self._signal_stop_time
        super()._schedule_shutdown(signal)
        if first:
            deadline = threading.Timer(STOP_GRACE_S, _stop_now)
            deadline.daemon = True
            deadline.start()


def _stop_now() -> None:
    log.warning(
        "still stopping after %.0f s (is the broker or ClickHouse away?): exiting now; nothing "
        "unwritten was committed",
        STOP_GRACE_S,
    )
    logging.shutdown()
    os._exit(0)


def run_worker(
    settings: Settings,
    loglevel: str = "info",
    log_format: str = "text",
    metrics_port: int | None = None,
) -> None:
    # Below the API and ClickHouse if the operator asks (Settings.worker_nice); the verify threads,
    # started later, inherit it.
    if settings.worker_nice:
        os.nice(settings.worker_nice)
    metrics = WorkerMetrics()
    if metrics_port is not None:
        metrics.serve(metrics_port)
    app = create_app(settings, metrics)
    worker = TallyWorker(
        app,
        loglevel=loglevel,
        quiet=True,
        logging_config=logging_config(loglevel, log_format),
        # mode would log each write to stderr as a record of its own: a traceback became one per
        # character.
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
