"""Each failure point of the write path, forced deterministically against the real chDB server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import orjson
import pytest

from streams.clickhouse.client import apply_schema, connect
from streams.clickhouse.registry_store import load_registry, read_registry
from streams.clickhouse.sink import CURRENT, ClickHouseSink, Fenced
from streams.core.aggregate import TotalsDelta
from streams.core.pipeline import Message, Processor
from streams.core.revisions import Applied
from streams.embedded import servers
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.ops.demo import wait_caught_up
from streams.read.results import read_truth, results, verify
from tests.conftest import REPO, Workers, own_clickhouse, tally

TOPIC = "tally.submissions"


def events_with_corrections(client, n_tps: int = 200) -> tuple[list[Message], dict]:
    shape, stream, truth = generate(Plan(n_tps, 5, ("PPWP",), duplicates=0.1, corrections=0.2))
    load_registry(client, registry_records(shape))
    messages = [Message(offset, raw) for offset, raw in enumerate(stream)]
    return messages, truth.as_json()


def worker_processor(sink: ClickHouseSink) -> Processor:
    """A processor with the registry (and its device keys) as the worker reads it from
    ClickHouse."""
    registry = sink.call("registry", read_registry)
    return Processor(lambda: registry)


def preloaded(sink: ClickHouseSink) -> Processor:
    """A processor holding partition 0, its state loaded as the worker loads it on assignment."""
    processor = worker_processor(sink)
    processor.preload(0, *sink.load_partition(0))
    return processor


def national(client) -> dict:
    return results(client, "PPWP", "national")["regions"][0]


def test_crash_after_totals_before_current_replays_without_counting_twice(ch):
    sink = ClickHouseSink(ch)
    sink.acquire_lease(TOPIC, 0, "first")
    messages, truth = events_with_corrections(ch)
    first = preloaded(sink)
    batch = first.process(TOPIC, 0, messages)
    # The crash: region_totals (with the revision markers) landed, nothing after it did.
    totals = batch.totals.as_columns(0)
    sink._insert(sink_table("region_totals"), totals, "crash", sink._fence(TOPIC, {0: "first"}))
    assert ch.command("SELECT count() FROM tally_current") == 0

    # A new worker takes the partition and replays from the last commit, with other batch
    # boundaries.
    sink.acquire_lease(TOPIC, 0, "second")
    # the new owner reads state and markers as the worker does at assignment
    replay = preloaded(sink)
    for start in range(0, len(messages), 37):
        sink.write(replay.process(TOPIC, 0, messages[start : start + 37]), "second")
    assert verify(ch, truth) == []
    assert national(ch)["tps_reported"] == 200


# two provinces, three regencies; the second revision of a TPS corrects the first
ROLL_UP_STEPS = (
    ("PPWP", "3171010001001", {"01": 120, "02": 80, "03": 0}),
    ("PPWP", "3171020002003", {"01": 10, "02": 200, "03": 7}),
    ("PPWP", "3172010001001", {"01": 0, "02": 5, "03": 60}),
    ("PPWP", "3273010001002", {"01": 44, "02": 0, "03": 1}),
    ("PPWP", "3171010001001", {"01": 100, "02": 80, "03": 20}),
    ("DPR", "3171010001001", {"P01": 30, "P01-1": 12, "P02": 0}),
    ("DPR", "3273010001002", {"P01": 3, "P01-1": 0, "P02": 9}),
)


def test_the_insert_rolls_each_regency_up_as_the_reference_does_and_a_retry_adds_nothing(ch):
    """region_totals' insert writes the provinces' and the nation's rows from the regencies' it is
    sent; what it holds after is `TotalsDelta.rows` (`aggregate.rolled_up`), and the same insert
    again (a timed-out write retried with its token) is dropped whole, roll-up and all."""
    sink = ClickHouseSink(ch)
    sink.acquire_lease(TOPIC, 0, "roller")
    totals, current = TotalsDelta(), {}
    for number, (ballot, tps, votes) in enumerate(ROLL_UP_STEPS, 1):
        old = current.get((ballot, tps))
        new = Applied.of(tps, ballot, number, f"gw:{number}", "d", votes, 2, sum(votes.values()))
        totals.apply(old, new, dpt=300)
        current[(ballot, tps)] = new
    fence = sink._fence(TOPIC, {0: "roller"})
    sent = totals.as_columns(0)
    assert set(sent[1]) == {"regency", "tps"}
    for _ in range(2):
        sink._insert(sink_table("region_totals"), sent, "region_totals:roll-up:0:0-6", fence)
    held = {
        tuple(row[:4]): list(row[4:])
        for row in ch.query(
            "SELECT ballot, level, region, choice, sum(votes), sum(tps_reported), sum(invalid), "
            "sum(voters), sum(revision), sum(registered) FROM region_totals WHERE level != 'tps' "
            "GROUP BY ballot, level, region, choice "
            "HAVING sum(votes) != 0 OR sum(tps_reported) != 0 OR sum(invalid) != 0 "
            "OR sum(voters) != 0 OR sum(registered) != 0"
        ).result_rows
    }
    expected = {key: values for key, values in totals.rows.items() if key[1] != "tps"}
    assert {key[1] for key in expected} == {"national", "province", "regency"}
    assert held == expected
    changes = ch.command("SELECT count() FROM region_totals WHERE level = 'tps'")
    assert changes == len(totals.changes)


def sink_table(name: str):
    from streams.clickhouse import sink as module

    return next(
        t for t in (module.TOTALS, module.DECISIONS, module.REJECTIONS, CURRENT) if t.name == name
    )


def test_a_stalled_worker_is_fenced_after_its_partition_moved_on(ch):
    sink = ClickHouseSink(ch)
    messages, truth = events_with_corrections(ch, 100)
    sink.acquire_lease(TOPIC, 0, "stalled")
    stalled = preloaded(sink)
    # decided, then the worker stalls before writing
    late_batch = stalled.process(TOPIC, 0, messages)

    sink.acquire_lease(TOPIC, 0, "successor")
    successor = preloaded(sink)
    sink.write(successor.process(TOPIC, 0, messages), "successor")

    with pytest.raises(Fenced):
        sink.write(late_batch, "stalled")  # wakes up and tries to write: refused, nothing lands
    assert verify(ch, truth) == []
    assert sink.written["fenced"] == 1


def test_clickhouse_away_for_a_while_loses_nothing(stack, tmp_path):
    """A ClickHouse server of its own, stopped mid-run and started again on the same port."""
    data_dir, port = tmp_path / "own", servers.free_port()
    server = own_clickhouse(data_dir, port)
    address = servers.credited(f"http://127.0.0.1:{port}", servers.WRITER, "?")
    settings = stack.override(clickhouse=f"{address}/away", namespace="away.", partitions=2)
    pool = Workers(settings, tmp_path)
    try:
        wait_port(port)
        # made by the server at its start
        users = servers.clickhouse_users(stack.override(data_dir=data_dir))
        settings = settings.override(
            clickhouse=f"{servers.credited(address, servers.WRITER, users[servers.WRITER])}/away"
        )
        pool.settings = settings
        tally(settings, "init")
        out = tmp_path / "d"
        tally(settings, "simulate", "--tps", "3000", "--seed", "4", "--out", str(out), "--dry-run")
        tally(settings, "registry", "load", str(out / "registry.jsonl"))
        pool.start()
        wait_for(lambda: "leases taken" in pool.logs())
        producer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams",
                "produce",
                str(out / "events.jsonl"),
                "--rate",
                "300",
            ],
            cwd=REPO,
            env=env_for(settings),
            stdout=subprocess.DEVNULL,
        )
        time.sleep(4)
        server.send_signal(signal.SIGTERM)  # ClickHouse goes away mid-stream ...
        server.wait(timeout=30)
        time.sleep(4)
        # ... and comes back
        server = own_clickhouse(data_dir, port)
        wait_port(port)
        producer.wait(timeout=120)
        wait_caught_up(settings, 3000, timeout_s=180)
        assert (
            verify(
                connect(settings), read_truth(out / "truth.jsonl"), tps_file=out / "truth-tps.jsonl"
            )
            == []
        )
        said = pool.logs(tail=None)
        assert "retrying in" in said  # the worker said so clearly, once, and when it was back
        assert "ClickHouse answers again after" in said
    finally:
        pool.stop_all()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def env_for(settings):
    from tests.conftest import env_of

    return env_of(settings)


def wait_for(condition, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


def wait_port(port: int) -> None:
    wait_for(lambda: servers.port_open("127.0.0.1", port))


def test_schema_applies_twice(pipeline):
    apply_schema(pipeline)
    apply_schema(pipeline)


def test_the_sink_serves_the_batch_thread_and_rebalance_callbacks_at_once(ch, caplog):
    """Leases are taken from faust's rebalance callback while a batch thread reads: one session, no
    clash."""
    import threading

    from streams.clickhouse.registry_store import registry_version

    sink = ClickHouseSink(ch)
    errors: list[BaseException] = []

    def hammer(action) -> None:
        try:
            for _ in range(40):
                action()
        except BaseException as exc:  # noqa: BLE001 - any error fails the test below
            errors.append(exc)

    threads = [
        threading.Thread(target=hammer, args=(lambda: sink.acquire_lease(TOPIC, 1, "w"),)),
        threading.Thread(
            target=hammer, args=(lambda: sink.call("registry version", registry_version),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [
        r.getMessage() for r in caplog.records if r.name == "tally.sink"
    ] == []  # not even a retried clash
    assert (
        ch.command(
            f"SELECT max(generation) FROM partition_leases WHERE topic = '{TOPIC}' AND partition = "
            "1"
        )
        == 40
    )


def split_by_partition(messages: list[Message], partitions: int) -> dict[int, list[Message]]:
    from zlib import crc32

    split: dict[int, list[Message]] = {p: [] for p in range(partitions)}
    for m in messages:
        tps = orjson.loads(m.value)["tps"]
        split[crc32(tps.encode()) % partitions].append(m)
    return split


def two_partitions_of_mine(ch) -> tuple[ClickHouseSink, Processor, dict[int, list[Message]]]:
    """A sink holding partitions 0 and 1 as "me", a processor for both, and a night split in two."""
    sink = ClickHouseSink(ch)
    messages, _ = events_with_corrections(ch, 100)
    by_partition = split_by_partition(messages, 2)
    for p in (0, 1):
        sink.acquire_lease(TOPIC, p, "me")
    mine = worker_processor(sink)
    for p in (0, 1):
        mine.preload(p, {}, {})
    return sink, mine, by_partition


def test_one_insert_per_table_fences_each_partition_on_its_own(ch):
    """Batches of two partitions in one write: only the moved partition's rows are refused."""
    sink, mine, by_partition = two_partitions_of_mine(ch)
    batches = [mine.process(TOPIC, p, by_partition[p]) for p in (0, 1)]
    sink.acquire_lease(TOPIC, 1, "thief")  # partition 1 moves on while the batch is decided

    with pytest.raises(Fenced, match=r"partitions \[1\]"):
        sink.write_all(batches, {0: "me", 1: "me"})
    # Every insert kept partition 0's rows, which was still ours, and dropped partition 1's (the
    # rows region_totals writes are not those sent, so the lost lease is seen once the write ends);
    # nothing is acked, and the replay completes it exactly.
    totals = ch.command("SELECT sum(tps_reported) FROM region_totals WHERE level = 'national'")
    assert totals == len({orjson.loads(m.value)["tps"] for m in by_partition[0]})
    decided = ch.query(
        "SELECT src_partition, count() FROM tally_decisions GROUP BY src_partition"
    ).result_rows
    assert decided == [(0, len(batches[0].decisions))]


def test_a_fence_is_seen_when_the_moved_partition_wrote_no_totals_and_views_add_rows(ch):
    """The moved partition's batch is three resent records: decisions (duplicates), no totals, no
    rejections, so no insert without views can tell; the decisions' insert also writes the page
    table's copies (schema 014), so the server says more rows were written than were sent, though
    partition 1's were dropped."""
    sink, mine, by_partition = two_partitions_of_mine(ch)
    sink.write_all([mine.process(TOPIC, 1, by_partition[1])], {1: "me"})
    resent = [Message(m.offset + 10_000, m.value) for m in by_partition[1][:3]]
    batches = [mine.process(TOPIC, 0, by_partition[0]), mine.process(TOPIC, 1, resent)]
    moved = batches[1]
    assert moved.decisions and not (moved.totals.changes or moved.rejections or moved.current)
    sink.acquire_lease(TOPIC, 1, "thief")

    with pytest.raises(Fenced, match=r"partitions \[1\]"):
        sink.write_all(batches, {0: "me", 1: "me"})
    assert (
        ch.command(
            "SELECT count() FROM tally_decisions WHERE src_partition = 1 AND src_offset >= 10000"
        )
        == 0
    )


def test_a_retried_insert_dropped_by_its_token_is_not_taken_for_a_fence(ch):
    sink = ClickHouseSink(ch)
    messages, truth = events_with_corrections(ch, 50)
    sink.acquire_lease(TOPIC, 0, "me")
    batch = preloaded(sink).process(TOPIC, 0, messages)
    sink.write_all([batch], {0: "me"})
    # the same inserts again, as after a timeout: dropped, no Fenced
    sink.write_all([batch], {0: "me"})
    assert sink.written["fenced"] == 0
    assert verify(ch, truth) == []


def test_a_worker_holds_the_state_of_its_own_partitions_only(ch):
    """Nothing in a worker grows with the partitions it does not own. Events of four
    partitions are written; a worker that owns partitions 1 and 3 holds exactly their keys."""
    sink = ClickHouseSink(ch)
    messages, _ = events_with_corrections(ch)
    deciders = {}
    for partition in range(4):
        sink.acquire_lease(TOPIC, partition, f"w{partition}")
        deciders[partition] = worker_processor(sink)
        deciders[partition].preload(partition, *sink.load_partition(partition))
    by_tps = {}
    for (
        message
    ) in messages:  # the producer's partitioner: a TPS's events always go to one partition
        tps = orjson.loads(message.value).get("tps", "")
        by_tps.setdefault(tps, len(by_tps) % 4)
    for partition, processor in deciders.items():
        own = [m for m in messages if by_tps[orjson.loads(m.value).get("tps", "")] == partition]
        sink.write(processor.process(TOPIC, partition, own), f"w{partition}")
    owner = worker_processor(sink)
    for partition in (1, 3):
        owner.preload(partition, *sink.load_partition(partition))
    expected = {key for p in (1, 3) for key in deciders[p].state}
    assert set(owner.state) == expected and len(expected) > 50
    assert not expected & {key for p in (0, 2) for key in deciders[p].state}


def test_offsets_of_a_new_broker_epoch_are_not_taken_for_retries(ch):
    """After the embedded broker restarts empty, offsets 0.. name other events. Written under the
    old epoch, their batch would carry the token of an earlier insert and ClickHouse would drop it
    as a retry (shown first); under the next epoch it lands, and the totals count both nights'
    events."""
    sink = ClickHouseSink(ch)
    sink.acquire_lease(TOPIC, 0, "w")
    shape, stream, _ = generate(Plan(120, 11, ("PPWP",)))
    load_registry(ch, registry_records(shape))
    events = list(stream)
    first, second = events[:60], events[60:120]  # the night before the restart, and after it
    processor = worker_processor(sink)
    processor.preload(0, *sink.load_partition(0))
    sink.write(processor.process(TOPIC, 0, [Message(i, e) for i, e in enumerate(first)]), "w")
    reported = (
        "SELECT sum(tps_reported) FROM region_totals WHERE ballot = 'PPWP' AND level = 'national'"
    )
    assert ch.command(reported) == 60
    # offsets 0.. again
    again = processor.process(TOPIC, 0, [Message(i, e) for i, e in enumerate(second)])
    sink.write(again, "w")
    assert ch.command(reported) == 60  # epoch 0: dropped as the retry of the first insert, silently
    sink.epoch = 1
    sink.write(again, "w")
    assert ch.command(reported) == 120
    assert ch.command("SELECT count() FROM tally_decisions FINAL WHERE src_partition = 0") == 120
