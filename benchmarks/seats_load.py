"""Do seats slow the workers? `tally bench` with, beside it, `tally serve` on the bench's database
and readers that keep every legislative ballot's seats and some dapil pages asked for the whole
time.

Usage: .venv/bin/python -m benchmarks.seats_load --data-dir FRESH [--tps 100000] [--workers 2]
[--readers 10] [--control] Compare its `events_per_s` and `latency_p99_ms` with a plain `tally
bench` of the same arguments run in the same session (RESULTS.md, issue 15)."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import clickhouse_connect
import orjson

from benchmarks.crash import env_of
from streams.embedded import servers
from streams.ops.provenance import provenance
from streams.settings import Settings

BALLOTS = "PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB"


def bench_database(data_dir: Path) -> tuple[str, str] | None:
    """(ClickHouse address, the bench's database) once the bench has loaded its registry; the data
    dir must be fresh, so that the only bench database in it is this run's."""
    try:
        users = orjson.loads((data_dir / servers.USERS).read_bytes())
        address = servers.credited(
            orjson.loads((data_dir / "clickhouse.json").read_bytes())["address"],
            servers.WRITER,
            users[servers.WRITER],
        )
        admin = clickhouse_connect.get_client(dsn=f"{address}/default")
        rows = admin.query(
            "SELECT database FROM system.tables WHERE name = 'registry_loads' AND "
            "startsWith(database, 'bench')"
        ).result_rows
        for (database,) in rows:
            if admin.command(f"SELECT count() FROM `{database}`.registry_loads"):
                return address, database
    except Exception:  # noqa: BLE001 - not up yet
        return None
    return None


async def read_views(
    port: int, readers: int, stop: threading.Event, counts: dict[str, int], control: bool
) -> None:
    """Readers, each asking every 0.2 s: seats and dapil pages, or (`control`) as many region views,
    which cost the API the same HTTP work but ClickHouse next to nothing."""
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        dapils = {}
        for ballot in ("DPR", "DPRD_KAB"):
            async with session.get(f"/api/dapils?ballot={ballot}") as response:
                dapils[ballot] = [d["dapil"] for d in (await response.json())["dapils"]][:20]

        async def reader(i: int) -> None:
            paths = [f"/api/seats?ballot={b}" for b in ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB")]
            paths += [f"/api/results?ballot={b}&dapil={d}" for b, ds in dapils.items() for d in ds]
            if control:
                paths = [f"/api/results?ballot={b}&level=national" for b in BALLOTS.split(",")] * (
                    len(paths) // 5 + 1
                )
            n = i
            while not stop.is_set():
                async with session.get(paths[n % len(paths)]) as response:
                    await response.read()
                    counts[str(response.status)] = counts.get(str(response.status), 0) + 1
                n += 1
                await asyncio.sleep(0.2)

        await asyncio.gather(*(reader(i) for i in range(readers)))


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--tps", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument(
        "--data-dir", required=True, help="a fresh directory: its only bench database is this run's"
    )
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--control", action="store_true", help="read national results instead of seats and dapils"
    )
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    command = [
        sys.executable,
        "-m",
        "streams",
        "bench",
        "--tps",
        str(args.tps),
        "--ballots",
        BALLOTS,
    ]
    command += ["--workers", str(args.workers), "--data-dir", str(data_dir)] + (
        ["--json", args.json] if args.json else []
    )
    bench = subprocess.Popen(command)
    found = None
    while found is None and bench.poll() is None:
        time.sleep(1)
        found = bench_database(data_dir)
    if found is None:
        sys.exit(bench.wait())
    address, database = found
    settings = Settings.from_env().override(clickhouse=f"{address}/{database}", data_dir=data_dir)
    api = subprocess.Popen(
        [sys.executable, "-m", "streams", "serve", "--port", str(args.port)],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    time.sleep(3)
    stop = threading.Event()
    counts: dict[str, int] = {}
    readers = threading.Thread(
        target=lambda: asyncio.run(read_views(args.port, args.readers, stop, counts, args.control)),
        daemon=True,
    )
    readers.start()
    code = bench.wait()
    stop.set()
    readers.join(timeout=10)
    api.terminate()
    api.wait(timeout=10)
    print(
        f"{'national results' if args.control else 'seats and dapil pages'} read during the bench: "
        f"{counts}"
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
