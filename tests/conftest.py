"""Fixtures: one real Tansu broker and one real chDB server for the session, started exactly as
`tally up` starts them; each test gets its own topic namespace and ClickHouse database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.clickhouse.client import apply_schema, connect
from streams.embedded import servers
from streams.kafka.produce import create_topics
from streams.settings import Settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("tally")
    base = Settings(data_dir=data_dir)
    kafka = servers.ensure(base, servers.BROKER)
    ch = servers.ensure(base, servers.CLICKHOUSE)
    # A takeover without a release waits deadline + receive timeout + 5 s (clickhouse.sink): short
    # here, where inserts are small, so that the tests that kill workers do not wait 30 s at each
    # takeover.
    yield base.override(kafka=kafka, clickhouse=ch, insert_deadline_s=5.0, receive_timeout_s=1.0)
    for name in (servers.BROKER, servers.CLICKHOUSE):
        servers.stop(base, name)


@pytest.fixture
def pipeline(stack: Settings, request: pytest.FixtureRequest) -> Settings:
    """Settings of a fresh, isolated pipeline: its own topics, consumer group and database."""
    name = (
        f"t_{request.node.name[:40]}_{uuid.uuid4().hex[:6]}".replace("[", "_")
        .replace("]", "_")
        .replace("-", "_")
    )
    settings = stack.override(
        namespace=f"{name}.", clickhouse=f"{stack.clickhouse}/{name}", partitions=4
    )
    asyncio.run(create_topics(settings, settings.kafka))
    apply_schema(settings)
    return settings


@pytest.fixture
def ch(pipeline: Settings):
    return connect(pipeline)


def own_clickhouse(
    data_dir: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`tally clickhouse` of a test's own on `port`, its data in `data_dir`: one the test may stop
    and start again on the same port (the caller waits for it to listen)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "clickhouse",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def env_of(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_env()}


def tally(
    settings: Settings,
    *args: str,
    stdin: bytes | None = None,
    check: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run the real `tally` command line against this pipeline."""
    result = subprocess.run(
        [sys.executable, "-m", "streams", *args],
        input=stdin,
        capture_output=True,
        env=env_of(settings),
        timeout=timeout,
        cwd=REPO,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tally {' '.join(args)} exited "
            f"{result.returncode}:\n{result.stdout.decode()}\n{result.stderr.decode()}"
        )
    return result


class Workers:
    """Real `tally worker` processes for one pipeline; stopped (SIGTERM, then SIGKILL) at
    teardown."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel", "info"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env_of(self.settings),
            cwd=REPO,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def logs(self, tail: int | None = 3000) -> str:
        """The workers' logs, the last `tail` characters of each (None: all of them)."""
        return "\n".join(
            p.read_text(errors="replace")[-tail if tail else 0 :]
            for p in sorted(self.log_dir.glob("worker-*.log"))
        )


@pytest.fixture
def workers(pipeline: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(pipeline, tmp_path)
    yield pool
    pool.stop_all()


@contextlib.contextmanager
def api_server(settings: Settings) -> Iterator[int]:
    """`tally serve` on a free port for these settings, until the block ends; yields the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streams", "serve", "--port", str(port)],
        cwd=REPO,
        env=env_of(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of every sample at :port/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(port: int, path: str, timeout: float = 60) -> tuple[int, dict]:
    """GET a JSON answer of the API: (status, body), errors included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())
