"""Export flood benchmark: how long an ordinary, uncached API request takes alone, while N exports
are asked at once, and after them, on one counted night (the embedded default, one worker, log on).

Each ordinary request is a TPS never asked before (`/api/tps/{code}`: not cached). The yardstick is
the same kind of request measured alone in the same run, before the flood.

Usage: .venv/bin/python -m benchmarks.export_flood [--tps 5000] [--exports 200] [--level tps]
       [--data-dir .tally] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from benchmarks.crash import cli, env_of
from benchmarks.read import quantile
from streams.embedded import servers
from streams.ops.demo import start_worker, wait_caught_up
from streams.ops.provenance import provenance
from streams.settings import Settings


async def ordinary(
    session: aiohttp.ClientSession, codes: list[str], n: int, gap_s: float = 0.0
) -> list[float]:
    """`n` uncached TPS views one after another: each one's time in ms."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(f"/api/tps/{codes.pop()}") as response:
            await response.read()
            assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(gap_s)
    return times


async def flood(port: int, codes: list[str], exports: int, level: str) -> dict:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:
        alone = await ordinary(session, codes, 50)
        statuses: list[int] = []

        async def export() -> None:
            async with session.get(f"/api/export/PPWP/{level}/votes.csv") as response:
                await response.read()
                statuses.append(response.status)

        started = time.perf_counter()
        asking = [asyncio.create_task(export()) for _ in range(exports)]
        await asyncio.sleep(0.2)
        during = await ordinary(session, codes, 50, 0.05)
        await asyncio.gather(*asking)
        flood_s = time.perf_counter() - started
        after = await ordinary(session, codes, 50)
    return {
        "alone": alone,
        "during": during,
        "after": after,
        "statuses": statuses,
        "flood_s": flood_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=5000)
    parser.add_argument("--exports", type=int, default=200)
    parser.add_argument("--level", default="tps")
    parser.add_argument("--data-dir", default=".tally")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = Settings.from_env().override(data_dir=args.data_dir)
    run = f"flood{int(time.time())}"
    settings = servers.fresh_pipeline(base, run)
    work = Path(base.data_dir) / run
    cli(settings, "init")
    cli(
        settings, "simulate", "--tps", str(args.tps), "--seed", "3", "--out", str(work), "--dry-run"
    )
    cli(settings, "registry", "load", str(work / "registry.jsonl"))
    events = work / "events.jsonl"
    codes = list(dict.fromkeys(orjson.loads(line)["tps"] for line in events.open("rb")))
    worker = start_worker(settings, f"{run}-worker.log")
    cli(settings, "produce", str(events))
    wait_caught_up(settings, sum(1 for _ in events.open("rb")), timeout_s=900)
    port = servers.free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "streams", "serve", "--port", str(port)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        while not servers.port_open("127.0.0.1", port):
            time.sleep(0.1)
        time.sleep(2)
        report = asyncio.run(flood(port, codes, args.exports, args.level))
    finally:
        for proc in (api, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (api, worker):
            proc.wait(timeout=30)
    summary = {
        "provenance": provenance(),
        "tps": args.tps,
        "exports": args.exports,
        "level": args.level,
        "streamed": report["statuses"].count(200),
        "refused_503": report["statuses"].count(503),
        "flood_s": round(report["flood_s"], 1),
    }
    for phase in ("alone", "during", "after"):
        values = report[phase]
        summary[phase] = {
            "p50_ms": round(quantile(values, 0.5), 1),
            "p99_ms": round(quantile(values, 0.99), 1),
            "max_ms": round(max(values), 1),
        }
    summary["during_p99_over_alone_p99"] = round(
        summary["during"]["p99_ms"] / summary["alone"]["p99_ms"], 2
    )
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    if args.json:
        args.json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
