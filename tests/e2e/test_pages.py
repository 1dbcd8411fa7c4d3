"""A TPS page read as streams.clickhouse.pages reads it (from the entries rows carry)
says what the rows' columns say, read as FINAL reads them: on a night with corrections, resent and
broken tallies, two workers, records a gateway (librdkafka, partitions of its choosing) put off
their home, a record sent under another TPS's code and a tombstone; and again for rows written
before the page table and their entries existed, copied into it by `tally init`."""

from __future__ import annotations

import orjson
from confluent_kafka import Producer

from streams.clickhouse.pages import read_pages
from streams.core.placement import home_partition
from streams.ops.demo import wait_caught_up
from tests.conftest import tally

# The reference: the columns, deduplicated by the server.
TALLIES = """
SELECT tps, ballot, revision, event_id, gateway, submitted_at, votes, invalid, voters, registered,
       flags
FROM tally_current FINAL WHERE tps IN {codes:Array(String)}
"""
TRAIL = """
SELECT tps AS page, received_at, decided_at, event_id, ballot, revision, decision, reasons,
       findings, flags, gateway, key_id, submitted_at, src_partition AS partition,
       src_offset AS offset, kafka_key, forwarded_from, '' AS forwarded_to
FROM tally_decisions FINAL WHERE tps IN {codes:Array(String)}
UNION ALL
SELECT kafka_key, received_at, decided_at, event_id, ballot, revision, decision, reasons,
       findings, flags, gateway, key_id, submitted_at, src_partition, src_offset, kafka_key,
       forwarded_from, ''
FROM tally_decisions FINAL WHERE kafka_key IN {codes:Array(String)} AND tps != kafka_key
UNION ALL
SELECT kafka_key, received_at, forwarded_at, '', '', 0, 'forwarded', [], [], [], '', '', '',
       src_partition, src_offset, kafka_key, '', toString(home_partition)
FROM tally_forwards FINAL WHERE kafka_key IN {codes:Array(String)}
"""


def arrival(event: dict) -> tuple:
    return event["received_at"], event["partition"], event["offset"]


def reference(ch, codes: list[str]) -> dict[str, tuple[list[dict], list[dict]]]:
    tallies: dict[str, list[dict]] = {}
    for row in ch.query(TALLIES, parameters={"codes": codes}).named_results():
        tallies.setdefault(row.pop("tps"), []).append(row)
    trails: dict[str, list[dict]] = {}
    for row in ch.query(TRAIL, parameters={"codes": codes}).named_results():
        row["received_at"], row["decided_at"] = str(row["received_at"]), str(row["decided_at"])
        trails.setdefault(row.pop("page"), []).append(row)
    return {
        code: (
            sorted(tallies.get(code, []), key=lambda t: t["ballot"]),
            sorted(trails.get(code, []), key=arrival),
        )
        for code in set(tallies) | set(trails)
    }


def parsed(line: bytes) -> dict:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


def read(ch, codes: list[str]) -> dict[str, tuple[list[dict], list[dict]]]:
    return {code: (p.tally_list(), p.events()) for code, p in read_pages(ch, codes).items()}


def forwards_table(ch) -> str:  # noqa: ANN001
    return ch.command(
        "SELECT create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'tally_forwards'"
    )


def test_a_page_from_the_entries_is_what_the_columns_say(pipeline, workers, tmp_path, ch):
    workers.start()
    workers.start()
    out = tmp_path / "night"
    tally(
        pipeline, "simulate", "--tps", "150", "--seed", "4", "--ballots", "PPWP,DPR",
        "--invalid", "0.1", "--duplicates", "0.1", "--corrections", "0.1",
        "--out", str(out), "--dry-run",
    )  # fmt: skip
    tally(pipeline, "registry", "load", str(out / "registry.jsonl"))
    lines = (out / "events.jsonl").read_bytes().splitlines()
    tally(pipeline, "produce", str(out / "events.jsonl"))
    events = [parsed(line) for line in lines]
    codes = sorted({e["tps"] for e in events if isinstance(e.get("tps"), str)})
    # A gateway that picks partitions: ten tallies again, each off its home (forwarded there, then
    # a duplicate); one TPS's tally under another's code (KEY_MISMATCH), and a tombstone.
    producer = Producer({"bootstrap.servers": pipeline.kafka, "compression.type": "zstd"})
    topic, n = pipeline.topic("tally.submissions"), pipeline.partitions
    sent = [(line, e) for line, e in zip(lines, events, strict=True) if e.get("tps") in codes]
    for line, event in sent[:10]:
        key = event["tps"].encode()
        producer.produce(topic, value=line, key=key, partition=(home_partition(key, n) + 1) % n)
    other = next(line for line, e in sent if e["tps"] != codes[-1])
    producer.produce(topic, value=other, key=codes[-1].encode())
    producer.produce(topic, value=None, key=codes[-2].encode())
    assert producer.flush(30) == 0
    wait_caught_up(pipeline, len(lines) + 12, timeout_s=180)

    asked = [*codes, "9999999999999"]
    expected = reference(ch, asked)
    decisions = {e["decision"] for _, trail in expected.values() for e in trail}
    assert {"applied", "duplicate", "rejected", "forwarded"} <= decisions  # the cases are there
    assert any(e["kafka_key"] != code for code, (_, t) in expected.items() for e in t)
    assert read(ch, asked) == expected
    assert read(ch, codes[:3]) == {c: expected[c] for c in codes[:3] if c in expected}

    # A database from before the page table and the entries: `tally init` adds them and copies
    # what the tables hold into the page table once, the entries derived as the rows are read;
    # the projection pages read forwards by before it is dropped.
    ch.command(
        "ALTER TABLE tally_forwards MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'"
    )
    ch.command("ALTER TABLE tally_forwards ADD PROJECTION by_key (SELECT * ORDER BY kafka_key)")
    assert "PROJECTION by_key" in forwards_table(ch)
    for view in ("tallies", "decisions", "forwards"):
        ch.command(f"DROP VIEW tps_pages_of_{view}")
    ch.command("DROP TABLE tps_pages")
    ch.command("DROP TABLE schema_backfills")
    ch.command("ALTER TABLE tally_current DROP COLUMN tally_entry")
    ch.command("ALTER TABLE tally_decisions DROP COLUMN trail_entry")
    tally(pipeline, "init")
    assert read(ch, asked) == expected
    assert "PROJECTION" not in forwards_table(ch)
    copied = ch.command("SELECT count() FROM tps_pages")
    tally(pipeline, "init")  # once: a second init copies nothing again
    assert ch.command("SELECT count() FROM tps_pages") == copied
    # Rows copied twice (a copy cut short before it was marked done, then run again) read once.
    ch.command("TRUNCATE TABLE schema_backfills")
    tally(pipeline, "init")
    assert ch.command("SELECT count() FROM tps_pages") == 2 * copied
    assert read(ch, asked) == expected
