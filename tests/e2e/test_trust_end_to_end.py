"""Signed submissions through the real worker: forged events never count, a replayed old signed
tally is a duplicate or stale, a revoked device key is refused, and the audit trail shows it all."""

from __future__ import annotations

import time

import orjson

from streams.gateways.shape import device_secret_key, key_id_of
from streams.gateways.tallies import sign
from streams.ops.demo import wait_caught_up
from streams.read.answers import ContestIndex, tps_detail
from streams.read.results import read_truth, verify
from tests.conftest import tally

SEED = 5


def test_forged_replayed_and_revoked_never_count_and_the_audit_shows_why(
    pipeline, workers, tmp_path, ch
):
    workers.start()
    out = tmp_path / "night"
    tally(
        pipeline,
        "simulate",
        "--tps",
        "300",
        "--seed",
        str(SEED),
        "--forged",
        "0.2",
        "--corrections",
        "0.1",
        "--out",
        str(out),
    )
    events = (out / "events.jsonl").read_bytes().splitlines()
    truth = list(read_truth(out / "truth.jsonl"))
    wait_caught_up(pipeline, len(events), timeout_s=120)
    assert verify(ch, truth, tps_file=out / "truth-tps.jsonl") == []  # not one forged vote counted
    rejected = dict(
        ch.query("SELECT reasons[1], count() FROM tally_rejections FINAL GROUP BY 1").result_rows
    )
    assert set(rejected) == {"UNSIGNED", "BAD_SIGNATURE", "WRONG_TPS_KEY"}

    # Every old signed tally again, as an attacker (or a confused gateway) would replay them.
    applied_before = decisions(ch)["applied"]
    tally(pipeline, "produce", "-", stdin=b"\n".join(events) + b"\n")
    wait_caught_up(pipeline, 2 * len(events), timeout_s=120)
    after = decisions(ch)
    # each replayed tally is a duplicate or stale, never applied
    assert after["applied"] == applied_before
    assert after["duplicate"] + after.get("stale", 0) >= applied_before
    assert verify(ch, truth, tps_file=out / "truth-tps.jsonl") == []

    # A device is stolen: its key is revoked, then a correctly signed 'correction' arrives.
    corrected = next(orjson.loads(e) for e in events if b'"revision":2' in e and b'"sig"' in e)
    victim = corrected["tps"]
    tally(pipeline, "registry", "revoke", key_id_of(victim))
    time.sleep(3)  # workers re-read the registry every 2 s
    forged = {k: v for k, v in corrected.items() if k not in ("sig", "key_id")}
    forged.update(event_id="stolen:1", revision=3)
    stolen = sign(forged, device_secret_key(SEED, victim), key_id_of(victim))
    tally(pipeline, "produce", "-", stdin=orjson.dumps(stolen) + b"\n")
    wait_caught_up(pipeline, 2 * len(events) + 1, timeout_s=60)
    assert verify(ch, truth, tps_file=out / "truth-tps.jsonl") == []

    trail = [
        orjson.loads(line)
        for line in tally(pipeline, "audit", "--tps", victim, "--json").stdout.splitlines()
    ]
    assert trail[-1]["event_id"] == "stolen:1"
    assert (trail[-1]["decision"], trail[-1]["reasons"], trail[-1]["key_id"]) == (
        "rejected",
        ["REVOKED_KEY"],
        key_id_of(victim),
    )
    assert any("revoked" in f for f in trail[-1]["findings"])
    assert {"applied", "duplicate"} <= {e["decision"] for e in trail}
    assert all(e["gateway"] and e["received_at"] for e in trail)
    # the same trail through the API
    assert tps_detail(ch, victim, None, ContestIndex.read(ch))["history"] == trail
    printed = tally(pipeline, "audit", "--tps", victim).stdout.decode()
    assert "REVOKED_KEY" in printed and key_id_of(victim) in printed


def decisions(ch) -> dict[str, int]:
    return dict(
        ch.query(
            "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
        ).result_rows
    )


def test_a_stolen_key_cannot_count_more_than_the_ballots_nor_backdate_past_its_revocation(
    pipeline, workers, tmp_path, ch
):
    """A stolen key's reach is bounded by the TPS's allocation of ballots; and the producer sets a
    record's Kafka timestamp (CreateTime): a correction sent with a timestamp an hour before the
    revocation is still judged by when a worker read it."""
    from confluent_kafka import Producer

    from streams.gateways.shape import key_id_of
    from tests.e2e.test_decisions_end_to_end import TPS, produce
    from tests.factories import signed, tally_dict

    workers.start()
    first = signed(tally_dict(event_id="gw:1"))
    # Before the theft is noticed, the key signs a C1-consistent 'correction' of 900,000 DPK voters:
    # the TPS could not have had the ballots (DPT 281 + 2% = 287), so it never counts.
    inflated = tally_dict(
        event_id="stolen:0",
        revision=2,
        votes={"01": 120, "02": 900_080, "03": 30},
        dpk=900_000,
        voted_dpk=900_000,
        spare=0,
        returned=0,
    )
    produce(pipeline, tmp_path, [orjson.dumps(first), orjson.dumps(signed(inflated))])
    assert ch.query(
        "SELECT decision, reasons FROM tally_decisions FINAL ORDER BY src_offset"
    ).result_rows == [
        ("applied", []),
        ("rejected", ["OVER_ALLOCATION"]),
    ]
    tally(pipeline, "registry", "revoke", key_id_of(TPS))
    revoked_at = time.time()
    time.sleep(3)  # workers re-read the registry every 2 s
    stolen = signed(
        tally_dict(event_id="stolen:1", revision=2, votes={"01": 10, "02": 200, "03": 20})
    )
    producer = Producer({"bootstrap.servers": pipeline.kafka})
    producer.produce(
        pipeline.topic("tally.submissions"),
        orjson.dumps(stolen),
        key=TPS.encode(),
        timestamp=int((revoked_at - 3600) * 1000),
    )
    assert producer.flush(30) == 0
    wait_caught_up(pipeline, 3, timeout_s=60)
    row = ch.query(
        "SELECT decision, reasons, toUnixTimestamp64Milli(received_at), "
        "toUnixTimestamp64Milli(judged_at) "
        "FROM tally_decisions FINAL WHERE event_id = 'stolen:1'"
    ).result_rows
    [(decision, reasons, received_ms, judged_ms)] = row
    assert (decision, reasons) == ("rejected", ["REVOKED_KEY"])
    assert received_ms == int((revoked_at - 3600) * 1000) and judged_ms >= revoked_at * 1000 - 1000
    assert ch.query("SELECT revision FROM tally_current FINAL").result_rows == [(1,)]
