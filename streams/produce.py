"""The gateway's edge: publish tally events to Kafka with aiokafka, keyed by TPS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka_auth import kafka_options
from streams.settings import REJECTED, SUBMISSIONS, Settings


def key_of(value: bytes) -> bytes | None:
    """The message key: the event's `tps` (so one TPS stays in order); none if the line is not a JSON object."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    tps = obj.get("tps") if isinstance(obj, dict) else None
    return tps.encode() if isinstance(tps, str) else None


def make_producer(bootstrap: str, auth: Mapping[str, Any] | None = None) -> AIOKafkaProducer:
    """`auth`: `kafka_auth.kafka_options(settings)` (SASL/TLS), none for the embedded broker."""
    # Tansu refuses InitProducerId: no idempotent producer; exactly-once comes from the consumer side.
    return AIOKafkaProducer(
        **(auth or {}),
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )


async def publish(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    pace: Callable[[bytes], float] | None = None,
    auth: Mapping[str, Any] | None = None,
) -> int:
    """Send every value in order: at most `rate` per second if given, and none before `pace(value)`
    seconds after the start if given. Returns how many were sent."""
    producer = make_producer(bootstrap, auth)
    await producer.start()
    sent = 0
    started = time.monotonic()
    pending = []
    try:
        for value in values:
            pending.append(await producer.send(topic, value=value, key=key_of(value)))
            sent += 1
            due = max(sent / rate if rate else 0.0, pace(value) if pace else 0.0)
            ahead = due - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
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
        new = [NewTopic(t, num_partitions=settings.partitions, replication_factor=1) for t in wanted if t not in existing]
        if new:
            await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str, auth: Mapping[str, Any] | None = None) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **(auth or {}))
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def consumer_lag(bootstrap: str, group: str, topic: str, auth: Mapping[str, Any] | None = None) -> int:
    """Messages of `topic` not yet committed by `group`: 0 means every event is written to ClickHouse
    (the worker commits an offset only after the batch holding it was written)."""
    from aiokafka import TopicPartition

    ends = await end_offsets(bootstrap, topic, auth)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(auth or {}))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=[TopicPartition(topic, p) for p in ends])
    finally:
        await admin.close()
    done = {tp.partition: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
    return sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
