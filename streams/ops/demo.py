"""`tally demo`: the main job on the embedded default, from nothing to printed results."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.clickhouse.client import connect
from streams.embedded import servers
from streams.gateways.gateway import run_simulation
from streams.gateways.simulate import Plan
from streams.gateways.truth import TRUTH, TRUTH_TPS
from streams.kafka.auth import kafka_options
from streams.kafka.produce import consumer_lag
from streams.read.api import serve
from streams.read.dapils import seats
from streams.read.report import print_results, print_seats
from streams.read.results import choice_names, read_truth, results, verify
from streams.settings import SUBMISSIONS, Settings

DEMO_DATABASE = "demo"


def start_worker(
    settings: Settings, log_name: str = "worker.log", loglevel: str = "warning"
) -> subprocess.Popen:
    settings.embedded_dir.mkdir(parents=True, exist_ok=True)
    log = (settings.embedded_dir / log_name).open("ab")
    cmd = [
        sys.executable,
        "-m",
        "streams",
        "worker",
        "--data-dir",
        str(settings.embedded_dir),
        "--loglevel",
        loglevel,
    ]
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **settings.as_env()},
    )


def start_logger(settings: Settings, log_name: str = "logger.log") -> subprocess.Popen:
    """The transparency log's appender for these settings (making the operator key if there is
    none)."""
    log = (settings.embedded_dir / log_name).open("ab")
    cmd = [sys.executable, "-m", "streams", "logger", "--create-key", "--interval", "1"]
    return subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **settings.as_env()},
    )


def wait_logged(settings: Settings, timeout_s: float = 300.0) -> int:
    """The tree size once a signed checkpoint covers every applied tally."""
    client = connect(settings)
    applied = client.command("SELECT count() FROM tally_decisions FINAL WHERE decision = 'applied'")
    deadline = time.monotonic() + timeout_s
    while (client.command("SELECT max(size) FROM log_checkpoints") or 0) < applied:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the log did not cover the {applied} applied tallies within {timeout_s:.0f}s"
            )
        time.sleep(0.25)
    return int(applied)


def wait_caught_up(
    settings: Settings,
    total: int,
    timeout_s: float = 600.0,
    progress: Progress | None = None,
    workers: list[subprocess.Popen] = (),
) -> float:
    """Seconds until the worker group has committed every produced event; raises TimeoutError, or
    RuntimeError at once if every given worker process has exited."""
    bootstrap = servers.kafka_bootstrap(settings)
    started = time.monotonic()
    task = (
        progress.add_task("counting (committed after written)", total=total) if progress else None
    )
    while time.monotonic() - started < timeout_s:
        lag = asyncio.run(
            consumer_lag(
                bootstrap, settings.group_id, settings.topic(SUBMISSIONS), kafka_options(settings)
            )
        )
        if progress is not None and task is not None:
            progress.update(task, completed=total - lag)
        if lag == 0:
            return time.monotonic() - started
        if workers and all(w.poll() is not None for w in workers):
            raise RuntimeError(
                f"every worker exited (codes {[w.returncode for w in workers]}); see their logs in "
                f"{settings.data_dir}"
            )
        time.sleep(0.25)
    raise TimeoutError(f"the workers did not catch up within {timeout_s:.0f}s")


BALLOTS = ("PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB")


def show_log(settings: Settings, client, console: Console) -> None:
    """The transparency log once it covers the night: its checkpoint, and one TPS's proof
    checked."""
    from streams.core.proofs import check_proof
    from streams.read.log_view import inclusion

    size = wait_logged(settings)
    tps, ballot = client.query(
        "SELECT tps, ballot FROM log_leaves FINAL ORDER BY idx DESC LIMIT 1"
    ).result_rows[0]
    proof = inclusion(client, tps, ballot)
    key = proof["checkpoint"]["verifier_key"]
    console.print(
        f"log: {size:,} leaves, root {proof['root_hash'][:16]}.., signed by {key.split('+')[0]}"
    )
    console.print(f"[green]log: {check_proof(proof, key)}[/]")
    console.print(f"  check it yourself: python3 schemas/log/verify.py URL --key '{key}'")


def run_demo(base: Settings, n_tps: int, seed: int, serve_port: int | None = 8080) -> int:
    """The whole pipeline on a simulated night of all five ballots, checked against its truth; then,
    unless `serve_port` is None, the results page until Ctrl-C."""
    console = Console()
    kafka = servers.kafka_bootstrap(base)
    ch_url = servers.ensure(base, servers.CLICKHOUSE)
    settings = base.override(
        kafka=kafka, clickhouse=f"{ch_url}/{DEMO_DATABASE}", namespace=f"demo{int(time.time())}."
    )
    console.print(
        f"[bold]tally demo[/]: broker {kafka}, ClickHouse {servers.without_credentials(ch_url)} "
        f"(chDB data in {base.embedded_dir / 'clickhouse'}; users in "
        f"{base.embedded_dir / servers.USERS})"
    )
    admin = connect(base.override(clickhouse=f"{ch_url}/default"))
    # the demo's own database, fresh each run
    admin.command(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
    from streams.clickhouse.client import apply_schema
    from streams.kafka.produce import create_topics

    asyncio.run(create_topics(settings, kafka))
    apply_schema(settings)
    worker = start_worker(settings)
    logger = start_logger(settings)
    out = base.embedded_dir / "demo"
    try:
        plan = Plan(n_tps, seed, BALLOTS, duplicates=0.05, corrections=0.02, invalid=0.005)
        produced = run_simulation(settings, plan, out, dry_run=False, rate=None)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            wait_caught_up(settings, produced, progress=progress, workers=[worker])
        client = connect(settings)
        if not _report(settings, client, out, console):
            return 1
        show_log(settings, client, console)
    finally:
        for proc in (worker, logger):
            proc.send_signal(signal.SIGTERM)
        for proc in (worker, logger):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    servers.remember_night(base, DEMO_DATABASE, settings.namespace)
    _what_next(base, ch_url, out, console)
    if serve_port is not None:
        console.print(
            f"\n[bold]The results page: http://127.0.0.1:{serve_port}/[/]  (Ctrl-C stops it)"
        )
        serve(settings, "127.0.0.1", serve_port)
        console.print(
            "\nThe page is stopped. Still running: the embedded broker and ClickHouse, with this "
            "night in them "
            "(stop them with [bold].venv/bin/tally down[/])."
        )
    return 0


def _report(settings: Settings, client: Client, out: Path, console: Console) -> bool:
    """The night checked against its truth, its results, seats and decisions printed; whether it
    was exact."""
    differences = verify(client, read_truth(out / TRUTH), tps_file=out / TRUTH_TPS)
    names = choice_names(client, "PPWP")
    print_results(results(client, "PPWP", "national"), console)
    print_results({**results(client, "PPWP", "province"), "names": names}, console)
    print_seats(seats(client, "DPR", settings.dpr_threshold), console)
    decided = dict(
        client.query(
            "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
        ).result_rows
    )
    console.print(
        "decisions: " + ", ".join(f"{name} {count:,}" for name, count in sorted(decided.items()))
    )
    if differences:
        console.print(
            "[red]verify: ClickHouse differs from the truth[/]\n" + "\n".join(differences)
        )
        return False
    console.print("[green]verify: totals are exact at every level[/]")
    return True


def _what_next(base: Settings, ch_url: str, out: Path, console: Console) -> None:
    """What still runs, and how to read this night with tally and with ClickHouse itself."""
    # `tally` commands of this data dir add the credentials
    plain = servers.without_credentials(ch_url)
    reader = servers.clickhouse_users(base)[servers.READER]
    console.print(
        "\nThe servers keep running (stop them with [bold].venv/bin/tally down[/]). Files of this "
        f"run: {out}\n"
        "This night is now the one every tally command on this data dir reads (.venv/bin/tally):\n"
        "  tally results --level regency --region 32    tally seats --ballot DPRD_PROV\n"
        "  tally changes --region 32                    tally status    tally serve\n"
        f"or ClickHouse itself: curl -u tally_reader:{reader} '{plain}/?database={DEMO_DATABASE}' "
        "--data-binary "
        "\"SELECT region, choice, sum(votes) FROM region_totals WHERE level='province' GROUP BY "
        'ALL ORDER BY ALL"'
    )
