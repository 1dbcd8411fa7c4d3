"""A read of TPS pages on a night whose gateways put nearly every record off its home (librdkafka's
CRC32, Go's FNV-1a): tally_forwards then holds a row an event, and a view copies each into the page
table under its Kafka key (014_tps_pages_table.sql). Timed in chDB itself (no HTTP): the pages
statement (streams/clickhouse/pages.py) against, in the same run, the read of the same arrivals
from a copy of tally_forwards with a projection by key, as pages read them before the page table
(schema 013 then added it; it now drops it); the two must read the same rows. The same rows are
also written to a copy without the projection, so the run shows what the projection cost a write.

    .venv/bin/python -m benchmarks.pages_forwards --forwards 4000000 [--pages 14]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time

from benchmarks.in_process import with_schema
from streams.clickhouse.pages import PAGES_SQL
from streams.ops.provenance import provenance

# How pages found a TPS's arrivals before the page table: tally_forwards by a projection by key.
PROJECTED = "forwards_by_key"
PLAIN = "forwards_plain"
FORWARDS_BY_KEY = f"""
SELECT kafka_key, 'forwarded', 0,
       toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(forwarded_at),
                          src_partition, src_offset, kafka_key, home_partition, src_epoch)),
       map()
FROM {PROJECTED} WHERE kafka_key IN {{codes:Array(String)}}
"""
ROWS = (
    "INSERT INTO {table} (kafka_key, src_partition, src_offset, received_at, home_partition, "
    "src_epoch, forwarded_at) SELECT toString(1000000000000 + intHash32(number) % 8999999999999), "
    "number % 8, number, toDateTime64(1707800000 + number / 1000, 3), (number + 1) % 8, 0, "
    "toDateTime64(1707800000 + number / 1000, 3) FROM numbers({start}, {count})"
)


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
        conn = with_schema(path, "tally")
        conn.query(f"CREATE TABLE {PLAIN} AS tally_forwards")
        conn.query(f"CREATE TABLE {PROJECTED} AS tally_forwards")
        conn.query(
            f"ALTER TABLE {PROJECTED} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'"
        )
        conn.query(f"ALTER TABLE {PROJECTED} ADD PROJECTION by_key (SELECT * ORDER BY kafka_key)")
        writes = {PLAIN: 0.0, PROJECTED: 0.0}
        step = 500_000  # one insert a part, as the sink's batches merged
        for start in range(0, args.forwards, step):
            count = min(step, args.forwards - start)
            conn.query(ROWS.format(table="tally_forwards", start=start, count=count))
            for table in writes:
                started = time.perf_counter()
                conn.query(ROWS.format(table=table, start=start, count=count))
                writes[table] += time.perf_counter() - started
        while int(conn.query("SELECT count() FROM system.merges", "TSV").data() or 0):
            time.sleep(0.5)  # timed on the parts a night leaves, not while they merge
        parts = conn.query(
            "SELECT count() FROM system.parts WHERE active AND table = 'tps_pages'", "TSV"
        ).data()
        codes = conn.query("SELECT kafka_key FROM tally_forwards LIMIT 5000", "TSV").data().split()
        paged, rows = timed(conn, PAGES_SQL, codes, args.pages, args.rounds)
        by_key, rows_by_key = timed(conn, FORWARDS_BY_KEY, codes, args.pages, args.rounds)
        assert rows == rows_by_key, "the page table read other arrivals than tally_forwards"
        size = dict(
            line.split("\t")
            for line in conn.query(
                "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE active AND table IN "
                f"('{PLAIN}', '{PROJECTED}') GROUP BY table",
                "TSV",
            )
            .data()
            .splitlines()
        )
    print(
        f"{args.forwards:,} forwards, the page table in {parts.strip()} parts, {args.pages} pages "
        f"a read: median {paged:.1f} ms from the page table, {by_key:.1f} ms from tally_forwards "
        f"by its projection by key ({paged / by_key:.2f}x)"
    )
    print(
        f"writing them: {writes[PLAIN]:.2f} s without the projection, {writes[PROJECTED]:.2f} s "
        f"with it ({writes[PROJECTED] / writes[PLAIN]:.2f}x); on disk {int(size[PLAIN]):,} "
        f"against {int(size[PROJECTED]):,} bytes"
    )


if __name__ == "__main__":
    main()
