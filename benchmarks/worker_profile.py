"""Where a running worker's CPU goes, by stage: py-spy's samples of every thread, each sample put in
the stage of the deepest frame that names one (issue 18).

Record while a bench's workers catch up (the worker's pid from `pgrep -f "streams worker"`):

    .venv/bin/py-spy record -p PID -d 9 -r 250 -f raw -o worker.raw --nonblocking
    .venv/bin/python benchmarks/worker_profile.py worker.raw [--us-per-event 270.9]

With `--us-per-event` (the bench's `worker_cpu_us_per_event` of the same run), each share is also
given in us an event. Samples of threads waiting in the kernel are not taken (py-spy's default), so
the shares are of CPU, near enough; `--nonblocking` keeps py-spy from pausing the worker.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from streams.ops.provenance import provenance

# First match wins, tested on each frame from the deepest up: a frame of ours that calls into a
# library is charged to our stage, a library frame with none of ours below it to the library.
STAGES = (
    ("verify (Ed25519, on the verify threads)", r"verify_threads|nacl/"),
    ("decode and canonical forms", r"core/contract\.py"),
    ("signature rules", r"core/signatures\.py"),
    ("validation (C1 equations, registry)", r"core/validate\.py"),
    ("aggregation (vectors, roll-up, totals columns)", r"core/aggregate\.py"),
    ("decisions and state", r"core/(revisions|state|pipeline)\.py"),
    ("insert bodies and columns (sink)", r"clickhouse/sink\.py"),
    ("HTTP client (clickhouse-connect, urllib3)", r"clickhouse_connect|urllib3|http/client"),
    ("Kafka client (aiokafka)", r"aiokafka/"),
    ("faust, mode, the worker's loop", r"faust/|mode/|kafka/(worker|bulk)\.py"),
    ("asyncio and selectors", r"asyncio/|selectors\.py"),
)
_PATTERNS = [(name, re.compile(pattern)) for name, pattern in STAGES]


def stage_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in _PATTERNS:
            if pattern.search(frame):
                return name
    return "other"


def shares(lines: list[str]) -> tuple[Counter[str], int]:
    counted: Counter[str] = Counter()
    for line in lines:
        stack, _, samples = line.rstrip().rpartition(" ")
        if stack:
            counted[stage_of(stack.split(";"))] += int(samples)
    return counted, sum(counted.values())


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("raw", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--us-per-event", type=float, help="the run's worker_cpu_us_per_event")
    args = parser.parse_args()
    counted, total = shares(args.raw.read_text().splitlines())
    print(f"| stage | share of samples |{' us an event |' if args.us_per_event else ''}")
    print(f"|---|---|{'---|' if args.us_per_event else ''}")
    for name, samples in counted.most_common():
        share = samples / total
        cost = f" {share * args.us_per_event:.0f} |" if args.us_per_event else ""
        print(f"| {name} | {100 * share:.1f}% |{cost}")
    print(f"\n{total} samples")


if __name__ == "__main__":
    main()
