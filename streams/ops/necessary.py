"""The necessary baseline of `tally bench`: the work no tally worker can skip, and nothing
else. Consume the submissions, decode each event, verify its device signature with the worker's own
verifier (`core.signatures.check_signature`, the registry's keys), insert the raw rows, commit. No
validation beyond that, no dedupe, no totals. The bench runs as many of these as it runs workers, as
one consumer group, so both sides get the same cores; tally's events/s over this one's is
`ratio_to_necessary`.

Run by the bench: `python -m streams.ops.necessary GROUP` with the pipeline's settings in the
environment; exits once its group has committed the whole topic.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer

from streams.clickhouse.client import connect
from streams.clickhouse.registry_store import read_registry
from streams.core.contract import decode_tally
from streams.core.signatures import check_signature
from streams.embedded.servers import kafka_bootstrap
from streams.kafka.auth import kafka_options
from streams.kafka.produce import consumer_lag
from streams.settings import SUBMISSIONS, Settings

COLUMNS = ["event_id", "tps", "ballot", "revision", "votes", "invalid"]


async def member(settings: Settings, group: str) -> tuple[int, float, float]:
    """Consume as one member of `group` until the group has committed everything: the events it
    handled, and the times (epoch seconds) of its first fetch with events and of its last commit."""
    client = connect(settings)
    keys = read_registry(client).keys
    bootstrap, topic = kafka_bootstrap(settings), settings.topic(SUBMISSIONS)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
        **kafka_options(settings),
    )
    await consumer.start()
    handled, first, last = 0, 0.0, 0.0
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=settings.batch_size)
            if not batches:
                if await consumer_lag(bootstrap, group, topic, kafka_options(settings)) == 0:
                    return handled, first, last
                continue
            first = first or time.time()
            rows = []
            for messages in batches.values():
                for message in messages:
                    handled += 1
                    tally = decode_tally(message.value).tally
                    if (
                        tally is not None
                        and check_signature(tally, keys, True, message.timestamp / 1000) is None
                    ):
                        rows.append(
                            (
                                tally.event_id,
                                tally.tps,
                                tally.ballot,
                                tally.revision,
                                tally.votes,
                                tally.invalid,
                            )
                        )
            if rows:
                await asyncio.to_thread(client.insert, "bench_raw", rows, column_names=COLUMNS)
            await consumer.commit()
            last = time.time()
    finally:
        await consumer.stop()


def main() -> None:
    handled, first, last = asyncio.run(member(Settings.from_env(), sys.argv[1]))
    print(orjson.dumps({"handled": handled, "first": first, "last": last}).decode(), flush=True)


if __name__ == "__main__":
    main()
