"""What the embedded ClickHouse spends on a national-size five-ballot night, inserts and merges,
in chDB itself (no HTTP, no worker): the sink's bodies of a `--tps` night (decided by the real
processor) are inserted once into stage tables, then replayed `--replicas` times under renamed TPS
codes into the real tables (their views fire), a batch every `--pace` seconds, and the run waits
until no merge runs. It reports the server's CPU an event, the parts each large table is left
with, and two reads of the result (a page statement of 12 TPS, a province's DPR sum).

`--alter` applies statements after the schema: the lever under test (dropping log_leaves' `leaf`
writes the leaves without their text). Schema 015's merges against ClickHouse's own, for example:

    .venv/bin/python -m benchmarks.merges --tps 20000 --replicas 40
    .venv/bin/python -m benchmarks.merges --tps 20000 --replicas 40 \\
        --alter "ALTER TABLE region_totals RESET SETTING merge_selector_base"
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time

import chdb

from benchmarks.in_process import with_schema
from streams.clickhouse.sink import CURRENT, DECISIONS, TOTALS, json_columns
from streams.core.aggregate import columns_of
from streams.core.contract import BALLOTS
from streams.core.pipeline import Message, Processor
from streams.core.registry import Registry
from streams.core.rows import CurrentRow, DecisionRow
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.ops.provenance import provenance

BATCH = 5000  # events a fetch, as the workers take them (Settings.batch_size)
TABLES = (TOTALS, DECISIONS, CURRENT)
# How a replica renames its TPS: region_totals' rows above the TPS stay the same regions.
RENAMED = {
    "region_totals": "if(level = 'tps', concat(region, '{r}'), region) AS region",
    "tally_decisions": "concat(tps, '{r}') AS tps",
    "tally_current": "concat(tps, '{r}') AS tps",
}
# What a page statement reads of its TPS (streams/clickhouse/pages.py reads these, deduplicated).
PAGE_ROWS = "SELECT page, kind, rank, entry, votes FROM tps_pages"
LARGE = ("log_leaves", "region_totals", "tally_current", "tally_decisions", "tps_pages")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def count(con: chdb.Connection, sql: str) -> int:
    return int(con.query(sql, "TSV").bytes())


def stage(con: chdb.Connection, tps: int) -> tuple[int, int]:
    """The night's bodies in stage tables, a batch number a row: (events, batches)."""
    shape, stream, _ = generate(Plan(tps, 1, BALLOTS, duplicates=0.02, corrections=0.02))
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    processor = Processor(lambda: registry)
    processor.preload(0, [], {})
    for table in TABLES:
        con.query(
            f"CREATE TABLE s_{table.name} ENGINE = Memory AS SELECT {table.names}, "
            f"toUInt32(0) AS b FROM {table.name} LIMIT 0"
        )
        con.query(
            f"CREATE TABLE m_{table.name} ENGINE = Memory AS SELECT {table.names} "
            f"FROM {table.name} LIMIT 0"
        )
    starts = range(0, len(events), BATCH)
    for k, start in enumerate(starts):
        chunk = [Message(o, raw, 0.0) for o, raw in enumerate(events[start : start + BATCH], start)]
        batch = processor.process("t", 0, chunk)
        for table, columns in (
            (TOTALS, batch.totals.as_columns()),
            (DECISIONS, columns_of(batch.decisions, len(DecisionRow._fields), 0)),
            (CURRENT, columns_of(batch.current, len(CurrentRow._fields))),
        ):
            if columns[0]:
                body = json_columns(columns).decode()
                into = f"INSERT INTO m_{table.name} ({table.names}) FORMAT JSONCompactColumns"
                con.query(f"{into} {body}")
                con.query(f"INSERT INTO s_{table.name} SELECT *, {k} FROM m_{table.name}")
                con.query(f"TRUNCATE TABLE m_{table.name}")
    # The log's leaves as the appender writes them: one a TPS-level change row.
    con.query(
        "CREATE TABLE s_leaves ENGINE = Memory AS SELECT ballot, region AS tps, "
        "toUInt32(choice) AS revision, now64(6) AS decided_at, concat(event, source) AS leaf, b "
        "FROM s_region_totals WHERE level = 'tps'"
    )
    return len(events), len(starts)


def replay(con: chdb.Connection, batches: int, replicas: int, pace: float) -> None:
    index = 0
    # The leaf's text, unless a lever dropped the column (leaves made from region_totals' rows).
    kept = count(
        con, "SELECT count() FROM system.columns WHERE table = 'log_leaves' AND name = 'leaf'"
    )
    text = "leaf, " if kept else ""
    # Each batch's leaves, counted once for every replica (the leaf index moves by them).
    counted = con.query("SELECT b, count() FROM s_leaves GROUP BY b", "TSV").bytes().decode()
    leaves = {int(b): int(n) for b, n in (line.split("\t") for line in counted.splitlines())}
    for r in range(replicas):
        for k in range(batches):
            began = time.monotonic()
            for table in TABLES:
                renamed = RENAMED[table.name].format(r=f"r{r}")
                con.query(
                    f"INSERT INTO {table.name} ({table.names}) SELECT * EXCEPT b REPLACE "
                    f"({renamed}) FROM s_{table.name} WHERE b = {k}"
                )
            con.query(
                f"INSERT INTO log_leaves (idx, ballot, tps, revision, decided_at, {text}leaf_hash) "
                f"SELECT {index} + rowNumberInAllBlocks(), ballot, concat(tps, 'r{r}'), revision, "
                f"decided_at, {text}unhex(SHA256(leaf)) FROM s_leaves WHERE b = {k}"
            )
            index += leaves.get(k, 0)
            time.sleep(max(0.0, pace - (time.monotonic() - began)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tps", type=int, default=20_000)
    parser.add_argument("--replicas", type=int, default=40)
    parser.add_argument("--pace", type=float, default=0.25, help="seconds a batch at least")
    parser.add_argument("--alter", default="", help="statements after the schema, ';' between")
    args = parser.parse_args()
    print(f"provenance: {provenance()}", flush=True)
    with tempfile.TemporaryDirectory() as path:
        con = with_schema(path, "night")
        for statement in filter(str.strip, args.alter.split(";")):
            con.query(statement)
        events, batches = stage(con, args.tps)
        events *= args.replicas
        spent, began = cpu(), time.monotonic()
        replay(con, batches, args.replicas, args.pace)
        quiet = 0
        while quiet < 3:  # no merge for three seconds in a row
            time.sleep(1)
            merging = count(con, "SELECT count() FROM system.merges WHERE database = 'night'")
            quiet = quiet + 1 if merging == 0 else 0
        spent = cpu() - spent
        print(
            f"{events:,} events in {time.monotonic() - began:.0f} s: the server's CPU "
            f"{spent:.0f} s, {spent / events * 1e6:.1f} us an event"
        )
        print(
            con.query(
                "SELECT table, count() AS parts, sum(rows) AS rows, round(avg(level), 1) AS "
                "merges_a_part, max(level) AS most, "
                "formatReadableSize(sum(data_uncompressed_bytes)) AS raw FROM system.parts "
                "WHERE database = 'night' AND active AND table IN "
                f"{LARGE} GROUP BY table ORDER BY table",
                "PrettyCompactMonoBlock",
            )
            .bytes()
            .decode()
        )
        codes = con.query("SELECT DISTINCT page FROM tps_pages", "TSV").bytes().decode().split()
        rng = random.Random(1)
        began = time.monotonic()
        for _ in range(200):
            picked = ", ".join(f"'{c}'" for c in rng.sample(codes, 12))
            con.query(f"{PAGE_ROWS} WHERE page IN ({picked})", "TSV")
        print(f"a page statement of 12 TPS: {(time.monotonic() - began) / 200 * 1e3:.2f} ms")
        began = time.monotonic()
        for _ in range(20):
            con.query(
                "SELECT region, choice, sum(votes) FROM region_totals WHERE ballot = 'DPR' AND "
                "level = 'province' GROUP BY region, choice",
                "TSV",
            )
        print(f"a province's DPR sum: {(time.monotonic() - began) / 20 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
