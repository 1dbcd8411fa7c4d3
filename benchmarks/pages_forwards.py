"""A read of TPS pages on a night whose gateways put nearly every record off its home (librdkafka's
CRC32, Go's FNV-1a): tally_forwards then holds a row an event, and a view copies each into the page
table under its Kafka key (014_tps_pages_table.sql). Timed in chDB itself (no HTTP): the pages
statement (streams/clickhouse/pages.py) against, in the same run, the read of the same arrivals
from tally_forwards by its projection by key (013_forwards_by_key.sql), as pages read them before
the page table; the two must read the same rows.

    .venv/bin/python -m benchmarks.pages_forwards --forwards 4000000 [--pages 14]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

import chdb

from streams.clickhouse.pages import PAGES_SQL
from streams.clickhouse.schema import schema
from streams.ops.provenance import provenance

# How pages found a TPS's arrivals before the page table: tally_forwards by its projection by key.
FORWARDS_BY_KEY = """
SELECT kafka_key, 'forwarded', 0,
       toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(forwarded_at),
                          src_partition, src_offset, kafka_key, home_partition, src_epoch)),
       map()
FROM tally_forwards WHERE kafka_key IN {codes:Array(String)}
"""


def timed(conn, sql: str, codes: list[str], pages: int, rounds: int) -> tuple[float, list]:  # noqa: ANN001
    times, rows = [], []
    for i in range(rounds):
        asked = random.Random(i).sample(codes, pages)
        statement = sql.replace(
            "{codes:Array(String)}", "[" + ",".join(f"'{c}'" for c in asked) + "]"
        )
        started = time.perf_counter()
        result = conn.query(statement, "TSV").data()
        times.append((time.perf_counter() - started) * 1000)
        rows.append(sorted(result.splitlines()))
    return statistics.median(times), rows


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--forwards", type=int, default=4_000_000)
    parser.add_argument("--pages", type=int, default=14, help="TPS a read (the benchmark's ~12-14)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as path:
        conn = chdb.connect(path)
        conn.query("CREATE DATABASE tally")
        conn.query("USE tally")
        for _, statements in schema():
            for statement in statements:
                conn.query(statement)
        step = 500_000  # one insert a part, as the sink's batches merged
        for start in range(0, args.forwards, step):
            conn.query(
                "INSERT INTO tally_forwards (kafka_key, src_partition, src_offset, received_at, "
                "home_partition, src_epoch) SELECT toString(1000000000000 + intHash32(number) % "
                "8999999999999), number % 8, number, now64(3), (number + 1) % 8, 0 "
                f"FROM numbers({start}, {min(step, args.forwards - start)})"
            )
        while int(conn.query("SELECT count() FROM system.merges", "TSV").data() or 0):
            time.sleep(0.5)  # timed on the parts a night leaves, not while they merge
        parts = conn.query(
            "SELECT count() FROM system.parts WHERE active AND table = 'tps_pages'", "TSV"
        ).data()
        codes = conn.query("SELECT kafka_key FROM tally_forwards LIMIT 5000", "TSV").data().split()
        paged, rows = timed(conn, PAGES_SQL, codes, args.pages, args.rounds)
        by_key, rows_by_key = timed(conn, FORWARDS_BY_KEY, codes, args.pages, args.rounds)
        assert rows == rows_by_key, "the page table read other arrivals than tally_forwards"
    print(
        f"{args.forwards:,} forwards, the page table in {parts.strip()} parts, {args.pages} pages "
        f"a read: median {paged:.1f} ms from the page table, {by_key:.1f} ms from tally_forwards "
        f"by its projection by key ({paged / by_key:.2f}x)"
    )


if __name__ == "__main__":
    main()
