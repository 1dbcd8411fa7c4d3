"""Export benchmark: `tally export` of a counted night, its time, its size, and the memory it takes
on both sides (the CLI's peak RSS, and how far the embedded ClickHouse server's RSS rose while it
ran).

Usage: .venv/bin/python -m benchmarks.export --database bench1795998000 [--ballot PPWP]
       [--level tps] [--format csv] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from benchmarks.crash import env_of
from streams.embedded import servers
from streams.ops.provenance import provenance
from streams.settings import Settings


def rss_mib(pid: int) -> float:
    line = next(
        x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS")
    )
    return int(line.split()[1]) / 1024


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", required=True)
    parser.add_argument("--ballot", default="PPWP")
    parser.add_argument("--level", default="tps")
    parser.add_argument("--format", default="csv")
    parser.add_argument("--out", default="/tmp/tally-export")
    parser.add_argument("--data-dir", default=".tally")
    args = parser.parse_args()
    base = Settings.from_env().override(data_dir=args.data_dir)
    server = (
        base.clickhouse.rsplit("/", 1)[0]
        if base.clickhouse
        else servers.ensure(base, servers.CLICKHOUSE)
    )
    settings = base.override(clickhouse=f"{server}/{args.database}")
    record = Path(base.data_dir) / "clickhouse.json"  # the embedded server's pid (servers.py)
    pid = int(orjson.loads(record.read_bytes())["pid"]) if record.exists() else None
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set() and pid:
            samples.append(rss_mib(pid))
            time.sleep(0.2)

    before = rss_mib(pid) if pid else float("nan")
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    scope = ["--dapil"] if args.level == "dapil" else ["--level", args.level]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "export",
            "--ballot",
            args.ballot,
            *scope,
            "--format",
            args.format,
            "--out",
            args.out,
        ],
        env=env_of(settings),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    took = time.perf_counter() - started
    done.set()
    watcher.join()
    manifest = orjson.loads((Path(args.out) / "MANIFEST.json").read_bytes())
    size = sum(f["bytes"] for f in manifest["files"])
    rows = {f["name"]: f["rows"] for f in manifest["files"]}
    cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"export {args.ballot} {args.level} {args.format}: {took:.1f}s, {size / 2**20:.1f} MiB "
        f"written, rows {rows}; "
        f"CLI peak RSS {cli_peak:.0f} MiB; server RSS {before:.0f} MiB before, peak "
        f"{max(samples, default=before):.0f} MiB"
    )


if __name__ == "__main__":
    main()
