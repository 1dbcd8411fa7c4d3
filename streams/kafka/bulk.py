"""Bulk consumption for faust: each fetched set of records goes to one coroutine, not message by
message.

Why: faust's stream path (record -> Message -> Event -> channel queue -> stream -> take buffer ->
ack, with a task per message in `wait_first`) cost about 136 us of worker CPU an event here, almost
three times the whole tally pipeline (about 50 us). The worker keeps everything else faust gives it:
the consumer group and its rebalances, the partitions assigned/revoked signals, the fetcher thread,
the commit of acked offsets, the producer. Only the hop from fetched records to the agent is
replaced, by `BulkConsumer._drain_messages`, which mirrors faust's own loop (flow control,
generation check, gaps, read offsets) but calls one handler per fetch and acks its records only when
the handler says they were written.

Records come out of aiokafka's fetch buffers one partition at a time
(`BulkConsumerThread._fetch_records`, which mirrors aiokafka's `Fetcher.fetched_records`): aiokafka
unpacks a record batch while the records are taken, and a batch it cannot unpack raised through
every partition and stopped the worker. Here it ends only its own partition's read, which waits at
that batch (`streams.kafka.stalls`).

The handler decides a fetch and hands back its write, still running: while the write of one fetch is
in ClickHouse, the next is fetched and decided (one write in flight at a time; a fetch is acked only
once its own write has returned True).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import faust
from aiokafka.consumer.fetcher import FetchResult
from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.kafka.stalls import Stalls

# (records by partition, consumer generation at fetch) -> None if the records are not this worker's
# to handle (never ack them), else an awaitable of the write: True when written and safe to ack.
RecordsHandler = Callable[[Mapping[TP, Sequence[Any]], int], Awaitable[Awaitable[bool] | None]]

# faust fixes the fetch long-poll at 1.5 s. Tansu answers a fetch only when that wait ends, not when
# records arrive, so an event could sit up to 1.5 s in the broker; measured: p50 latency 1.2 s at
# 2,000 events/s. A shorter wait costs a few empty fetches a second when idle.
FETCH_MAX_WAIT_MS = 100


def read_fetched(
    result: FetchResult, max_records: int | None
) -> tuple[list[Any], BaseException | None, int]:
    """aiokafka's `FetchResult.getall`, except that a batch it cannot unpack ends the read instead
    of raising through every partition: (records read before it, the error, the offset it stopped
    at). The position moves past the records returned, never past the batch that failed."""
    tp = result._topic_partition
    if not result.check_assignment(tp) or not result.has_more():
        return [], None, -1
    unpacked = result._partition_records
    records: list[Any] = []
    try:
        for record in unpacked:
            records.append(record)
            if max_records is not None and len(records) >= max_records:
                result._update_position()
                return records, None, -1
    except Exception as exc:  # noqa: BLE001 - any batch a producer wrote may be unreadable here: it waits, never crashes
        result._update_position()
        result._partition_records = None
        return records, exc, unpacked.next_fetch_offset
    result._update_position()
    result._partition_records = None
    return records, None, -1


class BulkConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        self._stalled_paused: set[Any] = set()  # partitions this thread paused because they wait
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> dict[Any, list[Any]]:
        """faust's fetch from aiokafka's buffers (`Fetcher.fetched_records`), one partition at a
        time, so that a record batch that cannot be unpacked stops its own partition only
        (`streams.kafka.stalls`)."""
        if not self.consumer.flow_active:
            return {}
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        stalls: Stalls = self.consumer.app.stalls  # type: ignore[attr-defined]
        with fetcher._subscriptions.fetch_context():
            while True:
                if fetcher._subscriptions.reassignment_in_progress:
                    await fetcher._subscriptions.wait_for_assignment()
                started = time.monotonic()
                drained = self._drain(consumer, fetcher, active_partitions, max_records, stalls)
                if drained or not timeout:
                    return drained
                waiter = fetcher._create_fetch_waiter()
                done, pending = await asyncio.wait([waiter], timeout=timeout)
                if not done or fetcher._closed:
                    for future in pending:
                        future.cancel()
                    return {}
                waiter.result()  # raises what the fetcher found (an authorization error)
                timeout = max(0.0, timeout - (time.monotonic() - started))

    def _drain(
        self, consumer: Any, fetcher: Any, active: Any, max_records: int | None, stalls: Stalls
    ) -> dict[Any, list[Any]]:
        waiting = stalls.waiting()
        for tp in [tp for tp in self._stalled_paused if tp.partition not in waiting]:
            self._stalled_paused.discard(tp)  # due for another try
            if fetcher._subscriptions.is_assigned(tp):
                consumer.resume(tp)
        drained: dict[Any, list[Any]] = {}
        for tp in list(fetcher._records):
            if active and tp not in active:
                if not fetcher._subscriptions.is_assigned(tp):
                    del fetcher._records[tp]
                continue
            if tp.partition in waiting:
                continue
            result = fetcher._records[tp]
            if type(result) is not FetchResult:
                if drained:
                    return drained  # the error is raised at the next call, as aiokafka does
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
                result.check_raise()
            records, error, stopped_at = read_fetched(result, max_records)
            if error is not None or not result.has_more():
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
            if error is not None:
                stalls.failed(tp.partition, stopped_at, error)
                consumer.pause(tp)
                self._stalled_paused.add(tp)
            elif records:
                stalls.read(tp.partition)
            if records:
                drained[tp] = records
                if max_records is not None:
                    max_records -= len(records)
                    if max_records <= 0:
                        break
        return drained


class BulkConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer, draining fetched records in bulk into `app.records_handler`."""

    def _new_consumer_thread(self) -> BulkConsumerThread:
        return BulkConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # the Fetcher service runs this
        app = self.app
        handler: RecordsHandler = app.records_handler  # type: ignore[attr-defined]
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        pending: tuple[dict[TP, list[Any]], Awaitable[bool]] | None = None  # decided, being written
        while not (self._stopped.is_set() or fetcher._stopped.is_set()):
            # With a write in flight, take what is already fetched, or else go and ack that write.
            records, active = await self._wait_next_records(timeout=0.0 if pending else 1.0)
            await self.sleep(0)
            written = None
            fresh: dict[TP, list[Any]] = {}
            if records and not self.should_stop:
                if not self.flow_active:
                    # A rebalance began after the fetch: these records are not ours to handle; faust
                    # seeks back to the committed offsets, as its own loop does.
                    await self.perform_seek()
                else:
                    generation = app.consumer_generation_id
                    for tp, batch in records.items():
                        if (
                            active is not None
                            and tp not in active
                            and tp not in self._buffered_partitions
                        ):
                            continue  # paused partition: faust refetches it when it resumes
                        last = read_offset[tp]
                        kept = [r for r in batch if last is None or r.offset >= last]
                        if not kept:
                            continue
                        if acks_enabled_for(tp.topic):
                            # Offsets with no record (compaction, transaction markers) count as
                            # acked, or the committed offset would stop before them forever.
                            for record in kept:
                                if last and record.offset - last > 1:
                                    await self._add_gap(tp, last + 1, record.offset)
                                last = record.offset
                        fresh[tp] = kept
                    if fresh:
                        # None: not decided (the group moved on meanwhile): never ack; they are
                        # replayed.
                        written = await handler(fresh, generation)
                        if written is not None:
                            for tp, kept in fresh.items():
                                read_offset[tp] = kept[-1].offset
            if pending is not None:
                await self._ack_when_written(*pending)
                pending = None
            if written is not None:
                pending = (fresh, written)
        if pending is not None:  # stopping: ack what was written; the rest is replayed
            await self._ack_when_written(*pending)

    async def _ack_when_written(self, fresh: dict[TP, list[Any]], written: Awaitable[bool]) -> None:
        if not await written:
            return
        for tp, kept in fresh.items():
            self._ack_offsets(tp, [record.offset for record in kept])
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    def _ack_offsets(self, tp: TP, offsets: list[int]) -> None:
        """faust's `Consumer.ack` for a fetch's offsets at once, without a faust Message per record
        (building one and acking it cost ~5 us an event; nothing tracks these records as
        messages)."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return
        with ack_lock:
            committed = self._committed_offset[tp]
            acked_index, acked = self._acked_index[tp], self._acked[tp]
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in acked_index:
                    acked_index.add(offset)
                    acked.append(offset)
                    self._n_acked += 1
            notify(self._waiting_for_ack)


class BulkTransport(aiokafka_driver.Transport):
    Consumer = BulkConsumer


class BulkApp(faust.App):
    """A faust app whose consumer hands fetched records to `records_handler` in bulk."""

    records_handler: RecordsHandler
    stalls: Stalls  # partitions whose records cannot be read: they wait, the others go on

    def _new_transport(self) -> BulkTransport:
        return BulkTransport(self.conf.broker_consumer, self)
