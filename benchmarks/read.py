"""Read benchmark: p50/p99 of the main endpoints with 50 concurrent readers while ingestion runs,
of every request and of those asked while the producer still produced. Each TPS page is of a TPS
not asked before (until every TPS of the night has been), as on election night: a cached page would
say nothing of how long a reader waits.

Usage: .venv/bin/python -m benchmarks.read [--tps 20000] [--readers 50] [--seconds 20] [--rate 1000]
       [--workers 1] [--ballots PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB] [--as-of] [--json PATH]
With legislative ballots, dapil results and seats (/api/results?dapil=, /api/seats) are read too;
the change feed (/api/changes, the nation's and three provinces') always.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson

from benchmarks.crash import cli, env_of
from streams.clickhouse.client import connect
from streams.embedded import servers
from streams.ops.demo import start_worker
from streams.ops.provenance import provenance
from streams.settings import Settings


async def readers(
    port: int,
    paths: dict[str, list[str]],
    n: int,
    seconds: float,
    producing: Callable[[], bool],
    once: tuple[str, ...] = ("tps detail",),
) -> dict[str, list[tuple[float, bool]]]:
    """(latency in ms, whether the producer was still producing when it was asked) of every request;
    the paths of an endpoint in `once` are each asked once (a TPS page asked again would be the
    API's cached answer) until all have been."""
    latencies: dict[str, list[tuple[float, bool]]] = {name: [] for name in paths}
    rng = random.Random(1)
    fresh = {name: rng.sample(paths[name], len(paths[name])) for name in once if name in paths}
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def reader() -> None:
            while time.monotonic() < deadline:
                name = rng.choice(list(paths))
                path = fresh[name].pop() if fresh.get(name) else rng.choice(paths[name])
                during = producing()
                started = time.perf_counter()
                async with session.get(path) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies[name].append(((time.perf_counter() - started) * 1000, during))

        await asyncio.gather(*(reader() for _ in range(n)))
    return latencies


def decided_events(settings: Settings) -> int:
    """Events the workers have decided (every decision is a row of tally_decisions)."""
    client = connect(settings, read_only=True)
    try:
        return int(client.command("SELECT count() FROM tally_decisions"))
    finally:
        client.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=20000)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--ballots", default="PPWP")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the report here (benchmarks/runs/)")
    parser.add_argument("--data-dir", default=".tally")
    parser.add_argument(
        "--as-of", action="store_true", help="also read province results as of moments of the night"
    )
    args = parser.parse_args()
    base = Settings.from_env().override(data_dir=args.data_dir)
    run = f"read{int(time.time())}"
    settings = servers.fresh_pipeline(base, run)
    work = Path(base.data_dir) / run
    cli(settings, "init")
    cli(
        settings,
        "simulate",
        "--tps",
        str(args.tps),
        "--seed",
        "1",
        "--ballots",
        args.ballots,
        "--out",
        str(work),
        "--dry-run",
    )
    cli(settings, "registry", "load", str(work / "registry.jsonl"))
    events = work / "events.jsonl"
    codes = list(dict.fromkeys(orjson.loads(line)["tps"] for line in events.open("rb")))
    regencies = sorted({c[:4] for c in codes[:2000]})[:8]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workers = [start_worker(settings, f"{run}-worker-{i}.log") for i in range(args.workers)]
    api = subprocess.Popen(
        [sys.executable, "-m", "streams", "serve", "--port", str(port)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    producer = subprocess.Popen(
        [sys.executable, "-m", "streams", "produce", str(events), "--rate", str(args.rate)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
    )
    producing = time.time()
    try:
        time.sleep(8)  # the worker joins; ingestion is under way
        paths = {
            "results national": ["/api/results?level=national"],
            "results province": ["/api/results?level=province"],
            "results one region's children": [
                f"/api/results?region={p}" for p in ("11", "32", "35", "73")
            ],
            "results a regency's districts": [f"/api/results?region={r}" for r in regencies],
            "tps detail": [f"/api/tps/{c}" for c in codes],
            "change feed": [
                "/api/changes?limit=100",
                "/api/changes?order=desc&limit=50",
                *(f"/api/changes?region={p}&order=desc&limit=50" for p in ("11", "32", "35")),
            ],
        }
        if args.as_of:  # moments over the night so far and the read window: each a view of its own
            moments = [producing + i * (8 + args.seconds) / 400 for i in range(400)]
            paths["results province as of a moment"] = [
                f"/api/results?level=province&as_of={m:.6f}" for m in moments
            ]
        contests = [
            orjson.loads(line)
            for line in (work / "registry.jsonl").open("rb")
            if b'"contest"' in line[:20]
        ]
        for ballot in ("DPR", "DPRD_KAB"):
            dapils = [c["dapil"] for c in contests if c["ballot"] == ballot][:20]
            if dapils:
                paths[f"seats {ballot}"] = [f"/api/seats?ballot={ballot}"]
                paths[f"dapil results {ballot}"] = [
                    f"/api/results?ballot={ballot}&dapil={d}" for d in dapils
                ]
        # how far the count kept up while the readers read: events decided in the window
        decided = [decided_events(settings), time.time()]
        latencies = asyncio.run(
            readers(port, paths, args.readers, args.seconds, lambda: producer.poll() is None)
        )
        decided += [decided_events(settings), time.time()]
        ingesting = producer.poll() is None
    finally:
        for proc in (producer, api, *workers):
            proc.send_signal(signal.SIGTERM)
        for proc in (producer, api, *workers):
            proc.wait(timeout=30)
    total = sum(len(v) for v in latencies.values())
    ingest = {
        "decided_per_s_while_reading": round((decided[2] - decided[0]) / (decided[3] - decided[1]))
    }
    print(
        f"the count while reading: {ingest['decided_per_s_while_reading']:,} events/s decided "
        f"(offered {args.rate:,.0f}/s)"
    )
    print(
        f"{args.readers} readers for {args.seconds:.0f}s while producing at {args.rate:.0f} "
        "events/s "
        f"(still ingesting at the end: {ingesting}); {total} requests, {total / args.seconds:.0f}/s"
    )
    endpoints = {}
    for name, values in latencies.items():
        during = [ms for ms, producing in values if producing]
        endpoints[name] = {
            "requests": len(values),
            "p50_ms": round(quantile([ms for ms, _ in values], 0.5), 1),
            "p99_ms": round(quantile([ms for ms, _ in values], 0.99), 1),
            "while_producing": {
                "requests": len(during),
                "p50_ms": round(quantile(during, 0.5), 1),
                "p99_ms": round(quantile(during, 0.99), 1),
            },
        }
        e, w = endpoints[name], endpoints[name]["while_producing"]
        print(
            f"  {name:32s} n={e['requests']:6d}  p50 {e['p50_ms']:7.1f} ms  p99 "
            f"{e['p99_ms']:7.1f} ms;  while producing n={w['requests']:6d}  p50 "
            f"{w['p50_ms']:7.1f} ms  p99 {w['p99_ms']:7.1f} ms"
        )
    if args.json is not None:
        report = {
            "read": endpoints,
            "readers": args.readers,
            "seconds": args.seconds,
            "rate": args.rate,
            "workers": args.workers,
            "tps": args.tps,
            "ballots": args.ballots,
            "ingesting_at_the_end": ingesting,
            "ingest": ingest,
            "provenance": provenance(),
        }
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
