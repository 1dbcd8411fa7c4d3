"""The contract end to end on the real embedded stack: simulate -> worker -> results / verify."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer

from streams.gateways.truth import merge_truth
from streams.ops.demo import wait_caught_up
from streams.read.results import read_truth
from streams.read.verify_tps import tps_truth
from tests.conftest import tally


def test_clean_run_verifies_exactly(pipeline, workers, tmp_path):
    workers.start()
    out = tmp_path / "d"
    produced = tally(pipeline, "simulate", "--tps", "2000", "--seed", "7", "--out", str(out))
    assert b"produced 2,000 events" in produced.stdout
    wait_caught_up(pipeline, 2000, timeout_s=120)
    assert tally(pipeline, "verify", "--truth", str(out / "truth.jsonl")).returncode == 0

    national = orjson.loads(tally(pipeline, "results", "--json").stdout)
    truth = merge_truth(read_truth(out / "truth.jsonl"))["ballots"]["PPWP"]["national"]["ID"]
    assert national["ballot"] == "PPWP" and national["level"] == "national"
    [region] = national["regions"]
    assert region["code"] == "ID" and region["tps_reported"] == 2000 and region["tps_total"] == 2000
    assert region["votes"] == truth["votes"] and region["invalid"] == truth["invalid"]


def test_verify_fails_when_totals_differ(pipeline, workers, tmp_path):
    workers.start()
    out = tmp_path / "d"
    tally(pipeline, "simulate", "--tps", "300", "--seed", "1", "--out", str(out))
    wait_caught_up(pipeline, 300, timeout_s=120)
    groups = list(read_truth(out / "truth.jsonl"))
    next(g for g in groups if g["level"] == "province")["regions"]["11"]["votes"]["01"] += 1
    (tmp_path / "wrong.jsonl").write_bytes(b"".join(orjson.dumps(g) + b"\n" for g in groups))
    wrong = tally(pipeline, "verify", "--truth", str(tmp_path / "wrong.jsonl"), check=False)
    assert wrong.returncode == 1
    assert b"PPWP province 11 votes" in wrong.stdout


def test_all_ballots_with_duplicates_corrections_and_invalid_stay_exact(
    pipeline, workers, tmp_path, ch
):
    workers.start()
    workers.start()  # two workers share the partitions as one consumer group
    out = tmp_path / "d"
    tally(
        pipeline,
        "simulate",
        "--tps",
        "600",
        "--seed",
        "11",
        "--ballots",
        "PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB",
        "--duplicates",
        "0.05",
        "--corrections",
        "0.03",
        "--invalid",
        "0.02",
        "--out",
        str(out),
    )
    events = (out / "events.jsonl").read_bytes().splitlines()
    wait_caught_up(pipeline, len(events), timeout_s=180)
    assert tally(pipeline, "verify", "--truth", str(out / "truth.jsonl")).returncode == 0

    decisions = dict(
        ch.query(
            "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
        ).result_rows
    )
    assert decisions["duplicate"] > 0 and decisions["rejected"] > 0
    assert sum(decisions.values()) == len(events)
    # Every rejected event is stored with its raw payload and reasons ...
    rejected = ch.query("SELECT reasons, payload FROM tally_rejections FINAL").result_rows
    assert len(rejected) == decisions["rejected"]
    assert all(reasons for reasons, _ in rejected)
    assert {r for reasons, _ in rejected for r in reasons} >= {"VOTES_MISMATCH", "UNKNOWN_TPS"}
    # ... and on the rejection topic.
    assert (
        len(
            asyncio.run(
                _read_topic(pipeline.kafka, pipeline.topic("tally.rejected"), decisions["rejected"])
            )
        )
        == decisions["rejected"]
    )


async def _read_topic(bootstrap: str, topic: str, want: int, timeout_s: float = 30) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            got += [orjson.loads(m.value) for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    return got


def test_results_region_scope(pipeline, workers, tmp_path):
    workers.start()
    out = tmp_path / "d"
    tally(pipeline, "simulate", "--tps", "500", "--seed", "5", "--out", str(out))
    wait_caught_up(pipeline, 500, timeout_s=120)
    truth = merge_truth(read_truth(out / "truth.jsonl"))["ballots"]["PPWP"]
    children = orjson.loads(tally(pipeline, "results", "--region", "32", "--json").stdout)
    assert children["level"] == "regency"
    assert {r["code"] for r in children["regions"]} == {
        c for c in truth["regency"] if c.startswith("32")
    }
    itself = orjson.loads(
        tally(pipeline, "results", "--level", "province", "--region", "32", "--json").stdout
    )
    assert [r["code"] for r in itself["regions"]] == ["32"]
    assert itself["regions"][0]["votes"] == truth["province"]["32"]["votes"]
    tps = tps_truth(out / "truth.jsonl", out / "truth-tps.jsonl", "PPWP")
    some_tps = next(iter(tps))
    one = orjson.loads(
        tally(pipeline, "results", "--level", "tps", "--region", some_tps, "--json").stdout
    )
    assert [r["code"] for r in one["regions"]] == [some_tps]
    assert one["regions"][0]["votes"] == tps[some_tps]["votes"]
