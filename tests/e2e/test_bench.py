"""`tally bench` works end to end at small scale (its figures are measured in benchmarks/, not
asserted here)."""

from __future__ import annotations

import orjson

from streams.gateways.simulate import Plan, generate
from streams.ops.bench import backlog_of, tail_of
from tests.conftest import tally


def test_the_latency_phase_takes_whole_tps_in_order_and_the_backlog_the_rest(tmp_path):
    _, events, _ = generate(
        Plan(2000, 3, ("PPWP", "DPD"), duplicates=0.3, corrections=0.2, invalid=0.05)
    )
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(event + b"\n" for event in events))
    lines = path.read_bytes().splitlines()
    tail: list[bytes] = []
    backlog = list(backlog_of(path, tail_of(0.1), tail))

    def tps_of(line: bytes) -> str | None:
        try:
            return orjson.loads(line).get("tps")
        except orjson.JSONDecodeError:
            return None

    assert sorted(backlog + tail) == sorted(lines)
    assert 0.07 * len(lines) < len(tail) < 0.13 * len(lines)  # about the share asked for
    tail_tps = {tps_of(line) for line in tail} - {None}  # None: not JSON (a broken event)
    # a TPS is wholly in one or the other
    assert tail_tps and not tail_tps & {tps_of(line) for line in backlog}
    for part in (backlog, tail):  # each keeps the file's order (a correction stays after its tally)
        remaining = iter(lines)
        assert all(any(line == other for other in remaining) for line in part)
    decisions = {orjson.loads(line).get("revision") for line in tail if tps_of(line)}
    assert 2 in decisions  # corrections reach the latency phase too, not only late duplicates


def test_bench_reports_every_figure_and_verifies(pipeline, tmp_path):
    report_path = tmp_path / "bench.json"
    tally(
        pipeline,
        "bench",
        "--tps",
        "400",
        "--rate",
        "200,100",
        "--latency-seconds",
        "2",
        "--json",
        str(report_path),
    )
    report = orjson.loads(report_path.read_bytes())
    assert report["exact"] is True and report["differences"] == []
    assert report["events"] == report["backlog_events"] + report["tail_events"]
    # One latency phase an offered rate, lowest first, each with TPS of its own.
    phases = report["phases"]
    assert [p["offered"] for p in phases] == [100, 200]
    assert report["tail_events"] == sum(p["events"] for p in phases) and phases[0]["events"] > 0
    assert report["latency_events"] == phases[-1]["events"] > 0
    assert 0 < report["offered_rate_measured"] <= 200 * 1.5  # paced, not a burst
    assert all(0 < p["measured"] <= p["offered"] * 1.5 for p in phases)
    held = [p["offered"] for p in phases if p["p99_ms"] < 1000]
    assert report["rate_held"] == (max(held) if held else None)
    # The yardstick: one verification alone, before and after, the smaller kept and used.
    assert report["verify_alone_us"] == min(
        report["verify_alone_before_us"], report["verify_alone_after_us"]
    )
    assert report["verify_alone_us"] > 0 and report["signed_bytes"] > 200
    assert report["worker_per_verify"] == round(
        report["worker_cpu_us_per_event"] / report["verify_alone_us"], 2
    )
    for figure in (
        "produce_events_per_s",
        "baseline_events_per_s",
        "events_per_s",
        "ratio_to_baseline",
        "catch_up_s",
        "necessary_events_per_s",
        "ratio_to_necessary",
        "verify_us",
        "worker_cpu_us_per_event",
    ):
        assert report[figure] > 0, figure
    # The necessary baseline verifies every signature, so it is slower than the raw one.
    assert report["necessary_events_per_s"] < report["baseline_events_per_s"]
    # The log is on by default: its appender ran and its last checkpoint covers every applied tally.
    assert report["log"] is True and report["log_leaves"] > 0
    assert 0 <= report["latency_p50_ms"] <= report["latency_p99_ms"]
    assert len(report["worker_peak_rss_mib"]) == 1 and report["worker_peak_rss_mib"][0] > 10


def test_the_worker_profile_charges_a_sample_to_the_deepest_stage_that_names_one():
    from benchmarks.worker_profile import shares

    loop = (
        "Fetcher._fetcher (faust/transport/consumer.py:177);handle_records "
        "(streams/kafka/worker.py:304)"
    )
    lines = [
        f"{loop};Processor.process (streams/core/pipeline.py:82);decode_tally "
        "(streams/core/contract.py:211) 7",
        f"{loop};Processor.process (streams/core/pipeline.py:96);TotalsDelta.apply "
        "(streams/core/aggregate.py:142) 2",
        "Thread.run (threading.py:975);verify (streams/kafka/verify_threads.py:30);verify "
        "(nacl/bindings/crypto_sign.py:1) 5",
        f"{loop} 1",
        "select (selectors.py:468) 1",
    ]
    counted, total = shares(lines)
    assert total == 16
    assert counted == {
        "decode and canonical forms": 7,
        "verify (Ed25519, on the verify threads)": 5,
        "aggregation (vectors, roll-up, totals columns)": 2,
        "faust, mode, the worker's loop": 1,
        "asyncio and selectors": 1,
    }
