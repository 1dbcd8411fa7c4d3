"""Exactly once against gateways tally did not write: librdkafka (confluent-kafka) with its own
partitioners and every compression codec, a producer that picks wrong or random partitions, resends
by `tally produce`, 2 and 3 workers, a worker SIGKILLed while it forwards. Each night is checked
against the simulator's independent truth, the audit trail and the transparency log."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streams.core.placement import home_partition
from streams.ops.demo import wait_caught_up
from streams.settings import SUBMISSIONS, Settings
from tests.conftest import REPO, Workers, env_of, tally

CODECS = ("gzip", "snappy", "lz4", "zstd")


def night(pipeline: Settings, out: Path, tps: int, seed: int) -> list[bytes]:
    """A simulated PPWP + DPR night with resends and corrections, its registry loaded; its
    events."""
    tally(
        pipeline,
        "simulate",
        *("--tps", str(tps), "--seed", str(seed), "--ballots", "PPWP,DPR"),
        *("--duplicates", "0.03", "--corrections", "0.03", "--out", str(out), "--dry-run"),
    )
    tally(pipeline, "registry", "load", str(out / "registry.jsonl"))
    return (out / "events.jsonl").read_bytes().splitlines()


def librdkafka(
    pipeline: Settings,
    lines: list[bytes],
    partition_of: Callable[[bytes], int] | None = None,
    pace_s: float = 0.0,
    **config,
) -> dict[bytes, list[int]]:
    """Publish `lines` keyed by their TPS with confluent-kafka; returns where each key's records
    landed."""
    topic = pipeline.topic(SUBMISSIONS)
    producer = Producer({"bootstrap.servers": pipeline.kafka, "linger.ms": 10, **config})
    placed: dict[bytes, list[int]] = {}
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            placed.setdefault(msg.key(), []).append(msg.partition())

    for line in lines:
        key = orjson.loads(line)["tps"].encode()
        extra = {"partition": partition_of(key)} if partition_of else {}
        producer.produce(topic, value=line, key=key, on_delivery=delivered, **extra)
        producer.poll(0)
        if pace_s:
            time.sleep(pace_s)
    assert producer.flush(60) == 0 and not errors, errors[:3]
    return placed


def counted_once(pipeline: Settings, ch, out: Path, events: list[bytes], arrivals: int) -> dict:
    """The night is exact against its truth; every event id counted once; every arrival decided."""
    wait_caught_up(pipeline, arrivals, timeout_s=300)
    verify = tally(pipeline, "verify", "--truth", str(out / "truth.jsonl"), check=False)
    assert verify.returncode == 0, verify.stdout.decode()[-3000:]
    ids = {orjson.loads(line)["event_id"] for line in events}
    decisions = dict(
        ch.query(
            "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
        ).result_rows
    )
    applied = [
        i
        for (i,) in ch.query(
            "SELECT event_id FROM tally_decisions FINAL WHERE decision = 'applied'"
        ).result_rows
    ]
    assert len(applied) == len(set(applied)) == decisions["applied"]  # no event applied twice
    # Every event was decided. A placement that spreads one TPS over partitions (random,
    # round-robin) may bring a correction home before the count it corrects: that count is then
    # stale, never applied.
    decided = {
        i for (i,) in ch.query("SELECT DISTINCT event_id FROM tally_decisions FINAL").result_rows
    }
    stale = {
        i
        for (i,) in ch.query(
            "SELECT DISTINCT event_id FROM tally_decisions FINAL WHERE decision = 'stale'"
        ).result_rows
    }
    assert decided == ids and set(applied) | stale == ids
    return decisions


def log_adds_up(pipeline: Settings, ch, applied: int) -> None:
    deadline = time.monotonic() + 120
    while (
        ch.command("SELECT max(size) FROM log_checkpoints") != applied
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert ch.query(
        "SELECT count(), uniqExact(ballot, tps, revision) FROM log_leaves FINAL"
    ).result_rows[0] == (applied, applied)
    audit = tally(pipeline, "log", "audit")
    assert "leaves add up" in audit.stdout.decode()


@pytest.fixture
def logger(pipeline: Settings, tmp_path: Path):
    settings = pipeline.override(operator_key=str(tmp_path / "operator.key"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams", "logger", "--create-key", "--interval", "0.5"],
        env=env_of(settings),
        cwd=REPO,
        stdout=(tmp_path / "logger.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    yield settings
    proc.terminate()
    proc.wait(timeout=20)


def test_a_librdkafka_night_in_every_codec_and_placement_resent_by_tally_produce_counts_once(
    pipeline, workers, tmp_path, ch, logger
):
    workers.start()
    workers.start()
    out = tmp_path / "night"
    events = night(pipeline, out, tps=1200, seed=28)
    quarter = -(-len(events) // len(CODECS))
    cycle = iter(range(10**9))
    # A quarter in each codec, each placed another way: librdkafka's default (CRC32), FNV-1a (Go's
    # sarama), random, and round-robin over the partitions.
    placements = (
        {"partitioner": "consistent_random"},
        {"partitioner": "fnv1a_random"},
        {"partitioner": "random"},
        {"partition_of": lambda key: next(cycle) % pipeline.partitions},
    )
    placed: dict[bytes, list[int]] = {}
    for i, (codec, placement) in enumerate(zip(CODECS, placements, strict=True)):
        quarter_events = events[i * quarter : (i + 1) * quarter]
        landed = librdkafka(pipeline, quarter_events, **placement, **{"compression.type": codec})
        for key, partitions in landed.items():
            placed.setdefault(key, []).extend(partitions)
    # docs/operations.md's recovery after a broker restart: the night resent, by tally's own
    # producer.
    assert (
        b"produced %d events" % len(events)
        in tally(pipeline, "produce", str(out / "events.jsonl")).stdout
    )
    decisions = counted_once(pipeline, ch, out, events, 2 * len(events))
    assert sum(decisions.values()) == 2 * len(events)  # every arrival decided once, at home
    # Every record librdkafka put off its home partition was forwarded there, and only those.
    away = sum(
        p != home_partition(key, pipeline.partitions) for key, ps in placed.items() for p in ps
    )
    assert 0 < away == ch.command("SELECT count() FROM tally_forwards FINAL")
    status = orjson.loads(tally(pipeline, "status", "--json").stdout)
    assert (
        sum(status["clickhouse"]["forwarded"].values()) == away
        and not status["clickhouse"]["stalled"]
    )
    assert "error" not in status["broker"]
    log_adds_up(logger, ch, decisions["applied"])


def forwarding(workers: Workers, i: int, since: int) -> bool:
    """Worker i's log, after `since` bytes, shows it forwarding records home."""
    text = (workers.log_dir / f"worker-{i}.log").read_bytes()[since:].decode(errors="replace")
    return any(int(n) > 0 for n in re.findall(r"forwarded home so far (\d+)", text))


def test_records_on_wrong_or_random_partitions_count_once_with_three_workers_and_a_kill(
    pipeline, workers, tmp_path, ch, logger
):
    for _ in range(3):
        workers.start()
    out = tmp_path / "night"
    events = night(pipeline, out, tps=1000, seed=29)
    n = pipeline.partitions

    def wrong(key: bytes) -> int:  # a producer that picks a partition, never the right one
        return (home_partition(key, n) + 1 + len(key) % (n - 1)) % n

    sending = threading.Thread(target=librdkafka, args=(pipeline, events, wrong, 0.002))
    sending.start()
    deadline = time.monotonic() + 120
    while not any(forwarding(workers, i, 0) for i in range(3)):
        assert time.monotonic() < deadline, workers.logs()
        time.sleep(0.05)
    victim = next(i for i in range(3) if forwarding(workers, i, 0))
    time.sleep(random.Random(29).uniform(0.1, 0.5))
    workers.procs[victim].send_signal(signal.SIGKILL)
    workers.procs[victim].wait()
    workers.procs[victim] = workers.start()  # writes worker-3.log
    sending.join()
    # Then the night again from a gateway whose client spreads records at random.
    librdkafka(pipeline, events, partitioner="random")
    decisions = counted_once(pipeline, ch, out, events, 0)
    # Every arrival was off its home: all of the first pass and most of the second were forwarded.
    assert ch.command(
        "SELECT uniqExact(src_partition, src_offset) FROM tally_forwards FINAL"
    ) >= len(events)
    # A copy forwarded again after the kill is a duplicate of itself at home, never counted again.
    assert decisions["duplicate"] >= len(events)
    log_adds_up(logger, ch, decisions["applied"])


def test_a_worker_refuses_to_count_on_another_partition_count_than_the_night_began_with(
    pipeline, workers, ch
):
    """Homes depend on the partition count: partitions added mid-night would move TPS away from
    their state."""
    ch.insert(
        "topic_layout", [(pipeline.topic(SUBMISSIONS), 8)], column_names=["topic", "partitions"]
    )
    worker = workers.start()
    assert worker.wait(timeout=90) == 78
    assert "has 4 partitions, but its tallies were placed and decided on 8" in workers.logs(None)
    assert ch.command("SELECT count() FROM tally_decisions") == 0
