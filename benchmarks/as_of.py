"""As-of benchmark: how fast results as of a past moment answer, beside the same results now.

Reads a night already counted (e.g. the database a `tally bench` left: `bench<time>`), and times, in
one run and alternating so that both see the same machine: a province's results as of a random
moment of the night (uniform between its first and last change), and the same province's results
now; both straight through `streams.read.results` (no cache) and the as-of ones also through `tally
serve` (every moment a new one, so no answer comes from its cache).

Usage: .venv/bin/python -m benchmarks.as_of --database bench1795998000 [--ballot PPWP] [--queries
300]"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson

from benchmarks.crash import env_of
from streams.clickhouse.client import connect
from streams.embedded import servers
from streams.ops.provenance import provenance
from streams.read.results import results
from streams.settings import Settings


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--ballot", default="PPWP")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data-dir", default=".tally")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = Settings.from_env().override(data_dir=args.data_dir)
    server = (
        base.clickhouse.rsplit("/", 1)[0]
        if base.clickhouse
        else servers.ensure(base, servers.CLICKHOUSE)
    )
    settings = base.override(clickhouse=f"{server}/{args.database}")
    client = connect(settings)
    first, last, changes = client.query(
        "SELECT min(decided_at), max(decided_at), count() FROM region_totals WHERE ballot = "
        "{b:String} AND level = 'tps'",
        parameters={"b": args.ballot},
    ).result_rows[0]
    provinces = [
        c
        for (c,) in client.query(
            "SELECT code FROM regions WHERE level = 'province' ORDER BY code"
        ).result_rows
    ]
    rng = random.Random(args.seed)
    span = (last - first).total_seconds()
    print(
        f"{args.database}: {changes:,} changes of {args.ballot} over {span:.0f}s, {len(provinces)} "
        "provinces"
    )

    def moment() -> datetime:
        return (first + timedelta(seconds=rng.uniform(0, span))).replace(tzinfo=UTC)

    timings: dict[str, list[float]] = {
        "as of (function)": [],
        "now (function)": [],
        "as of (HTTP API)": [],
    }
    for _ in range(args.queries):
        province = rng.choice(provinces)
        for name, when in (("as of (function)", moment()), ("now (function)", None)):
            started = time.perf_counter()
            results(client, args.ballot, None, province, when)
            timings[name].append((time.perf_counter() - started) * 1000)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = subprocess.Popen(
        [sys.executable, "-m", "streams", "serve", "--port", str(port)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/openapi.json", timeout=2
                ).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(5)  # the server warms its live views first; let it
        for _ in range(args.queries):
            when = moment().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            path = f"/api/results?ballot={args.ballot}&region={rng.choice(provinces)}&as_of={when}"
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
                orjson.loads(response.read())
            timings["as of (HTTP API)"].append((time.perf_counter() - started) * 1000)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
    now_p99 = quantile(timings["now (function)"], 0.99)
    for name, values in timings.items():
        p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
        print(
            f"  {name:20s} n={len(values):5d}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  p99 / now p99 "
            f"{p99 / now_p99:5.2f}"
        )


if __name__ == "__main__":
    main()
