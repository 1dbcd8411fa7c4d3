"""Before and after, in the pure core: what `Processor.process` and the insert bodies cost an event,
with the collector paused as the worker pauses it and a no-op verifier (the Ed25519 checks are the
same on both sides). Run from each tree in turn, its own `streams` first on the path:

    cd <tree> && PYTHONPATH=<tree> <venv>/bin/python <this file> [--tps 4000]

Works on trees before the columnar bodies (`json_lines`, issue 18's fourth session) and after them.
"""

from __future__ import annotations

import argparse
import gc
import time

import streams
from streams.clickhouse import sink
from streams.core.pipeline import Message, Processor
from streams.core.registry import Registry
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.ops.provenance import provenance


def bodies(batch) -> None:
    if hasattr(sink, "json_columns"):
        sink.json_columns(batch.totals.as_columns(0))
        for rows, table in ((batch.decisions, sink.DECISIONS), (batch.current, sink.CURRENT)):
            sink.json_columns(sink.columns_of(rows, len(table.columns)))
    else:  # before: JSONCompactEachRow
        for rows in (batch.totals.as_rows(0), batch.decisions, batch.current):
            sink.json_lines(rows)


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=4000)
    parser.add_argument("--ballots", default="PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape, stream, _ = generate(
        Plan(args.tps, 1, tuple(args.ballots.split(",")), duplicates=0.02, corrections=0.02)
    )
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    batches = [
        [Message(o, raw, 0.0) for o, raw in enumerate(events[s : s + 5000], s)]
        for s in range(0, len(events), 5000)
    ]
    best = {"process": float("inf"), "bodies": float("inf")}
    for _ in range(args.repeat):
        processor = Processor(lambda: registry, verifier=lambda jobs: lambda: [None] * len(jobs))
        processor.preload(0, [], {})
        gc.collect()
        gc.disable()
        started = time.process_time()
        out = [processor.process("t", 0, batch) for batch in batches]
        decided = time.process_time()
        for batch in out:
            bodies(batch)
        done = time.process_time()
        gc.enable()
        best["process"] = min(best["process"], (decided - started) / len(events) * 1e6)
        best["bodies"] = min(best["bodies"], (done - decided) / len(events) * 1e6)
    print(
        streams.__file__,
        {stage: round(us, 1) for stage, us in best.items()},
        "us an event, best of",
        args.repeat,
    )


if __name__ == "__main__":
    main()
