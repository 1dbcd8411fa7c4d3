"""Time and memory of the simulator: generate a night, then write its truth (no broker, no
ClickHouse).

.venv/bin/python -m benchmarks.simulate --tps 100000 --ballots PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from pathlib import Path

from streams.gateways.simulate import Plan, generate
from streams.ops.provenance import provenance


def rss_mib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


class Discard(io.RawIOBase):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=100_000)
    parser.add_argument("--ballots", default="PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    plan = Plan(
        args.tps,
        args.seed,
        tuple(args.ballots.split(",")),
        duplicates=0.05,
        corrections=0.01,
        invalid=0.005,
    )
    started = time.perf_counter()
    _, events, truth = generate(plan)
    count = sum(1 for _ in events)
    generated = time.perf_counter()
    print(
        f"{count:,} events for {len(truth.current):,} keys in {generated - started:.1f} s; RSS "
        f"{rss_mib()} MiB"
    )
    truth.write_lines(Discard())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"truth written in {time.perf_counter() - generated:.1f} s; RSS {rss_mib()} MiB, peak "
        f"{peak} MiB"
    )


if __name__ == "__main__":
    main()
