"""Every decision through the real worker: applied, duplicate, stale, conflict, rejected; flags;
hostile input."""

from __future__ import annotations

import time

import orjson

from streams.ops.demo import wait_caught_up
from streams.read.registry_memo import PROBE_S
from streams.read.results import results
from tests.conftest import api_server, get, tally
from tests.factories import key_record, signed, tally_dict

TPS = "3171010001001"
REGISTRY = [
    {"type": "region", "code": "ID", "name": "Indonesia", "level": "national", "parent": ""},
    {"type": "region", "code": "31", "name": "DKI Jakarta", "level": "province", "parent": "ID"},
    {"type": "tps", "code": TPS, "dpt": 281},
    {
        "type": "contest",
        "ballot": "PPWP",
        "dapil": "PPWP",
        "regions": ["ID"],
        "choices": [{"code": c} for c in ("01", "02", "03")],
    },
    {
        "type": "contest",
        "ballot": "DPR",
        "dapil": "DPR-31",
        "regions": ["31"],
        "seats": 3,
        "choices": [{"code": "P01"}, {"code": "P02"}],
    },
    key_record(TPS),
]


def produce(pipeline, tmp_path, lines: list[bytes]) -> None:
    registry = tmp_path / "registry.jsonl"
    registry.write_bytes(b"\n".join(orjson.dumps(r) for r in REGISTRY))
    tally(pipeline, "registry", "load", str(registry))
    tally(pipeline, "produce", "-", stdin=b"\n".join(lines) + b"\n")
    wait_caught_up(pipeline, len(lines), timeout_s=120)


def test_stale_conflict_duplicate_and_correction_decisions(pipeline, workers, tmp_path, ch):
    workers.start()
    first = signed(tally_dict(event_id="gw:1"))
    correction = signed(
        tally_dict(event_id="gw:2", revision=2, votes={"01": 100, "02": 100, "03": 30})
    )
    late_old = signed(
        tally_dict(event_id="gw:3", revision=1, votes={"01": 110, "02": 90, "03": 30})
    )
    conflict = signed(
        tally_dict(event_id="gw:4", revision=2, votes={"01": 101, "02": 99, "03": 30})
    )
    produce(
        pipeline,
        tmp_path,
        [orjson.dumps(e) for e in (first, correction, late_old, conflict, first)],
    )
    decided = ch.query(
        "SELECT event_id, decision FROM tally_decisions FINAL ORDER BY src_offset"
    ).result_rows
    assert decided == [
        ("gw:1", "applied"),
        ("gw:2", "applied"),
        ("gw:3", "stale"),
        ("gw:4", "conflict"),
        ("gw:1", "duplicate"),
    ]
    national = results(ch, "PPWP", "national")["regions"][0]
    assert national["votes"] == {"01": 100, "02": 100, "03": 30} and national["tps_reported"] == 1


def test_more_voters_on_a_legislative_ballot_than_on_ppwp_is_flagged(
    pipeline, workers, tmp_path, ch
):
    workers.start()
    ppwp = signed(tally_dict(event_id="gw:1"))  # 235 voters
    # 245 voters
    dpr = signed(
        tally_dict(
            event_id="gw:2", ballot="DPR", votes={"P01": 200, "P02": 40}, invalid=5, spare=41
        )
    )
    produce(pipeline, tmp_path, [orjson.dumps(ppwp), orjson.dumps(dpr)])
    flags = dict(ch.query("SELECT ballot, flags FROM tally_current FINAL").result_rows)
    assert flags == {"PPWP": [], "DPR": ["MORE_THAN_PPWP"]}


def test_hostile_input_is_rejected_and_the_worker_lives_on(pipeline, workers, tmp_path, ch):
    workers.start()
    hostile = [
        b"\x00\xff\xfe binary",
        b"[" * 5000 + b"]" * 5000,
        orjson.dumps(signed(tally_dict(gateway="x" * 70_000))),
        b'{"schema": "tally.v1", "votes": {"01": 1e308}}',
        b"null",
        orjson.dumps(signed(tally_dict(event_id="gw:ok"))),
    ]
    produce(pipeline, tmp_path, hostile)
    rows = ch.query(
        "SELECT reasons, length(payload) FROM tally_rejections FINAL ORDER BY src_offset"
    ).result_rows
    # Messages without a TPS key spread over partitions: compare without order.
    assert sorted(r for r, _ in rows) == [["MALFORMED"]] * 4 + [["SCHEMA"]]
    assert max(n for _, n in rows) <= 64 * 1024  # the payload is kept, cut at 64 KiB
    assert ch.query("SELECT event_id FROM tally_current FINAL").result_rows == [("gw:ok",)]
    assert all(p.poll() is None for p in workers.procs)


def test_a_tally_keyed_by_something_else_than_its_tps_is_rejected(pipeline, workers, tmp_path, ch):
    import asyncio

    from streams.kafka.produce import make_producer

    workers.start()
    registry = tmp_path / "registry.jsonl"
    registry.write_bytes(b"\n".join(orjson.dumps(r) for r in REGISTRY))
    tally(pipeline, "registry", "load", str(registry))

    async def send() -> None:
        producer = make_producer(pipeline.kafka)
        await producer.start()
        await producer.send_and_wait(
            pipeline.topic("tally.submissions"),
            orjson.dumps(signed(tally_dict(event_id="gw:k"))),
            key=b"gw-31-01",
        )
        await producer.stop()

    asyncio.run(send())
    wait_caught_up(pipeline, 1, timeout_s=120)
    assert ch.query("SELECT reasons FROM tally_rejections FINAL").result_rows == [
        (["KEY_MISMATCH"],)
    ]
    assert ch.command("SELECT count() FROM tally_current") == 0


def test_a_rejected_record_keeps_its_key_and_position_and_the_audit_finds_it_by_the_key(
    pipeline, workers, tmp_path, ch
):
    """A tombstone and an oversized value name no TPS: the key they came under does, and so does the
    audit trail (from a gateway tally did not write, on a partition of its choosing)."""
    from confluent_kafka import Producer

    workers.start()
    registry = tmp_path / "registry.jsonl"
    registry.write_bytes(b"\n".join(orjson.dumps(r) for r in REGISTRY))
    tally(pipeline, "registry", "load", str(registry))
    producer = Producer({"bootstrap.servers": pipeline.kafka, "message.max.bytes": 2_000_000})
    topic = pipeline.topic("tally.submissions")
    # a tombstone
    producer.produce(topic, value=None, key=TPS.encode(), partition=1, timestamp=1707900000000)
    producer.produce(
        topic,
        value=b"{" + b" " * 200_000 + b"}",
        key=TPS.encode(),
        partition=2,
        timestamp=1707900001000,
    )
    assert producer.flush(30) == 0
    wait_caught_up(pipeline, 2, timeout_s=120)
    rows = ch.query(
        "SELECT tps, kafka_key, reasons, toUnixTimestamp64Milli(received_at), length(payload) FROM "
        "tally_rejections FINAL "
        "ORDER BY received_at"
    ).result_rows
    assert rows == [
        (None, TPS, ["MALFORMED"], 1707900000000, 0),
        (None, TPS, ["MALFORMED"], 1707900001000, 64 * 1024),
    ]
    audit = orjson.loads(
        b"["
        + b",".join(tally(pipeline, "audit", "--tps", TPS, "--json").stdout.splitlines())
        + b"]"
    )
    # Each was received off its home (partitions 1 and 2 cannot both be it), forwarded, then
    # rejected at home.
    assert [e["decision"] for e in audit].count("rejected") == 2
    assert {e["kafka_key"] for e in audit} == {TPS}
    rejected = [e for e in audit if e["decision"] == "rejected"]
    assert all(e["findings"] and e["findings"][0].startswith("MALFORMED") for e in rejected)
    forwarded = [e for e in audit if e["decision"] == "forwarded"]
    assert {e["partition"] for e in forwarded} <= {1, 2} and len(forwarded) >= 1
    assert {e["forwarded_from"] for e in rejected} - {""} == {
        f"{e['partition']}:{e['offset']}" for e in forwarded
    }


def test_a_tps_page_shows_every_choice_of_its_form_though_zero_counts_are_not_kept(
    pipeline, workers, tmp_path, ch
):
    # tally_current keeps a tally's counts that are not 0 (the server parses and merges fewer);
    # the page, as the C1 form, has a line for each choice of the contest, its 0 too.
    workers.start()
    ppwp = signed(tally_dict(event_id="gw:1", votes={"01": 120, "02": 0, "03": 30}))
    dpr = signed(tally_dict(event_id="gw:2", ballot="DPR", votes={"P01": 0, "P02": 150}, invalid=5))
    produce(pipeline, tmp_path, [orjson.dumps(e) for e in (ppwp, dpr)])
    kept = dict(ch.query("SELECT ballot, votes FROM tally_current FINAL").result_rows)
    assert kept == {"PPWP": {"01": 120, "03": 30}, "DPR": {"P02": 150}}
    with api_server(pipeline) as port:
        status, body = get(port, f"/api/tps/{TPS}")
        assert status == 200
        assert {t["ballot"]: t["votes"] for t in body["tallies"]} == {
            "PPWP": {"01": 120, "02": 0, "03": 30},
            "DPR": {"P01": 0, "P02": 150},
        }
        # The API keeps the contests while the registry stays the same, and reads them again
        # once it changes: a fourth pair on the form is a line of its own on the page.
        registry = tmp_path / "registry-2.jsonl"
        registry.write_bytes(
            b"\n".join(
                orjson.dumps(
                    {**r, "choices": [{"code": c} for c in ("01", "02", "03", "04")]}
                    if r.get("ballot") == "PPWP"
                    else r
                )
                for r in REGISTRY
            )
        )
        tally(pipeline, "registry", "load", str(registry))
        time.sleep(PROBE_S + 0.2)  # the API asks the registry's version once a second at most
        status, body = get(port, f"/api/tps/{TPS}?ballot=PPWP")
    assert status == 200
    assert {t["ballot"]: t["votes"] for t in body["tallies"]}["PPWP"] == {
        "01": 120,
        "02": 0,
        "03": 30,
        "04": 0,
    }
