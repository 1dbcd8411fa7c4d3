"""`verify` with the truth's TPS loaded into ClickHouse: exact on a counted night, and every kind of
difference at the TPS, village and district levels named."""

from __future__ import annotations

import orjson
import pytest

from streams.clickhouse.registry_store import load_registry
from streams.clickhouse.sink import ClickHouseSink
from streams.core.pipeline import Message
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.gateways.truth import TRUTH, TRUTH_TPS
from streams.read.results import read_truth, verify
from tests.e2e.test_exactly_once import TOPIC, preloaded

BALLOTS = ("PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB")


@pytest.fixture
def night(ch, tmp_path):
    """A five-ballot night with corrections and duplicates, counted into ClickHouse; its truth
    files."""
    shape, stream, truth = generate(Plan(300, 21, BALLOTS, duplicates=0.05, corrections=0.1))
    load_registry(ch, registry_records(shape))
    sink = ClickHouseSink(ch)
    sink.acquire_lease(TOPIC, 0, "w")
    processor = preloaded(sink)
    messages = [Message(offset, raw) for offset, raw in enumerate(stream)]
    for start in range(0, len(messages), 500):
        sink.write(processor.process(TOPIC, 0, messages[start : start + 500]), "w")
    truth.write_files(tmp_path)
    return tmp_path


def lines(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write(path, rows: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def test_a_counted_night_verifies_exactly_and_leaves_no_scratch_table(ch, night):
    assert verify(ch, read_truth(night / TRUTH), tps_file=night / TRUTH_TPS) == []
    assert ch.command("SELECT count() FROM system.tables WHERE name LIKE 'verify_truth_%'") == 0
    # The fine levels are no longer in truth.jsonl: only their TPS totals, and each ballot's
    # choices.
    fine = [g for g in read_truth(night / TRUTH) if g["level"] in ("district", "village", "tps")]
    assert fine and all(set(g) == {"ballot", "level", "scope", "tps_total"} for g in fine)


def test_a_tps_counted_wrong_is_named_at_its_tps_village_and_district(ch, night):
    rows = lines(night / TRUTH_TPS)
    victim = next(r for r in rows if r["ballot"] == "DPR" and r["counts"][0] > 0)
    victim["counts"][0] -= 1
    write(night / "wrong-tps.jsonl", rows)
    found = verify(ch, read_truth(night / TRUTH), tps_file=night / "wrong-tps.jsonl")
    tps = victim["tps"]
    assert any(line.startswith(f"DPR tps {tps} votes: expected") for line in found), found
    assert f"DPR village {tps[:10]} votes (all choices)" in "\n".join(found)
    assert f"DPR district {tps[:6]} votes (all choices)" in "\n".join(found)
    assert not any(line.startswith(("PPWP", "DPD", "DPRD")) for line in found)


def test_a_tps_missing_from_the_truth_or_moved_to_another_village_is_named(ch, night):
    rows = lines(night / TRUTH_TPS)
    gone = rows.pop(0)
    write(night / "short.jsonl", rows)
    found = verify(ch, read_truth(night / TRUTH), tps_file=night / "short.jsonl")
    assert f"{gone['ballot']} tps {gone['tps']} tps_reported: expected 0, ClickHouse has 1" in found

    moved = next(r for r in rows if r["ballot"] == "PPWP")
    # another village of the same district
    moved["tps"] = moved["tps"][:6] + "9999" + moved["tps"][10:]
    write(night / "moved.jsonl", [gone, *rows])
    found = "\n".join(verify(ch, read_truth(night / TRUTH), tps_file=night / "moved.jsonl"))
    assert f"PPWP village {moved['tps'][:10]} tps_reported: expected 1, ClickHouse has 0" in found
    assert f"PPWP district {moved['tps'][:6]}" not in found  # the district's sums still add up


def test_a_wrong_tps_total_of_a_fine_level_is_named(ch, night):
    groups = list(read_truth(night / TRUTH))
    village = next(g for g in groups if g["level"] == "village")
    code = next(iter(village["tps_total"]))
    village["tps_total"][code] += 1
    found = verify(ch, groups, tps_file=night / TRUTH_TPS)
    expected, ballot = village["tps_total"][code], village["ballot"]
    assert found == [
        f"{ballot} village {code} tps_total: expected {expected}, ClickHouse has {expected - 1}"
    ]
