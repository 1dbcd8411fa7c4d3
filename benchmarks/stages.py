"""Where a worker's time goes, stage by stage, on one core and without Kafka or ClickHouse: what
deciding a batch costs beyond its Ed25519 checks, and so how much any rewrite of the stages (the
columnar path) could save at most.

Stages, each timed over the same batches of a simulated night, in the worker's order:
  decode      bytes -> Tally (`decode_tally`)
  verify      one Ed25519 check per event (`check_signature`): the work nobody can skip
  process     `Processor.process` whole, serial verifier: decode, signature rules and checks,
              validation, decisions, aggregation (its verify share is the line above)
  rows        the batch's insert columns (`as_columns` for totals; decisions, rejections and current
              transposed, as the sink does)
  bodies      the insert bodies (`json_columns`: JSONCompactColumns, one orjson call a table)
Usage: .venv/bin/python benchmarks/stages.py [--tps 20000]
       [--ballots PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB] [--batch 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

from streams.clickhouse.sink import CURRENT, DECISIONS, REJECTIONS, json_columns
from streams.core.aggregate import columns_of
from streams.core.contract import decode_tally
from streams.core.pipeline import Message, Processor
from streams.core.registry import Registry
from streams.core.signatures import check_signature, epoch
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.kafka.batches import collector_paused
from streams.ops.provenance import provenance

TOPIC = "tally.submissions"


def timed(fn: Callable[[], object]) -> float:
    """Seconds of `fn`, with the cyclic collector paused as the worker pauses it for a batch."""
    with collector_paused():
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=20_000)
    parser.add_argument("--ballots", default="PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB")
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    shape, stream, _ = generate(
        Plan(args.tps, 1, tuple(args.ballots.split(",")), duplicates=0.02, corrections=0.02)
    )
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    batches = [
        [
            Message(offset, raw, 0.0)
            for offset, raw in enumerate(events[start : start + args.batch], start)
        ]
        for start in range(0, len(events), args.batch)
    ]
    n = len(events)
    spent: dict[str, float] = {}
    spent["decode"] = timed(lambda: [decode_tally(raw) for raw in events])
    decoded = [decode_tally(raw).tally for raw in events]
    now = epoch("2024-02-28T00:00:00+07:00")
    spent["verify"] = timed(
        lambda: [check_signature(t, registry.keys, True, now) for t in decoded if t is not None]
    )
    processor = Processor(lambda: registry)
    processor.preload(0, [], {})
    out = []
    spent["process"] = timed(
        lambda: out.extend(processor.process(TOPIC, 0, batch) for batch in batches)
    )
    tables: list[list[list]] = []

    def build_columns() -> None:
        for b in out:
            tables.append(b.totals.as_columns(0))
            tables.append(columns_of(b.decisions, len(DECISIONS.columns) - 1, 0))
            tables.append(columns_of(b.rejections, len(REJECTIONS.columns) - 1, 0))
            tables.append(columns_of(b.current, len(CURRENT.columns)))

    spent["rows"] = timed(build_columns)
    spent["bodies"] = timed(lambda: [json_columns(t) for t in tables if t[0]])
    per_event = {stage: round(s / n * 1e6, 1) for stage, s in spent.items()}
    own = per_event["process"] - per_event["verify"] + per_event["rows"] + per_event["bodies"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.platform()}"
    )
    print(f"night: {args.tps:,} TPS, {args.ballots}, {n:,} events in batches of {args.batch:,}")
    for stage, us in per_event.items():
        print(f"  {stage:8s} {us:8.1f} us/event")
    times = own / per_event["verify"]
    print(
        f"  ours     {own:8.1f} us/event beyond verify (process - verify + rows + bodies): "
        f"{times:.2f}x verify"
    )


if __name__ == "__main__":
    main()
