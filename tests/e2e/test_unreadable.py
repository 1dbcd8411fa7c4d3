"""A record batch a worker cannot unpack stops its own partition only: it waits there (nothing
skipped, nothing lost), says so in the log, `tally status` and the metrics, and counts on by itself
once the batch can be read. The fault is the worker's own decompression library, held back by a
`sitecustomize` on its path: the broker, the batches and ClickHouse are real."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from confluent_kafka import Producer

from streams.core.placement import home_partition
from streams.ops.demo import wait_caught_up
from streams.settings import SUBMISSIONS
from tests.conftest import REPO, env_of, tally

# Imported by the worker's interpreter at start (it is first on PYTHONPATH).
SITECUSTOMIZE = """
import os, sys
if os.environ.get("TALLY_TEST_NO_CRAMJAM"):
    # as if the library were not installed: aiokafka lacks snappy, lz4, zstd
    sys.modules["cramjam"] = None
flag = os.environ.get("TALLY_TEST_HOLD_SNAPPY")
if flag:
    import cramjam
    unpack = cramjam.snappy.decompress_raw
    def held(data, *args, **kwargs):
        if os.path.exists(flag):
            raise cramjam.DecompressionError("snappy held by the test")
        return unpack(data, *args, **kwargs)
    cramjam.snappy.decompress_raw = held
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(pipeline, tmp_path: Path, name: str, port: int, **env: str) -> subprocess.Popen:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "worker", "--metrics-port", str(port)],
        env={**env_of(pipeline), "PYTHONPATH": f"{site}:{REPO}", **env},
        cwd=REPO,
        stdout=(tmp_path / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_until(condition, what: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def metric(port: int, line_start: str) -> str | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


def test_a_batch_the_worker_cannot_unpack_stalls_its_partition_only_and_it_resumes_by_itself(
    pipeline, tmp_path, ch
):
    out = tmp_path / "night"
    tally(pipeline, "simulate", "--tps", "400", "--seed", "5", "--out", str(out), "--dry-run")
    tally(pipeline, "registry", "load", str(out / "registry.jsonl"))
    events = (out / "events.jsonl").read_bytes().splitlines()
    held_partition = 0
    at_home = [
        e
        for e in events
        if home_partition(orjson.loads(e)["tps"].encode(), pipeline.partitions) == held_partition
    ]
    others = [e for e in events if e not in at_home]
    (tmp_path / "others.jsonl").write_bytes(b"\n".join(others) + b"\n")

    # A librdkafka gateway sends partition 0's share snappy-compressed, on the Java placement (no
    # forwarding).
    producer = Producer(
        {
            "bootstrap.servers": pipeline.kafka,
            "compression.type": "snappy",
            "partitioner": "murmur2_random",
            "linger.ms": 50,
        }
    )
    for line in at_home:
        producer.produce(
            pipeline.topic(SUBMISSIONS), value=line, key=orjson.loads(line)["tps"].encode()
        )
    assert producer.flush(30) == 0
    tally(pipeline, "produce", str(tmp_path / "others.jsonl"))

    def decided() -> int:
        return ch.command("SELECT count() FROM tally_decisions FINAL")

    def stalled() -> dict:
        return orjson.loads(tally(pipeline, "status", "--json").stdout)["clickhouse"]["stalled"]

    # 1. A worker without the codec library: the other partitions are counted, partition 0 waits at
    #    offset 0.
    port = free_port()
    worker = start_worker(pipeline, tmp_path, "no-cramjam", port, TALLY_TEST_NO_CRAMJAM="1")
    wait_until(lambda: decided() == len(others), "the other partitions to be counted")
    wait_until(lambda: "0" in stalled(), "tally status to show the waiting partition")
    status = orjson.loads(tally(pipeline, "status", "--json").stdout)
    # the broker answers: the partition waits, the broker is not away
    assert "error" not in status["broker"]
    assert status["clickhouse"]["stalled"]["0"]["offset"] == 0
    assert "UnsupportedCodecError" in status["clickhouse"]["stalled"]["0"]["reason"]
    assert (
        metric(port, 'tally_partition_stalled_offset{partition="0"}')
        == 'tally_partition_stalled_offset{partition="0"} 0.0'
    )
    assert metric(port, "tally_partitions_stalled ") == "tally_partitions_stalled 1.0"
    # past a retry: still alive, still waiting, said once (a reminder comes after 30 s)
    time.sleep(6)
    assert worker.poll() is None and decided() == len(others)
    text = (tmp_path / "no-cramjam.log").read_text()
    assert text.count("partition 0 cannot be read at offset 0") == 1
    assert "Traceback" not in text
    worker.terminate()
    worker.wait(timeout=30)

    # 2. A worker whose snappy fails while a flag file stands; removing it is the fix, and the count
    #    resumes.
    flag = tmp_path / "hold"
    flag.touch()
    port = free_port()
    worker = start_worker(pipeline, tmp_path, "held", port, TALLY_TEST_HOLD_SNAPPY=str(flag))
    try:
        wait_until(
            lambda: "snappy held by the test" in (tmp_path / "held.log").read_text(),
            "the held batch",
        )
        assert decided() == len(others) and worker.poll() is None
        # A record a gateway put off its home is forwarded, and the metrics count it by where it
        # arrived.
        stray = next(
            e
            for e in others
            if home_partition(orjson.loads(e)["tps"].encode(), pipeline.partitions) != 1
        )
        plain = Producer({"bootstrap.servers": pipeline.kafka})
        plain.produce(
            pipeline.topic(SUBMISSIONS),
            value=stray,
            key=orjson.loads(stray)["tps"].encode(),
            partition=1,
        )
        assert plain.flush(30) == 0
        wait_until(
            lambda: metric(port, 'tally_forwarded_total{partition="1"}') is not None,
            "the forward in the metrics",
        )
        assert (
            metric(port, 'tally_forwarded_total{partition="1"}')
            == 'tally_forwarded_total{partition="1"} 1.0'
        )
        flag.unlink()
        wait_caught_up(pipeline, len(events), timeout_s=120)
        assert tally(pipeline, "verify", "--truth", str(out / "truth.jsonl")).returncode == 0
        assert decided() == len(events) + 1  # the stray copy: a duplicate at home
        wait_until(lambda: not stalled(), "tally status to show every partition reading")
        assert metric(port, "tally_partitions_stalled ") == "tally_partitions_stalled 0.0"
        assert "partition 0 reads again at offset 0" in (tmp_path / "held.log").read_text()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
