"""Crash test: SIGKILL workers at random moments while tallies stream in; totals must stay exact.

Simulates N TPS (5% duplicates, 2% corrections), runs two workers in one consumer group, produces
at a bounded rate, and SIGKILLs a random worker K times at random moments (restarting it each
time). Then waits until every event is committed and runs `tally verify`.

Usage (embedded default): .venv/bin/python -m benchmarks.crash [--tps 20000] [--kills 5] [--rate
800] [--seed 1]"""

from __future__ import annotations

import argparse
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streams.clickhouse.client import connect
from streams.embedded import servers
from streams.ops.demo import wait_caught_up
from streams.ops.provenance import provenance
from streams.settings import Settings


def env_of(settings: Settings) -> dict[str, str]:
    import os

    return {**os.environ, **settings.as_env()}


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env_of(settings),
        capture_output=True,
        check=True,
        timeout=600,
    )


@dataclass
class CrashReport:
    events: int
    kills: list[float] = field(default_factory=list)  # seconds after producing started
    catch_up_s: float = 0.0
    processed: int = 0  # events the workers handled, replays after kills included (from their logs)
    # the audit trail, one decision per offset
    decisions: dict[str, int] = field(default_factory=dict)
    expected_duplicates: int = 0  # resends of an event_id in the simulated stream
    differences: list[str] = field(default_factory=list)
    log_leaves: int = 0  # leaves of the transparency log at the end
    log_unique: int = 0  # distinct (ballot, tps, revision) among them
    log_audit: str = ""  # what `tally log audit` said (empty: it did not add up)

    @property
    def replayed(self) -> int:
        return self.processed - self.events

    def replay_from_zero(self, rate: float) -> int:
        """What restarting from offset 0 at each kill would have processed again, at the least."""
        return sum(min(self.events, int(rate * moment)) for moment in self.kills)

    @property
    def exact(self) -> bool:
        return not self.differences


def run_crash(
    settings: Settings,
    work_dir: Path,
    tps: int = 20000,
    kills: int = 5,
    rate: float = 800,
    seed: int = 1,
    log=print,
) -> CrashReport:
    rng = random.Random(seed)
    out = work_dir / "sim"
    cli(
        settings,
        "simulate",
        "--tps",
        str(tps),
        "--seed",
        str(seed),
        "--duplicates",
        "0.05",
        "--corrections",
        "0.02",
        "--out",
        str(out),
        "--dry-run",
    )
    cli(settings, "registry", "load", str(out / "registry.jsonl"))
    events = sum(1 for _ in (out / "events.jsonl").open("rb"))
    report = CrashReport(events)
    logs = [(work_dir / f"worker-{i}.log").open("ab") for i in range(2)]

    def start(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env=env_of(settings),
            stdout=logs[i],
            stderr=subprocess.STDOUT,
        )

    workers = [start(0), start(1)]
    # The transparency log's appender runs through the kills: the log must come out with every
    # applied tally once, whatever the workers replayed.
    settings = settings.override(operator_key=str(work_dir / "operator.key"))
    logger = subprocess.Popen(
        [sys.executable, "-m", "streams", "logger", "--create-key", "--interval", "0.5"],
        env=env_of(settings),
        stdout=(work_dir / "logger.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    log_paths = [work_dir / f"worker-{i}.log" for i in range(2)]
    # log size when each worker (re)started: a batch logged after it means "processing now"
    since = [
        0,
        0,
    ]

    def processing(i: int) -> bool:
        return b"batch: " in log_paths[i].read_bytes()[since[i] :]

    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "produce",
            str(out / "events.jsonl"),
            "--rate",
            str(rate),
        ],
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    started = time.monotonic()
    produce_s = events / rate
    try:
        while len(report.kills) < kills and time.monotonic() - started < produce_s * 3 + 300:
            # Kill only a worker that is handling events right now, at a random moment within its
            # work.
            active = [i for i in range(2) if processing(i)]
            if not active:
                time.sleep(0.05)
                continue
            time.sleep(rng.uniform(0.0, 0.8))
            victim = rng.choice(active)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            report.kills.append(round(time.monotonic() - started, 2))
            log(f"SIGKILL worker {victim} at {report.kills[-1]:.1f}s; restarting it")
            since[victim] = log_paths[victim].stat().st_size
            workers[victim] = start(victim)
        producer.wait(timeout=produce_s * 3 + 120)
        caught = time.monotonic()
        wait_caught_up(settings, events, timeout_s=600)
        report.catch_up_s = time.monotonic() - caught
        report.processed = sum(
            int(n)
            for i in range(2)
            for n in re.findall(
                r"batch: (\d+) events", (work_dir / f"worker-{i}.log").read_text(errors="replace")
            )
        )
        client = connect(settings)
        report.decisions = dict(
            client.query(
                "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
            ).result_rows
        )
        ids = [orjson.loads(line)["event_id"] for line in (out / "events.jsonl").open("rb")]
        report.expected_duplicates = len(ids) - len(set(ids))
        verify = subprocess.run(
            [sys.executable, "-m", "streams", "verify", "--truth", str(out / "truth.jsonl")],
            env=env_of(settings),
            capture_output=True,
            text=True,
            timeout=600,
        )
        report.differences = (
            [line for line in verify.stdout.splitlines() if line.strip()]
            if verify.returncode
            else []
        )
        applied = report.decisions.get("applied", 0)
        deadline = time.monotonic() + 120
        while (
            client.command("SELECT max(size) FROM log_checkpoints") != applied
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)  # the appender's last checkpoint covers every applied tally
        report.log_leaves, report.log_unique = client.query(
            "SELECT count(), uniqExact(ballot, tps, revision) FROM log_leaves FINAL"
        ).result_rows[0]
        audit = subprocess.run(
            [sys.executable, "-m", "streams", "log", "audit"],
            env=env_of(settings),
            capture_output=True,
            text=True,
            timeout=600,
        )
        report.log_audit = audit.stdout.strip().splitlines()[-1] if audit.returncode == 0 else ""
    finally:
        for proc in [*workers, producer, logger]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, logger]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return report


def main() -> None:
    print(f"provenance: {provenance()}", flush=True)  # the commit, the machine, the command
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tps", type=int, default=20000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--rate", type=float, default=800)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=".tally")
    args = parser.parse_args()
    base = Settings.from_env().override(data_dir=args.data_dir)
    run = f"crash{int(time.time())}"
    settings = servers.fresh_pipeline(base, run)
    cli(settings, "init")
    work_dir = Path(base.data_dir) / run
    work_dir.mkdir(parents=True, exist_ok=True)
    report = run_crash(settings, work_dir, args.tps, args.kills, args.rate, args.seed)
    print(
        f"events {report.events}, kills at {report.kills}, catch-up after producing "
        f"{report.catch_up_s:.1f}s, "
        f"events processed {report.processed} ({report.processed / report.events:.2f} per event, "
        "replays included)"
    )
    print(
        "verify: exact at every level"
        if report.exact
        else "verify FAILED:\n" + "\n".join(report.differences[:20])
    )
    sys.exit(0 if report.exact else 1)


if __name__ == "__main__":
    main()
