"""The gateways' simulator: deterministic, shaped like 2024, and every tally it calls valid is valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson

from streams.contract import decode_tally
from streams.registry import Registry
from streams.simulate import Plan, build_shape, generate, registry_records
from streams.validate import validate_tally

REGISTRY_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parent.parent / "schemas" / "registry.v1.schema.json").read_text())
)
ALL = ("PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB")


def test_same_arguments_give_the_same_bytes():
    plan = Plan(300, 42, ALL, duplicates=0.1, corrections=0.05, invalid=0.05)
    assert list(generate(plan)[1]) == list(generate(plan)[1])
    assert list(generate(plan)[1]) != list(generate(Plan(300, 43, ALL, 0.1, 0.05, 0.05))[1])


def test_registry_shape_and_file_format():
    shape = build_shape(5000, 1, ALL)
    levels = [r[2] for r in shape.regions]
    assert levels.count("province") == 38 and len(shape.tps) == 5000
    assert all(50 <= d <= 300 for d in shape.dpt)
    records = list(registry_records(shape))
    for record in records:
        REGISTRY_SCHEMA.validate(record)
    assert not any(c["ballot"] == "DPRD_KAB" and c["regions"][0].startswith("31") for c in shape.contests)
    aceh_dprd = next(c for c in shape.contests if c["ballot"] == "DPRD_PROV" and c["regions"][0].startswith("11"))
    assert any(ch["code"].startswith("P24") for ch in aceh_dprd["choices"])  # 18 national + 6 local parties


def test_every_simulated_tally_is_valid_and_every_broken_one_rejected():
    plan = Plan(400, 9, ALL, invalid=0.1)
    shape, events, truth = generate(plan)
    registry = Registry.from_records(registry_records(shape))
    valid = rejected = 0
    for raw in events:
        decoded = decode_tally(raw)
        ok = decoded.tally is not None and validate_tally(decoded.tally, registry).accepted
        in_truth = (
            decoded.tally is not None
            and getattr(truth.current.get((decoded.tally.ballot, decoded.tally.tps)), "event_id", None) == decoded.tally.event_id
        )
        assert ok == in_truth, raw[:200]
        valid += ok
        rejected += not ok
    assert rejected > 0 and valid > rejected
    # DKI Jakarta holds no DPRD_KAB ballot: no such tally is simulated.
    assert not any(b == "DPRD_KAB" and tps.startswith("31") for b, tps in truth.current)


def test_truth_sums_up_the_levels():
    shape, events, truth = generate(Plan(500, 3, ("PPWP",), corrections=0.1))
    list(events)
    result = truth.as_json()["ballots"]["PPWP"]
    national = result["national"]["ID"]
    assert national["tps_reported"] == 500 == national["tps_total"]
    for level in ("province", "regency", "district", "village", "tps"):
        assert sum(r["votes"]["01"] for r in result[level].values()) == national["votes"]["01"]
    assert orjson.dumps(result)
