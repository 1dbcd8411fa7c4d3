"""`tally bench`: the whole pipeline on the embedded default, against a baseline measured in the
same run.

Phases: simulate -> produce a backlog -> baseline (plain aiokafka consumer, orjson, raw rows into
ClickHouse: the ceiling of this stack on this box) -> tally workers catch up on the same backlog ->
latency at an offered rate -> worker CPU and peak RSS -> `verify` (the run fails if not exact).
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.clickhouse.client import apply_schema, connect
from streams.clickhouse.registry_store import load_registry
from streams.clickhouse.schema import sql_statements
from streams.core.seats import LEGISLATIVE
from streams.embedded import servers
from streams.gateways.gateway import run_simulation
from streams.gateways.registry_file import read_records
from streams.gateways.simulate import Plan
from streams.gateways.truth import TRUTH, TRUTH_TPS
from streams.kafka.produce import create_topics, publish
from streams.ops.demo import start_worker, wait_caught_up
from streams.ops.provenance import provenance
from streams.ops.yardstick import verification_us
from streams.read.dapils import seats
from streams.read.results import read_truth, verify
from streams.settings import SUBMISSIONS, Settings

RATE_2024_TPS_PER_S = 4.7  # overnight, 14-15 February 2024 (../shared/reference/pemilu-2024.md)
BENCH_SQL = Path(__file__).resolve().parents[2] / "schemas" / "bench" / "raw.sql"


@dataclass
class BenchReport:
    command: str
    machine: str
    tps: int
    ballots: str
    workers: int
    events: int = 0
    backlog_events: int = 0
    tail_events: int = 0
    produce_events_per_s: float = 0.0
    baseline_events_per_s: float = 0.0
    join_s: float = 0.0
    catch_up_s: float = 0.0
    events_per_s: float = 0.0
    ratio_to_baseline: float = 0.0
    offered_rate: float = 0.0
    offered_rate_measured: float = 0.0  # from the Kafka timestamps of the phase's events
    latency_events: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    worker_cpu_s: list[float] = field(default_factory=list)
    worker_peak_rss_mib: list[float] = field(default_factory=list)
    # Seconds to compute every dapil's seats of each legislative ballot from the totals (as `tally
    # seats` and the API do), once the backlog is counted.
    seats_s: dict[str, float] = field(default_factory=dict)
    # With --log: the transparency log's appender ran beside the workers from their start.
    log: bool = False
    log_leaves: int = 0
    log_behind_s: float = (
        0.0  # after the workers caught up, until the last checkpoint covered every leaf
    )
    logger_cpu_s: float = 0.0
    logger_peak_rss_mib: float = 0.0
    # The fair limit: the necessary baseline (consume, decode, verify every signature with the
    # worker's verifier, insert raw rows; as many processes as workers), the verifier's own cost per
    # event, and the workers' CPU per event, all in this run.
    necessary_events_per_s: float = 0.0
    ratio_to_necessary: float = 0.0
    verify_us: float = 0.0
    # One Ed25519 verification alone (streams.ops.yardstick), the best round before and after the
    # run, and the smaller of the two: the yardstick every "x verify" is taken against.
    verify_alone_before_us: float = 0.0
    verify_alone_after_us: float = 0.0
    verify_alone_us: float = 0.0
    signed_bytes: int = 0  # the mean size of the night's signed forms, the yardstick's message
    worker_per_verify: float = 0.0  # worker CPU an event / verify_alone_us
    # The latency phases, one an offered rate, lowest first: offered and measured events/s, events,
    # p50 and p99 ms. `rate_held` is the highest offered rate whose p99 stayed under 1 s (None:
    # none did); the latency_* fields above are the last phase's.
    phases: list[dict] = field(default_factory=list)
    rate_held: float | None = None
    worker_cpu_us_per_event: float = 0.0
    # CPU per event of the embedded ClickHouse and broker while the workers caught up (0 where they
    # are not local processes): on a box of few cores they share the cores with the workers.
    clickhouse_cpu_us_per_event: float = 0.0
    broker_cpu_us_per_event: float = 0.0
    # The 2024 night's fastest arrival: 4.7 TPS a second overnight (pemilu-2024.md), each TPS
    # sending one form per ballot. How many times that the workers caught up, and how long this
    # backlog took against how long it took to arrive at that rate.
    rate_2024_events_per_s: float = 0.0
    times_2024_rate: float = 0.0
    backlog_arrival_s_at_2024_rate: float = 0.0
    exact: bool = False
    verify_s: float = (
        0.0  # `verify`'s time: the truth's TPS loaded into ClickHouse, every level compared
    )
    differences: list[str] = field(default_factory=list)


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def baseline(settings: Settings, bootstrap: str, expected: int, progress: Progress) -> float:
    """A plain aiokafka consumer: orjson decode, raw rows into ClickHouse, no validation or
    dedupe."""
    client = connect(settings)
    for statement in sql_statements(BENCH_SQL):
        client.command(statement)
    consumer = AIOKafkaConsumer(
        settings.topic(SUBMISSIONS),
        bootstrap_servers=bootstrap,
        group_id=f"{settings.namespace}baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    task = progress.add_task("baseline: aiokafka -> orjson -> ClickHouse", total=expected)
    done = 0
    started = time.perf_counter()
    try:
        while done < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=20000)
            rows = []
            for messages in batches.values():
                for message in messages:
                    done += 1
                    try:
                        e = orjson.loads(message.value)
                        rows.append(
                            (
                                e["event_id"],
                                e["tps"],
                                e["ballot"],
                                e["revision"],
                                e["votes"],
                                e["invalid"],
                            )
                        )
                    except (orjson.JSONDecodeError, KeyError, TypeError):
                        continue  # the baseline drops what it cannot read; tally would reject it
            if rows:
                await asyncio.to_thread(
                    client.insert,
                    "bench_raw",
                    rows,
                    column_names=["event_id", "tps", "ballot", "revision", "votes", "invalid"],
                )
            if batches:
                await consumer.commit()
            progress.update(task, completed=done)
    finally:
        await consumer.stop()
    return done / (time.perf_counter() - started)


def necessary(
    settings: Settings, run: str, members: int, expected: int, progress: Progress
) -> float:
    """Events/s of the necessary baseline (`streams.ops.necessary`), `members` processes in one
    group, from the first fetch with events to the last commit (the workers' catch-up is timed the
    same way: from when they hold their partitions)."""
    task = progress.add_task(f"necessary: decode, verify, insert ({members} processes)", total=None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "streams.ops.necessary", f"{settings.namespace}necessary"],
            env={**os.environ, **settings.as_env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(members)
    ]
    reports = [orjson.loads(p.communicate(timeout=3600)[0].splitlines()[-1]) for p in procs]
    progress.update(task, total=1, completed=1)
    handled = sum(r["handled"] for r in reports)
    if handled < expected:
        raise RuntimeError(f"the necessary baseline handled {handled} of {expected} events")
    span = max(r["last"] for r in reports) - min(r["first"] for r in reports if r["first"])
    return handled / span


def verify_cost(settings: Settings, events_file: Path, n: int = 3000) -> tuple[float, int]:
    """Microseconds a signature check takes in this run (`check_signature`, as the worker calls it:
    the canonical form, the key lookup, Ed25519), over the first `n` signed events of the night,
    and the mean size of their signed forms."""
    from streams.clickhouse.registry_store import read_registry
    from streams.core.contract import decode_tally
    from streams.core.signatures import check_signature

    keys = read_registry(connect(settings)).keys
    tallies = []
    with events_file.open("rb") as lines:
        for line in lines:
            tally = decode_tally(line.rstrip(b"\n")).tally
            if tally is not None and tally.sig is not None:
                tallies.append(tally)
            if len(tallies) == n:
                break
    started = time.perf_counter()
    for tally in tallies:
        check_signature(tally, keys, True, 0.0)
    spent = round(1e6 * (time.perf_counter() - started) / max(1, len(tallies)), 1)
    size = round(sum(len(t.forms.signed) for t in tallies) / max(1, len(tallies)))
    return spent, size


TPS_FIELD = re.compile(rb'"tps":"([^"]*)"')


def tail_of(share: float) -> Callable[[bytes], bool]:
    """Whether an event belongs to the latency phase: every event of about `share` of the TPS,
    chosen by a hash of the TPS code. The phase then offers what the night offers (first reports,
    duplicates, corrections, broken events) and each TPS's events stay in order; the last lines of
    the file would be mostly late duplicates, which cost a worker less than first reports."""
    return tail_slice(0.0, share)


def tail_slice(start: float, end: float) -> Callable[[bytes], bool]:
    """Whether an event's TPS falls in [start, end) of the hash range: disjoint slices make the
    latency phases of several offered rates, each with TPS of its own."""
    low, high = round(start * 10_000), round(end * 10_000)

    def in_tail(line: bytes) -> bool:
        match = TPS_FIELD.search(line)
        return match is not None and low <= zlib.crc32(match.group(1)) % 10_000 < high

    return in_tail


def backlog_of(path: Path, in_tail: Callable[[bytes], bool], tail: list[bytes]) -> Iterator[bytes]:
    """The events of an events file in order, read as they are sent (five ballots are ~5 GB), except
    the tail's, which are appended to `tail` for the latency phase: one pass over the file."""
    with path.open("rb") as lines:
        for line in lines:
            event = line.rstrip(b"\n")
            if in_tail(event):
                tail.append(event)
            else:
                yield event


PHASE_FIELDS = ("offered", "events", "measured", "p50_ms", "p99_ms")
HELD_P99_MS = 1000.0  # a rate is held while the p99 from submit to visible stays under this
SIGNED_BYTES_GUESS = 350  # a presidential tally's signed form; the night's own mean is used after


def offer(
    settings: Settings,
    events: list[bytes],
    rate: float,
    expected: int,
    workers: list[subprocess.Popen],
    progress: Progress,
) -> tuple[int, float, float, float]:
    """Offer `events` at `rate` events/s once the backlog is counted, wait until every event sent
    so far (`expected`) is decided, and measure this phase's latency."""
    task = progress.add_task(f"offering {rate:.0f} events/s", total=len(events))
    phase = time.time()
    asyncio.run(
        publish(
            settings.kafka,
            settings.topic(SUBMISSIONS),
            events,
            rate,
            progress=lambda n: progress.update(task, completed=n),
        )
    )
    wait_caught_up(settings, expected, timeout_s=600, workers=workers)
    return latency(connect(settings), phase)


def latency(client: Client, since: float) -> tuple[int, float, float, float]:
    """(events, offered events/s, p50 ms, p99 ms) of the events received since `since`: from the
    Kafka timestamp to visible at every level. An applied tally is visible once its `tally_current`
    row is written (districts and villages are summed from it; the sink writes it last); any other
    decision once it is written (`decided_at`)."""
    count, rate, p50, p99 = client.query(
        """
        SELECT count(),
               (count() - 1) / greatest(
                   0.001, dateDiff('millisecond', min(received_at), max(received_at)) / 1000
               ),
               quantileExact(0.5)(ms), quantileExact(0.99)(ms)
        FROM (
            SELECT d.received_at AS received_at,
                   dateDiff('millisecond', d.received_at,
                            greatest(d.decided_at, c.written_at)) AS ms
            FROM (SELECT * FROM tally_decisions FINAL
                  WHERE received_at >= fromUnixTimestamp64Milli({t:Int64})) AS d
            LEFT JOIN (
                SELECT ballot, tps, src_partition, src_offset, written_at FROM tally_current
                WHERE (ballot, tps) IN (
                    SELECT ballot, tps FROM tally_decisions
                    WHERE received_at >= fromUnixTimestamp64Milli({t:Int64})
                )
            ) AS c
            ON c.ballot = d.ballot AND c.tps = d.tps
           AND c.src_partition = d.src_partition AND c.src_offset = d.src_offset
        )
        """,
        parameters={"t": int(since * 1000)},
    ).result_rows[0]
    return int(count), float(rate), float(p50), float(p99)


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MiB) of a live process, from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next(
        line
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM")
    )
    return cpu, int(hwm.split()[1]) / 1024


def server_cpu(settings: Settings) -> tuple[float, float]:
    """CPU seconds so far of the embedded ClickHouse and broker, each with its child processes (the
    broker's record names the `tally broker` process, which runs Tansu as its child); 0 for one that
    is not ours."""
    found = (servers.read_record(settings, name) for name in ("clickhouse", "broker"))
    return tuple(
        sum(proc_stats(p)[0] for p in _with_children(r.pid)) if r is not None else 0.0
        for r in found
    )  # type: ignore[return-value]


def _with_children(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


def run_bench(
    base: Settings,
    tps: int,
    ballots: str,
    n_workers: int,
    rates: list[float],
    latency_s: float,
    seed: int,
    json_path: Path | None,
    command: str,
    with_log: bool = False,
) -> int:
    """A night from backlog to exact totals (benchmarks/RESULTS.md, "Method"): the steps below, in
    order, each filling its part of the report."""
    console = Console()
    rates = sorted(rates)
    alone_before = verification_us(SIGNED_BYTES_GUESS)
    run = f"bench{int(time.time())}"
    settings = servers.fresh_pipeline(base, run)
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python "
    machine += platform.python_version()
    report = BenchReport(
        command, machine, tps, ballots, n_workers, offered_rate=rates[-1], log=with_log
    )
    settings = settings.override(log=with_log)  # off: no signed events kept, no appender runs
    asyncio.run(create_topics(settings, settings.kafka))
    apply_schema(settings)
    out = base.embedded_dir / run
    plan = Plan(
        tps, seed, tuple(ballots.split(",")), duplicates=0.05, corrections=0.01, invalid=0.005
    )
    report.events = run_simulation(settings, plan, out, dry_run=True, rate=None)
    load_registry(connect(settings), read_records(out / "registry.jsonl"))
    in_tail, tails = _phase_tails(rates, latency_s, report.events)
    started: list[subprocess.Popen] = []
    try:
        with progress_bar(console) as progress:
            backlog = _produce(settings, report, out / "events.jsonl", in_tail, progress)
            report.baseline_events_per_s = asyncio.run(
                baseline(settings, settings.kafka, backlog, progress)
            )
            report.necessary_events_per_s = necessary(settings, run, n_workers, backlog, progress)
            report.verify_us, report.signed_bytes = verify_cost(settings, out / "events.jsonl")
            workers, logger = _start(settings, base, run, out, report, started)
            _catch_up(settings, report, plan, backlog, workers, progress)
            _latency_phases(settings, report, rates, tails, backlog, workers, progress)
        _after_the_night(settings, report, plan, workers, alone_before)
        if logger is not None:
            _wait_for_the_log(settings, report, logger, base.embedded_dir / f"{run}-logger.log")
    finally:
        _stop(started)
    return _verify_and_write(settings, report, out, json_path, console)


def _phase_tails(
    rates: list[float], latency_s: float, events: int
) -> tuple[Callable[[bytes], bool], list[list[bytes]]]:
    """Which events are held back from the backlog for the latency phases, and the lists they go
    to, one a rate: each phase's share of the TPS is enough events for `latency_s` at its rate, at
    most half the night in all."""
    shares = [r * latency_s / max(1, events) for r in rates]
    scale = min(1.0, 0.5 / max(1e-9, sum(shares)))
    edges = [0.0]
    for share in shares:
        edges.append(edges[-1] + share * scale)
    slices = [tail_slice(a, b) for a, b in zip(edges, edges[1:], strict=False)]
    tails: list[list[bytes]] = [[] for _ in rates]

    def in_tail(line: bytes) -> bool:
        for held, part in zip(slices, tails, strict=True):
            if held(line):
                part.append(line)
                return True
        return False

    return in_tail, tails


def _produce(
    settings: Settings,
    report: BenchReport,
    events_file: Path,
    in_tail: Callable[[bytes], bool],
    progress: Progress,
) -> int:
    """Every event of the night but the phases' onto the broker first: the backlog."""
    task = progress.add_task("producing the backlog", total=report.events)
    started = time.perf_counter()
    tail: list[bytes] = []
    backlog = report.backlog_events = asyncio.run(
        publish(
            settings.kafka,
            settings.topic(SUBMISSIONS),
            backlog_of(events_file, in_tail, tail),
            None,
            progress=lambda n: progress.update(task, completed=n),
        )
    )
    progress.update(task, total=backlog)
    report.tail_events = len(tail)
    report.produce_events_per_s = backlog / (time.perf_counter() - started)
    return backlog


def _start(
    settings: Settings,
    base: Settings,
    run: str,
    out: Path,
    report: BenchReport,
    started: list[subprocess.Popen],
) -> tuple[list[subprocess.Popen], subprocess.Popen | None]:
    """The workers (and with the log, its appender), until every worker holds its leases."""
    began = time.perf_counter()
    logs = [base.embedded_dir / f"{run}-worker-{i}.log" for i in range(report.workers)]
    workers = [start_worker(settings, log.name, loglevel="info") for log in logs]
    started += workers
    logger = None
    if report.log:
        logged = settings.override(operator_key=str(out / "operator.key"))
        logger = subprocess.Popen(
            [sys.executable, "-m", "streams", "logger", "--create-key"],
            env={**os.environ, **logged.as_env()},
            stdout=(base.embedded_dir / f"{run}-logger.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(logger)
    while not all(p.exists() and b"leases taken" in p.read_bytes() for p in logs):
        if any(w.poll() is not None for w in workers) or time.perf_counter() - began > 120:
            raise RuntimeError(f"a worker did not join the group; see {logs}")
        time.sleep(0.05)
    report.join_s = time.perf_counter() - began
    return workers, logger


def _catch_up(
    settings: Settings,
    report: BenchReport,
    plan: Plan,
    backlog: int,
    workers: list[subprocess.Popen],
    progress: Progress,
) -> None:
    """The backlog counted: events/s, its ratios, and the servers' CPU an event meanwhile."""
    joined = time.perf_counter()
    servers_before = server_cpu(settings)
    wait_caught_up(settings, backlog, timeout_s=3600, progress=progress, workers=workers)
    report.catch_up_s = time.perf_counter() - joined
    clickhouse_cpu, broker_cpu = (
        b - a for a, b in zip(servers_before, server_cpu(settings), strict=True)
    )
    report.clickhouse_cpu_us_per_event = round(1e6 * clickhouse_cpu / backlog, 1)
    report.broker_cpu_us_per_event = round(1e6 * broker_cpu / backlog, 1)
    report.events_per_s = backlog / report.catch_up_s
    report.ratio_to_baseline = report.events_per_s / report.baseline_events_per_s
    report.ratio_to_necessary = report.events_per_s / report.necessary_events_per_s
    report.rate_2024_events_per_s = RATE_2024_TPS_PER_S * len(plan.ballots)
    report.times_2024_rate = round(report.events_per_s / report.rate_2024_events_per_s, 1)
    report.backlog_arrival_s_at_2024_rate = round(backlog / report.rate_2024_events_per_s, 1)


def _latency_phases(
    settings: Settings,
    report: BenchReport,
    rates: list[float],
    tails: list[list[bytes]],
    backlog: int,
    workers: list[subprocess.Popen],
    progress: Progress,
) -> None:
    """Each rate offered in turn, lowest first, and the highest whose p99 stays under 1 s."""
    sent = backlog
    for offered, part in zip(rates, tails, strict=True):
        if not part:
            continue
        sent += len(part)
        measured = offer(settings, part, offered, sent, workers, progress)
        report.phases.append(dict(zip(PHASE_FIELDS, (offered, *measured), strict=True)))
    if report.phases:
        last = report.phases[-1]
        report.latency_events = last["events"]
        report.offered_rate_measured = last["measured"]
        report.latency_p50_ms, report.latency_p99_ms = last["p50_ms"], last["p99_ms"]
        held = [p["offered"] for p in report.phases if p["p99_ms"] < HELD_P99_MS]
        report.rate_held = max(held) if held else None


def _after_the_night(
    settings: Settings,
    report: BenchReport,
    plan: Plan,
    workers: list[subprocess.Popen],
    alone_before: float,
) -> None:
    """The seats' time, the workers' CPU and RSS, and the yardstick measured again."""
    for ballot in (b for b in plan.ballots if b in LEGISLATIVE):
        started = time.perf_counter()
        seats(connect(settings), ballot, settings.dpr_threshold)
        report.seats_s[ballot] = round(time.perf_counter() - started, 3)
    for proc in workers:
        cpu, rss = proc_stats(proc.pid)
        report.worker_cpu_s.append(round(cpu, 1))
        report.worker_peak_rss_mib.append(round(rss, 1))
    report.worker_cpu_us_per_event = round(1e6 * sum(report.worker_cpu_s) / report.events, 1)
    report.verify_alone_before_us = alone_before
    report.verify_alone_after_us = verification_us(report.signed_bytes or SIGNED_BYTES_GUESS)
    report.verify_alone_us = min(alone_before, report.verify_alone_after_us)
    report.worker_per_verify = round(report.worker_cpu_us_per_event / report.verify_alone_us, 2)


def _wait_for_the_log(
    settings: Settings, report: BenchReport, logger: subprocess.Popen, log_path: Path
) -> None:
    """Until the log's last checkpoint covers every applied tally: how far it was behind."""
    client, caught = connect(settings), time.perf_counter()
    applied = client.command("SELECT count() FROM tally_decisions FINAL WHERE decision = 'applied'")
    while (client.command("SELECT max(size) FROM log_checkpoints") or 0) < applied:
        if logger.poll() is not None or time.perf_counter() - caught > 1800:
            raise RuntimeError(f"the logger fell behind or died; see {log_path}")
        time.sleep(0.5)
    report.log_behind_s = round(time.perf_counter() - caught, 1)
    report.log_leaves = int(applied)
    report.logger_cpu_s, report.logger_peak_rss_mib = (round(x, 1) for x in proc_stats(logger.pid))


def _stop(processes: list[subprocess.Popen]) -> None:
    for proc in processes:
        proc.terminate()
    for proc in processes:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _verify_and_write(
    settings: Settings, report: BenchReport, out: Path, json_path: Path | None, console: Console
) -> int:
    """`verify` against the simulator's truth, then the report: printed, and written if asked."""
    truth, tps_file = out / TRUTH, out / TRUTH_TPS
    verify_started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task(
            "verify: every level of every ballot (bytes of its TPS)", total=tps_file.stat().st_size
        )
        report.differences = verify(
            connect(settings),
            read_truth(truth),
            tps_file=tps_file,
            progress=lambda n: progress.update(task, completed=n),
        )
    report.verify_s = round(time.perf_counter() - verify_started, 1)
    report.exact = not report.differences
    written = {**asdict(report), "provenance": provenance(report.command)}
    console.print_json(orjson.dumps(written).decode())
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(written, option=orjson.OPT_INDENT_2))
    console.print(
        "[green]verify: exact at every level[/]" if report.exact else "[red]verify: NOT exact[/]"
    )
    return 0 if report.exact else 1


def main_command() -> str:
    return " ".join(["tally", *sys.argv[1:]])
