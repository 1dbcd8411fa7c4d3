"""The embedded broker's partition ends, read right although Tansu 0.6.0 lists them a batch short,
and the broker-restart check that reads the record itself (streams.kafka.epochs)."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.epochs import changed_partitions
from streams.kafka.produce import end_offsets


async def _produce_in_batches(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=4000)
    await producer.start()
    try:
        sent = [
            await producer.send(topic, orjson.dumps({"event_id": f"e{i}"}), partition=i % 2)
            for i in range(600)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def test_ends_are_the_true_ends_and_a_caught_up_worker_is_not_taken_for_a_broker_restart(pipeline):
    topic = pipeline.topic("ends")
    asyncio.run(_produce_in_batches(pipeline.kafka, topic))
    assert asyncio.run(end_offsets(pipeline.kafka, topic)) == {0: 300, 1: 300}
    # ClickHouse decided the last record of each partition (inside the last batch): unchanged.
    last = {0: (299, "e598"), 1: (299, "e599")}
    assert asyncio.run(changed_partitions(pipeline.kafka, topic, last, {})) == {}
    # Another event at that offset, or an offset the log never reached: a new incarnation.
    other = {0: (299, "e1"), 1: (400, "e9")}
    changed = asyncio.run(changed_partitions(pipeline.kafka, topic, other, {}))
    assert (
        set(changed) == {0, 1}
        and "holds 'e598'" in changed[0]
        and "ends at offset 300" in changed[1]
    )
