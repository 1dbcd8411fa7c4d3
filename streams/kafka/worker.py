"""The faust worker: consume `tally.submissions`, run each partition's run of events through the
pipeline, write the batch to ClickHouse, and only then let faust ack (and later commit) the offsets.

Records come from faust's consumer in bulk (`streams.kafka.bulk`), one fetch at a time, not through
an agent's per-message stream. All decisions live in `pipeline.Processor`; a fetch's way through the
worker in `streams.kafka.batches`; the write queue, the leases, the broker's epoch and the watches
in modules of their own. `create_app` wires them to faust's callbacks and timers."""

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


def create_app(settings: Settings, metrics: WorkerMetrics | None = None) -> faust.App:
    app = faust_app(settings)
    submissions, rejected = (
        raw_topic(app, settings, SUBMISSIONS),
        raw_topic(app, settings, REJECTED),
    )
    topic = submissions.get_topic_name()
    bootstrap, auth = kafka_bootstrap(settings), kafka_options(settings)
    metrics = metrics or WorkerMetrics()
    app.stalls = stalls = Stalls()
    sink = ClickHouseSink(
        connect(settings),
        deadline_s=settings.insert_deadline_s,
        receive_timeout_s=settings.receive_timeout_s,
        cluster=settings.cluster,
    )
    registry = RegistryCache(sink)
    verifier = ThreadVerifier(settings.verify_threads)
    processor = Processor(registry.get, settings.require_signatures, settings.log, verifier)
    batches = Batches(processor, registry, sink, Forwarder(bootstrap, auth), rejected, metrics)
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    leases, queue = Leases(sink, worker), WriteQueue()
    broker, stall_report = BrokerWatch(LAG_POLL_S, REMIND_S), StallReport()

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set, **_: object) -> None:
        async with (
            queue.deciding
        ):  # the batches being written finish under the leases they were decided with
            await queue.settled()
        handed = await leases.release(topic, {tp.partition for tp in revoked if tp.topic == topic})
        stalls.forget(handed)
        # another worker may move these keys on; re-read them at the next assignment
        processor.forget()

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set, **_: object) -> None:
        # Take each partition's lease before reading its events: from now on a previous owner's
        # writes are refused, and our state, read after this, holds all it wrote before.
        token = leases.next_token()
        mine = {tp.partition for tp in assigned if tp.topic == topic}
        async with queue.deciding:
            await queue.settled()
            processor.forget()
            count = app.consumer.topic_partitions(topic) or await partition_count(
                bootstrap, topic, auth
            )
            try:
                batches.partitions = await leases.check_layout(topic, count)
            except LayoutChanged as exc:
                log.critical("%s Exiting without commit.", exc)
                os._exit(EXIT_LAYOUT)
            await leases.take(topic, mine, token)
            for partition in sorted(mine):
                # In a thread, read page by page into the packed state: never the whole partition at
                # once.
                await asyncio.to_thread(
                    lambda p=partition: processor.preload(p, *sink.load_partition(p))
                )
            sink.epoch = await check_epoch(sink, bootstrap, topic, leases.held, auth)
            metrics.broker_epoch.set(sink.epoch)
        keys = len(processor.state)
        log.info(
            "leases taken for partitions %s as %s; state of %d keys loaded",
            sorted(leases.held),
            token,
            keys,
        )

    # Read when scraped: they stay true while a write waits for ClickHouse.
    metrics.clickhouse_up.set_function(lambda: float(sink.up))
    metrics.state_keys.set_function(lambda: len(processor.state))
    metrics.partitions.set_function(lambda: len(leases.held))

    @app.timer(LAG_POLL_S, on_leader=False)
    async def poll_lag() -> None:
        """Lag per partition for /metrics, and whether the broker answers."""
        try:
            offsets = await asyncio.wait_for(
                partition_lag(bootstrap, settings.group_id, topic, auth), LAG_POLL_S / 2
            )
        except Exception as exc:  # noqa: BLE001 - the broker away is what this poll is for
            metrics.broker_up.set(0)
            broker.failed(exc)
            return
        metrics.broker_up.set(1)
        metrics.lags(offsets)
        broker.answered()

    @app.timer(STALLS_REPORT_S, on_leader=False)
    async def report_stalls() -> None:
        """Partitions that wait on a batch they cannot read, for `tally status` and the metrics."""
        now = stalls.snapshot()
        metrics.stalled(now)
        changed = stall_report.changes(now)
        if changed:
            with contextlib.suppress(Exception):  # ClickHouse away: told at the next report
                await asyncio.wait_for(
                    asyncio.to_thread(sink.note_stalls, stall_report.rows(topic, worker, changed)),
                    10,
                )
                stall_report.taken(now)

    app.topics.add(submissions)  # subscribe: the records reach `handle_records`, not an agent

    async def handle_records(
        records: Mapping[TP, Sequence[Any]], generation: int
    ) -> asyncio.Task | None:
        try:
            async with queue.deciding:
                if app.consumer_generation_id != generation:
                    return (
                        None  # fetched before a rebalance: faust seeks back; the owner reads them
                    )
                with collector_paused():
                    decided = await batches.decide(records, leases.held)
                # Written after the write before it, under the leases held now.
                owners = dict(leases.held)
                return queue.start(lambda before: batches.write(decided, owners, before))
        except Exception:
            log.critical(
                "unexpected error while deciding a batch; exiting without commit", exc_info=True
            )
            os._exit(EXIT_BUG)

    app.records_handler = handle_records
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
