"""Did the broker restart empty? Checked when a worker is assigned partitions.

The embedded broker (Tansu 0.6.0) keeps its topics in memory. After a restart they begin again at
offset 0, and the consumer group's committed offsets are gone, so the worker reads from the start
whatever the gateways send again. Offsets then name other events than the ones ClickHouse decided
under them: a decision's (partition, offset) and an insert's deduplication token would match the
old ones, and ClickHouse would drop the new rows as retries. So at assignment the worker asks the
broker for the event ClickHouse decided last at each partition's highest offset. If the broker no
longer has that offset, or has another event there, this is a new incarnation of the topic: the
next epoch is recorded (schemas/clickhouse/007_epochs.sql) and every position and token carries it.
The totals stay as they are: they live in ClickHouse, and resent events are duplicates of applied
ones (their event ids), so nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.clickhouse.sink import ClickHouseSink
from streams.kafka.produce import true_ends

log = logging.getLogger("tally.worker")
FETCH_TRIES = 3


def current_epoch(sink: ClickHouseSink, topic: str) -> int:
    return int(
        sink.call(
            "topic epoch",
            lambda c: (
                c.command(
                    "SELECT max(epoch) FROM topic_epochs WHERE topic = {t:String}",
                    parameters={"t": topic},
                )
                or 0
            ),
        )
    )


def last_decided(
    sink: ClickHouseSink, partitions: Iterable[int], epoch: int
) -> dict[int, tuple[int, str]]:
    """partition -> (offset, event id) of the highest decided offset with an event id, in
    `epoch`."""
    rows = sink.call(
        "last decided",
        lambda c: (
            c.query(
                "SELECT src_partition, max(src_offset), argMax(event_id, src_offset) FROM "
                "tally_decisions "
                "WHERE src_epoch = {e:UInt32} AND event_id != '' AND has({p:Array(UInt16)}, "
                "src_partition) "
                "GROUP BY src_partition",
                parameters={"e": epoch, "p": sorted(partitions)},
            ).result_rows
        ),
    )
    return {int(p): (int(o), str(e)) for p, o, e in rows}


async def changed_partitions(
    bootstrap: str, topic: str, decided: Mapping[int, tuple[int, str]], auth: Mapping[str, Any]
) -> dict[int, str]:
    """partition -> why the broker's log is not the one these decisions were made on (empty: it
    is)."""
    if not decided:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **auth)
    await consumer.start()
    changed: dict[int, str] = {}
    try:
        tps = [TopicPartition(topic, p) for p in decided]
        consumer.assign(tps)
        starts, ends = (
            await consumer.beginning_offsets(tps),
            await true_ends(consumer, await consumer.end_offsets(tps)),
        )
        for tp in tps:
            offset, event_id = decided[tp.partition]
            if ends[tp] <= offset:
                changed[tp.partition] = (
                    f"it ends at offset {ends[tp]}, ClickHouse decided up to {offset}"
                )
                continue
            if starts[tp] > offset:  # retention removed it (a real Kafka): nothing to compare with
                continue
            records: list = []
            for _ in range(FETCH_TRIES):  # a loaded broker may bring nothing within a fetch's wait
                consumer.seek(tp, offset)
                records = (await consumer.getmany(tp, timeout_ms=5000, max_records=1)).get(tp, [])
                if records:
                    break
            if not records:
                log.error(
                    "partition %d: nothing at %d after %d fetches; unchanged",
                    tp.partition,
                    offset,
                    FETCH_TRIES,
                )
                continue
            found = _event_id(records[0].value) if records[0].offset == offset else None
            if found != event_id:
                changed[tp.partition] = (
                    f"offset {offset} holds {found!r}, ClickHouse decided {event_id!r} there"
                )
    finally:
        await consumer.stop()
    return changed


def _event_id(value: bytes | None) -> str | None:
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return event.get("event_id") if isinstance(event, dict) else None


def next_epoch(sink: ClickHouseSink, topic: str, epoch: int, reason: str) -> int:
    """Record the topic's next incarnation. Two workers that both find it write the same row."""
    sink.call(
        "topic epoch",
        lambda c: c.command(
            "INSERT INTO topic_epochs (topic, epoch, reason) SELECT {t:String}, {e:UInt32}, "
            "{r:String}",
            parameters={"t": topic, "e": epoch + 1, "r": reason},
        ),
    )
    return epoch + 1


async def check_epoch(
    sink: ClickHouseSink,
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    auth: Mapping[str, Any],
) -> int:
    """The epoch to count on for `topic`: the recorded one, or the next if the broker's log is no
    longer the one ClickHouse decided these partitions on (it restarted empty)."""
    epoch = current_epoch(sink, topic)
    decided = last_decided(sink, partitions, epoch)
    try:
        changed = await asyncio.wait_for(changed_partitions(bootstrap, topic, decided, auth), 30)
    except Exception as exc:  # noqa: BLE001 - the group just assigned us, so the broker answers; if not, say so
        what = f"{type(exc).__name__}: {exc}"
        log.error(
            "could not check whether the broker restarted empty (%s); counting on as epoch %d",
            what,
            epoch,
        )
        return epoch
    if not changed:
        return epoch
    reason = "; ".join(f"partition {p}: {why}" for p, why in sorted(changed.items()))
    log.critical(
        "THE BROKER RESTARTED EMPTY (%s). Events it held and had not delivered are gone: resend "
        "them from the "
        "gateways' logs (`tally produce`; events already counted are recognised by their ids and "
        "not counted "
        "again). The totals in ClickHouse stand. Counting on as epoch %d.",
        reason,
        epoch + 1,
    )
    return next_epoch(sink, topic, epoch, reason)
