"""Operators see and steer the night. A live worker is scraped (Prometheus metrics that add
up to what ClickHouse holds), logs one JSON object a line, and stops within 10 s of SIGTERM with the
broker gone, losing nothing: restarted with a new broker, the night is exact. The API serves its own
metrics."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import orjson

from streams.clickhouse.client import connect
from streams.embedded import servers
from streams.kafka.produce import create_topics
from streams.ops.demo import wait_caught_up
from streams.read.results import read_truth, verify
from tests.conftest import REPO, api_server, env_of, get, own_clickhouse, scrape, tally


def start_worker(settings, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "worker", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env_of(settings),
        cwd=REPO,
    )


def niceness_of_threads(pid: int) -> set[int]:
    """The nice value of every thread of a process (field 19 of /proc/PID/task/TID/stat)."""
    return {
        int(stat.read_text().rsplit(")", 1)[1].split()[16])
        for stat in Path(f"/proc/{pid}/task").glob("*/stat")
    }


def counting(settings, out: Path, log: Path) -> tuple[subprocess.Popen, subprocess.Popen]:
    """A worker counting the night in `out` while a gateway sends it at 300 events/s, once the
    worker has written two batches: the moment a dependency is taken away in the tests below."""
    worker = start_worker(settings, log)
    wait_for(lambda: b"leases taken" in log.read_bytes(), what="the worker's leases")
    producer = subprocess.Popen(
        [sys.executable, "-m", "streams", "produce", str(out / "events.jsonl"), "--rate", "300"],
        cwd=REPO,
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: log.read_bytes().count(b"batch:") >= 2, what="batches written")
    return worker, producer


def start_broker(data_dir: Path, port: int) -> subprocess.Popen:
    """A `tally broker` of its own on `port`, once it listens."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "broker",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: servers.port_open("127.0.0.1", port), timeout=30, what="the broker")
    return proc


def stop(broker: subprocess.Popen) -> None:
    """Stop a `tally broker`: SIGTERM, which it passes on to Tansu. SIGKILL would leave Tansu
    running."""
    if broker.poll() is None:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=20)


def wait_for(check, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_a_live_worker_is_scraped_and_logs_json(pipeline, tmp_path):
    out = tmp_path / "night"
    tally(pipeline, "simulate", "--tps", "300", "--seed", "8", "--out", str(out), "--dry-run")
    tally(pipeline, "registry", "load", str(out / "registry.jsonl"))
    port = servers.free_port()
    log = tmp_path / "worker.log"
    niced = replace(pipeline, worker_nice=7)  # the operator puts the count below the readers
    worker = start_worker(niced, log, "--metrics-port", str(port), "--log-format", "json")
    try:
        wait_for(lambda: b"leases taken" in log.read_bytes(), what="the worker's leases")
        tally(pipeline, "produce", str(out / "events.jsonl"))
        total = sum(1 for line in (out / "events.jsonl").open("rb") if line.strip())
        wait_caught_up(pipeline, total, timeout_s=120)
        # every thread of the worker (the verify threads too) below this process and the servers
        assert niceness_of_threads(worker.pid) == {min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)}
        client = connect(pipeline)
        decided = dict(
            client.query(
                "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
            ).result_rows
        )
        rejected = dict(
            client.query(
                "SELECT reasons[1], count() FROM tally_decisions FINAL WHERE decision = 'rejected' "
                "GROUP BY reasons[1]"
            ).result_rows
        )
        keys = client.command(
            "SELECT count() FROM (SELECT DISTINCT ballot, tps FROM tally_current)"
        )

        def settled() -> bool:  # the lag poll runs every 10 s
            m = scrape(port)
            lags = [v for (name, _), v in m.items() if name == "tally_consumer_lag"]
            return (
                m.get(("tally_broker_up", ())) == 1
                and len(lags) == pipeline.partitions
                and not any(lags)
            )

        wait_for(settled, timeout=40, what="a lag poll")
        metrics = scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
    events = {labels: v for (name, labels), v in metrics.items() if name == "tally_events_total"}
    by_decision: dict[str, float] = {}
    for labels, v in events.items():
        by_decision[dict(labels)["decision"]] = by_decision.get(dict(labels)["decision"], 0) + v
    assert by_decision == {k: float(v) for k, v in decided.items()}
    assert {
        dict(labels)["reason"]: v
        for labels, v in events.items()
        if dict(labels)["decision"] == "rejected"
    } == {k: float(v) for k, v in rejected.items()}
    assert metrics[("tally_state_keys", ())] == keys
    assert metrics[("tally_partitions_owned", ())] == pipeline.partitions
    assert metrics[("tally_clickhouse_up", ())] == 1
    assert metrics[("tally_write_seconds_count", (("table", "region_totals"),))] >= 1
    assert metrics[("tally_batch_events_sum", ())] == total
    assert metrics[("tally_last_write_timestamp_seconds", ())] > time.time() - 300
    assert metrics[("process_resident_memory_bytes", ())] > 10e6
    lines = log.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]  # every line one JSON object
    assert any("leases taken" in r["message"] for r in records)
    assert all({"time", "level", "logger", "pid", "message"} <= set(r) for r in records)


def test_sigterm_with_the_broker_gone_stops_within_10_s_and_loses_nothing(stack, tmp_path):
    """A broker of its own: the worker counts part of the night, the broker dies, SIGTERM stops the
    worker within 10 s. Then a new broker gets the whole night again (the gateways resend their
    logs), a new worker counts it, and the totals are exact: nothing unwritten was committed,
    nothing counted twice."""
    ns = f"stop{os.getpid()}"
    out = tmp_path / "night"

    def broker_up() -> tuple[subprocess.Popen, object]:
        port = servers.free_port()
        proc = start_broker(tmp_path / "b", port)
        settings = stack.override(
            kafka=f"127.0.0.1:{port}",
            clickhouse=f"{stack.clickhouse}/{ns}",
            namespace=f"{ns}.",
            partitions=2,
        )
        asyncio.run(create_topics(settings, settings.kafka))
        return proc, settings

    broker, settings = broker_up()
    tally(settings, "init")
    # ~1,600 events
    tally(settings, "simulate", "--tps", "1500", "--seed", "9", "--out", str(out), "--dry-run")
    tally(settings, "registry", "load", str(out / "registry.jsonl"))
    log = tmp_path / "worker-1.log"
    worker = None
    try:
        worker, producer = counting(settings, out, log)
        stop(broker)  # the broker dies mid-night ...
        producer.kill()
        time.sleep(3)
        worker.send_signal(signal.SIGTERM)  # ... and the operator stops the worker
        stopped = time.monotonic()
        worker.wait(timeout=30)
        assert time.monotonic() - stopped <= 10, "the worker took more than 10 s to stop"
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        stop(broker)
    said = log.read_bytes()
    assert b"still stopping after" in said or b"Stopping..." in said
    assert not re.search(rb"\] .\n", said), "a traceback was logged a character a line"
    broker, settings = broker_up()  # an empty broker: the gateways resend the whole night
    worker = start_worker(settings, tmp_path / "worker-2.log")
    try:
        # The worker meets the empty broker first (resent in the same order, the night would be the
        # same log at every decided offset, and nothing to tell apart).
        deadline = time.monotonic() + 60
        while (
            b"leases taken" not in (tmp_path / "worker-2.log").read_bytes()
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        tally(settings, "produce", str(out / "events.jsonl"))
        total = sum(1 for line in (out / "events.jsonl").open("rb") if line.strip())
        wait_caught_up(settings, total, timeout_s=180)
        assert (
            verify(
                connect(settings), read_truth(out / "truth.jsonl"), tps_file=out / "truth-tps.jsonl"
            )
            == []
        )
        assert b"THE BROKER RESTARTED EMPTY" in (tmp_path / "worker-2.log").read_bytes()
        assert connect(settings).command("SELECT max(epoch) FROM topic_epochs") == 1
        status = orjson.loads(tally(settings, "status", "--json").stdout)
        assert status["clickhouse"]["broker_restarts"][0]["epoch"] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
        stop(broker)


def test_the_api_serves_its_metrics(pipeline):
    with api_server(pipeline) as port:
        assert get(port, "/api/results?ballot=PPWP")[0] == 200
        assert get(port, "/api/tps/0000000000000?ballot=PPWP")[0] in (400, 404)
        metrics = scrape(port)
    assert (
        metrics[("tally_api_requests_total", (("route", "/api/results"), ("status", "200")))] == 1
    )
    assert metrics[("tally_api_request_seconds_count", (("route", "/api/results"),))] == 1
    assert any(
        name == "tally_api_requests_total" and dict(labels)["route"] == "/api/tps/{code}"
        for name, labels in metrics
    )


def test_sigterm_with_clickhouse_gone_stops_within_10_s_and_loses_nothing(stack, tmp_path):
    """A ClickHouse server of its own goes away mid-night; the worker, its write retrying, is
    stopped and must be gone within 10 s. ClickHouse and a worker come back: the night is exact."""
    data_dir, port = tmp_path / "own", servers.free_port()
    server = own_clickhouse(data_dir, port)
    ns = f"chstop{os.getpid()}"
    out = tmp_path / "night"
    try:
        wait_for(lambda: servers.port_open("127.0.0.1", port), timeout=60, what="ClickHouse")
        # made at its start
        writer = servers.clickhouse_users(stack.override(data_dir=data_dir))[servers.WRITER]
        address = servers.credited(f"http://127.0.0.1:{port}", servers.WRITER, writer)
        settings = stack.override(clickhouse=f"{address}/{ns}", namespace=f"{ns}.", partitions=2)
        tally(settings, "init")
        tally(settings, "simulate", "--tps", "1500", "--seed", "10", "--out", str(out), "--dry-run")
        tally(settings, "registry", "load", str(out / "registry.jsonl"))
        log = tmp_path / "worker-1.log"
        worker, producer = counting(settings, out, log)
        # ClickHouse goes away mid-night: the next write retries ...
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        wait_for(lambda: b"retrying in" in log.read_bytes(), timeout=30, what="a failed write")
        worker.send_signal(signal.SIGTERM)  # ... and the operator stops the worker
        stopped = time.monotonic()
        worker.wait(timeout=30)
        assert time.monotonic() - stopped <= 10, "the worker took more than 10 s to stop"
        producer.wait(timeout=60)
        server = own_clickhouse(data_dir, port)
        wait_for(lambda: servers.port_open("127.0.0.1", port), timeout=60, what="ClickHouse again")
        worker = start_worker(settings, tmp_path / "worker-2.log")
        total = sum(1 for line in (out / "events.jsonl").open("rb") if line.strip())
        wait_caught_up(settings, total, timeout_s=180)
        assert (
            verify(
                connect(settings), read_truth(out / "truth.jsonl"), tps_file=out / "truth-tps.jsonl"
            )
            == []
        )
    finally:
        for proc in (locals().get("worker"), locals().get("producer")):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_a_running_worker_notices_the_broker_restarted_empty_and_the_resent_night_counts_once(
    stack, tmp_path
):
    """The broker dies and comes back empty on the same address while the worker keeps running; the
    gateways resend a while later, in another order. When Tansu is back the group rejoins; at that
    assignment the worker finds the log is not the one it decided on, starts the next epoch before
    deciding anything, and counts the night exactly."""
    port = servers.free_port()
    ns = f"again{os.getpid()}"
    out = tmp_path / "night"
    settings = stack.override(
        kafka=f"127.0.0.1:{port}",
        clickhouse=f"{stack.clickhouse}/{ns}",
        namespace=f"{ns}.",
        partitions=2,
    )

    def broker_up() -> subprocess.Popen:
        proc = start_broker(tmp_path / "b", port)
        asyncio.run(create_topics(settings, settings.kafka))
        return proc

    broker = broker_up()
    tally(settings, "init")
    tally(settings, "simulate", "--tps", "800", "--seed", "12", "--out", str(out), "--dry-run")
    tally(settings, "registry", "load", str(out / "registry.jsonl"))
    lines = [line for line in (out / "events.jsonl").read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2
    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        wait_for(lambda: b"leases taken" in log.read_bytes(), what="the worker's leases")
        tally(settings, "produce", "-", stdin=b"\n".join(lines[:half]) + b"\n")
        wait_caught_up(settings, half, timeout_s=120)
        stop(broker)
        broker = broker_up()  # the same address, nothing in it
        # the worker's consumer finds its position gone and resets to the new log's start
        time.sleep(8)
        # another order
        tally(settings, "produce", "-", stdin=b"\n".join(lines[half:] + lines[:half]) + b"\n")
        wait_caught_up(settings, len(lines), timeout_s=180)
        assert worker.poll() is None  # the same worker, never restarted
        assert (
            verify(
                connect(settings), read_truth(out / "truth.jsonl"), tps_file=out / "truth-tps.jsonl"
            )
            == []
        )
        assert b"THE BROKER RESTARTED EMPTY" in log.read_bytes()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
        stop(broker)
