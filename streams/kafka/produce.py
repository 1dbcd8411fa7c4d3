"""The gateway's edge: publish tally events to Kafka with aiokafka, keyed by TPS, each on its TPS's
home partition (`core.placement`), where the workers decide it without forwarding it first."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.core.placement import home_partition
from streams.kafka.auth import kafka_options
from streams.settings import REJECTED, SUBMISSIONS, Settings


def key_of(value: bytes) -> bytes | None:
    """The message key: the event's `tps` (so one TPS stays in order); none if the line is not a
    JSON object."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    tps = obj.get("tps") if isinstance(obj, dict) else None
    return tps.encode() if isinstance(tps, str) else None


def make_producer(bootstrap: str, auth: Mapping[str, Any] | None = None) -> AIOKafkaProducer:
    """`auth`: `kafka_auth.kafka_options(settings)` (SASL/TLS), none for the embedded broker."""
    # Tansu refuses InitProducerId: no idempotent producer; exactly-once comes from the consumer
    # side.
    return AIOKafkaProducer(
        **(auth or {}),
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )


class Pacer:
    """When each send is due, in seconds after the start: at most `rate` a second, and none before
    `pace(value)` if given.

    The rate never builds up credit beyond `burst_s` of sending: after a stall (a slow reader of the
    values, a busy broker) sending resumes at the rate instead of catching up in a burst. Measured:
    a national bench skipped 6 GB of backlog lines (10 s) before its first tail event, and the old
    schedule then sent 20,000 events "at 2,000/s" in one burst. `pace` stays absolute: a replay of
    the night keeps to its clock."""

    def __init__(
        self,
        rate: float | None,
        pace: Callable[[bytes], float] | None = None,
        burst_s: float = 0.05,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.pace = pace
        self.burst_s = burst_s
        self.next_at = 0.0  # when the next send may go, by the rate

    def due(self, elapsed: float, value: bytes) -> float:
        """When this value may be sent (compare with `elapsed`, seconds since the start)."""
        at = elapsed
        if self.interval:
            at = max(self.next_at, elapsed - self.burst_s)
            self.next_at = at + self.interval
        if self.pace:
            at = max(at, self.pace(value))
        return at


async def publish(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    pace: Callable[[bytes], float] | None = None,
    auth: Mapping[str, Any] | None = None,
) -> int:
    """Send every value in order, as `Pacer(rate, pace)` allows. Returns how many were sent."""
    producer = make_producer(bootstrap, auth)
    await producer.start()
    partitions = len(await producer.partitions_for(topic))
    pacer = Pacer(rate, pace)
    sent = 0
    started = time.monotonic()
    pending = []
    try:
        for value in values:
            if rate or pace:
                elapsed = time.monotonic() - started
                ahead = pacer.due(elapsed, value) - elapsed
                if ahead > 0:
                    await asyncio.sleep(ahead)
            key = key_of(value)
            # no key: it is rejected wherever it lands
            home = home_partition(key, partitions) if key else None
            pending.append(await producer.send(topic, value=value, key=key, partition=home))
            sent += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
                if progress:
                    progress(sent)
        await asyncio.gather(*pending)
        await producer.flush()
        if progress:
            progress(sent)
    finally:
        await producer.stop()
    return sent


async def create_topics(settings: Settings, bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [settings.topic(SUBMISSIONS), settings.topic(REJECTED)]
        new = [
            NewTopic(t, num_partitions=settings.partitions, replication_factor=1)
            for t in wanted
            if t not in existing
        ]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


async def partition_count(bootstrap: str, topic: str, auth: Mapping[str, Any] | None = None) -> int:
    """How many partitions `topic` has, as the broker's metadata says."""
    producer = make_producer(bootstrap, auth)
    await producer.start()
    try:
        return len(await producer.partitions_for(topic))
    finally:
        await producer.stop()


async def end_offsets(
    bootstrap: str, topic: str, auth: Mapping[str, Any] | None = None
) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **(auth or {}))
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        listed = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in (await true_ends(consumer, listed)).items()}
    finally:
        await consumer.stop()


async def true_ends(consumer: Any, listed: Mapping[Any, int]) -> dict[Any, int]:
    """The ends behind the listed ones. Tansu 0.6.0 lists a partition's end as the base offset of
    its last record batch + 1 (measured: 946 where 1,000 records ended in a batch from 945), so a
    lag read from it said 0 up to a batch early. One fetch from there reads that batch; on a Kafka
    that lists the true end, it brings the last record, and the end stays."""
    ends = dict(listed)
    asked = [tp for tp, end in listed.items() if end > 0]
    if not asked:
        return ends
    consumer.assign(list(listed))  # the caller's own assignment, if it made one, stays as it was
    for tp in asked:
        consumer.seek(tp, listed[tp] - 1)
    try:
        fetched = await consumer.getmany(*asked, timeout_ms=2000)
    except Exception:  # noqa: BLE001 - a batch this client cannot unpack: read each partition on its own
        fetched = {}
        for tp in asked:
            consumer.seek(tp, listed[tp] - 1)
            with contextlib.suppress(Exception):  # that partition's end stays as listed
                fetched.update(await consumer.getmany(tp, timeout_ms=2000))
    for tp, records in fetched.items():
        if records:
            ends[tp] = max(ends[tp], records[-1].offset + 1)
    return ends


async def partition_lag(
    bootstrap: str, group: str, topic: str, auth: Mapping[str, Any] | None = None
) -> dict[int, tuple[int, int]]:
    """Partition -> (end offset, offset `group` committed) of `topic`."""
    from aiokafka import TopicPartition

    ends = await end_offsets(bootstrap, topic, auth)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(auth or {}))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in ends]
        )
    finally:
        await admin.close()
    done = {
        tp.partition: meta.offset
        for tp, meta in committed.items()
        if meta is not None and meta.offset >= 0
    }
    return {p: (end, done.get(p, 0)) for p, end in sorted(ends.items())}


async def consumer_lag(
    bootstrap: str, group: str, topic: str, auth: Mapping[str, Any] | None = None
) -> int:
    """Messages of `topic` not yet committed by `group`: 0 means every event is written to
    ClickHouse (the worker commits an offset only after the batch holding it was written)."""
    return sum(
        max(0, end - done)
        for end, done in (await partition_lag(bootstrap, group, topic, auth)).values()
    )
