"""The gateways' simulator: deterministic, shaped like 2024, and every tally it calls valid is
valid."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import orjson

from streams.core.contract import decode_tally
from streams.core.regions import REGION_LEVELS, region_of
from streams.core.registry import Registry
from streams.core.seats import (
    DPR_THRESHOLD,
    Dapil,
    ballot_seats,
    body_of,
    party_totals,
    reported_votes,
)
from streams.core.validate import validate_tally
from streams.gateways.shape import abroad_tps, build_shape, registry_records
from streams.gateways.simulate import Plan, generate
from streams.gateways.truth import merge_truth
from streams.read.seats_json import ballot_json
from tests.factories import tally_dict

REGISTRY_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(
        (Path(__file__).resolve().parents[2] / "schemas" / "registry.v1.schema.json").read_text()
    )
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
    assert not any(
        c["ballot"] == "DPRD_KAB" and c["regions"][0].startswith("31") for c in shape.contests
    )
    aceh_dprd = next(
        c for c in shape.contests if c["ballot"] == "DPRD_PROV" and c["regions"][0].startswith("11")
    )
    parties = {ch["code"]: ch["name"] for ch in aceh_dprd["choices"] if "." not in ch["code"]}
    # + 6 local
    assert (
        len(parties) == 24 and parties["P21"] == "Partai Aceh" and parties["P24"] == "Partai Ummat"
    )
    elsewhere = next(
        c for c in shape.contests if c["ballot"] == "DPR" and not c["regions"][0].startswith("11")
    )
    numbers = sorted(ch["code"] for ch in elsewhere["choices"] if "." not in ch["code"])
    assert numbers == [f"P{n:02d}" for n in (*range(1, 18), 24)]  # the 2024 numbers: 1-17 and 24


def test_a_national_night_has_exactly_the_2024_registry():
    shape = build_shape(820_161, 1, ALL, abroad_tps(820_161))
    home = [t for t in shape.tps if not t.startswith("99")]
    # + 3,059 abroad
    assert len(home) == 820_161 and len(shape.tps) == 823_220 and max(shape.dpt) <= 300
    missions = [
        code for code, _, level, _ in shape.regions if level == "district" and code.startswith("99")
    ]
    assert len(missions) == 128
    # DKI Jakarta II
    assert [c["dapil"] for c in shape.contests if "99" in c["regions"]] == ["DPR-31-02"]
    levels = Counter(level for code, _, level, _ in shape.regions if not code.startswith("99"))
    assert levels == {
        "national": 1,
        "province": 38,
        "regency": 514,
        "district": 7_277,
        "village": 83_731,
    }
    dapils = Counter(c["ballot"] for c in shape.contests)
    assert dapils == {"PPWP": 1, "DPR": 84, "DPD": 38, "DPRD_PROV": 301, "DPRD_KAB": 2_325}
    assert [c["choices"] for c in shape.contests if c["ballot"] == "PPWP"][0][2][
        "code"
    ] == "03"  # 3 pairs
    parties = {
        c["dapil"]: {ch["code"] for ch in c["choices"] if "." not in ch["code"]}
        for c in shape.contests
    }
    assert all(
        len(p) == 18 for d, p in parties.items() if d.startswith(("DPR-", "DPRDP-3", "DPRDK-3"))
    )
    # Aceh's 6 local
    assert all(len(p) == 24 for d, p in parties.items() if d.startswith(("DPRDP-11", "DPRDK-11")))
    assert not any(
        c["ballot"] == "DPRD_KAB" and c["regions"][0].startswith("31") for c in shape.contests
    )
    seats = {
        b: [c["seats"] for c in shape.contests if c["ballot"] == b]
        for b in ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB")
    }
    assert {b: sum(s) for b, s in seats.items()} == {
        "DPR": 580,
        "DPD": 152,
        "DPRD_PROV": 2_372,
        "DPRD_KAB": 17_510,
    }
    assert (min(seats["DPR"]), max(seats["DPR"])) == (3, 10) and set(seats["DPD"]) == {4}
    assert (
        min(seats["DPRD_PROV"] + seats["DPRD_KAB"]) >= 3
        and max(seats["DPRD_PROV"] + seats["DPRD_KAB"]) <= 12
    )
    # lists <= seats
    for contest in (c for c in shape.contests if c["ballot"] in ("DPR", "DPRD_PROV", "DPRD_KAB")):
        assert (
            max(Counter(ch["code"][:3] for ch in contest["choices"] if "." in ch["code"]).values())
            <= contest["seats"]
        )
    per_village = sorted(Counter(tps[:10] for tps in shape.tps).values())
    # ~9.8 a village, skewed
    assert per_village[len(per_village) // 2] <= 10 < 3 * 10 < per_village[-1]


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
            and getattr(
                truth.current.get((decoded.tally.ballot, decoded.tally.tps)), "event_id", None
            )
            == decoded.tally.event_id
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


def test_every_region_of_the_truth_is_the_sum_of_its_tps_and_fine_levels_come_a_province_a_line():
    _, events, truth = generate(Plan(3000, 4, ALL, corrections=0.1))
    list(events)
    expected: dict[tuple[str, str, str], dict] = {}
    for (ballot, tps), entry in truth.current.items():  # summed the plain way, TPS by TPS
        for level in REGION_LEVELS:
            region = expected.setdefault(
                (ballot, level, region_of(tps, level)), {"votes": Counter(), "invalid": 0, "n": 0}
            )
            region["votes"].update(dict(zip(entry.choices, entry.counts, strict=True)))
            region["invalid"] += entry.invalid
            region["n"] += 1
    seen = set()
    for group in truth.groups():
        if group["level"] in ("dapil", "seats"):
            continue
        for code, got in group["regions"].items():
            if group["level"] in ("district", "village", "tps"):
                assert code[:2] == group["scope"]
            if group["level"] == "tps":
                continue
            want = expected[(group["ballot"], group["level"], code)]
            # party totals, not candidates
            votes = reported_votes(group["ballot"], group["level"], dict(want["votes"]))
            assert (got["votes"], got["invalid"], got["tps_reported"]) == (
                votes,
                want["invalid"],
                want["n"],
            )
            seen.add((group["ballot"], group["level"], code))
    assert seen == set(expected)


def test_every_tps_reports_every_ballot_it_holds():
    """A night with no invalid events ends with every TPS counted on every ballot that covers it (a
    DPRD kab/kota dapil is a set of districts: those TPS were once left without a tally)."""
    shape, events, truth = generate(Plan(3000, 5, ALL))
    list(events)
    ballots = truth.as_json()["ballots"]
    for ballot in ALL:
        national = ballots[ballot]["national"]["ID"]
        assert national["tps_reported"] == national["tps_total"] > 0, ballot
    held = {c["ballot"] for c in shape.contests if all(len(r) == 6 for r in c["regions"])}
    assert "DPRD_KAB" in held  # the case above is in this shape


def test_arrivals_follow_the_2024_upload_curve():
    from datetime import datetime

    from streams.gateways.tallies import POLLS_CLOSE, arrival_hours

    assert (
        arrival_hours(0.0727) == 6.0
        and arrival_hours(0.425) == 23.0
        and arrival_hours(1.0) == 336.0
    )
    _, events, _ = generate(Plan(2000, 1, ("PPWP",)))
    hours = [
        (datetime.fromisoformat(orjson.loads(e)["submitted_at"]) - POLLS_CLOSE).total_seconds()
        / 3600
        for e in events
    ]
    assert hours == sorted(hours)  # no duplicates or corrections here: arrival order
    by_19 = sum(h <= 6 for h in hours) / len(hours)
    assert 0.06 < by_19 < 0.09  # 7.27% of TPS by 19:00 on election day


def test_speedup_paces_production_by_the_simulated_clock():
    from streams.gateways.gateway import night_pace

    pace = night_pace(3600.0)  # an hour a second
    event = orjson.dumps({"submitted_at": "2024-02-14T19:00:00+07:00"})
    assert pace(event) == 6.0 and pace(b"not json") == 0.0


def test_a_smaller_night_scales_seats_down_and_every_dapil_keeps_three():
    shape = build_shape(3000, 2, ALL)
    for ballot, low in (("DPR", 3), ("DPRD_PROV", 3), ("DPRD_KAB", 3)):
        seats = [c["seats"] for c in shape.contests if c["ballot"] == ballot]
        assert min(seats) >= low
        assert sum(seats) == round(
            {"DPR": 580, "DPRD_PROV": 2372, "DPRD_KAB": 17510}[ballot]
            * len(seats)
            / {"DPR": 84, "DPRD_PROV": 301, "DPRD_KAB": 2325}[ballot]
        )


def elected(shape, merged: dict, ballot: str) -> dict:
    """The seats the truth's dapil votes elect, as the read side elects them (verify)."""
    dapils = merged[ballot]["dapil"]
    return ballot_json(
        ballot_seats(
            ballot,
            [
                Dapil(
                    c["dapil"],
                    c["seats"],
                    tuple(choice["code"] for choice in c["choices"]),
                    dapils.get(c["dapil"], {}).get("votes", {}),
                    body_of(ballot, c["regions"]),
                )
                for c in shape.contests
                if c["ballot"] == ballot
            ],
            DPR_THRESHOLD,
        )
    )


def test_legislative_votes_follow_2024s_parties_so_the_threshold_matters():
    shape, events, truth = generate(Plan(4000, 5, ("DPR",)))
    list(events)
    seats = elected(shape, merge_truth(truth.groups())["ballots"], "DPR")
    passing = [p["party"] for p in seats["national"] if p["passes"]]
    assert 6 <= len(passing) <= 10  # 8 in 2024
    assert {"P03", "P04", "P02", "P01"} <= set(passing) and "P09" not in passing
    assert sum(p["seats"] for p in seats["national"]) == sum(d["seats"] for d in seats["dapils"])
    # Candidate votes are skewed: in a dapil, a party's best candidate has far more than its median
    # one.
    dapil = merge_truth(truth.groups())["ballots"]["DPR"]["dapil"]
    some = next(iter(dapil.values()))["votes"]
    listed = sorted((n for c, n in some.items() if c.startswith("P03.")), reverse=True)
    assert len(listed) < 3 or listed[0] > 3 * listed[len(listed) // 2]


def test_the_truth_of_a_dapil_is_the_sum_of_its_tps():
    shape, events, truth = generate(Plan(1500, 6, ALL, corrections=0.1))
    list(events)
    dapil_of = {}
    merged = merge_truth(truth.groups())["ballots"]
    for (ballot, tps), entry in truth.current.items():
        dapil_of[(ballot, tps)] = entry.dapil
        if ballot == "PPWP":
            continue
        got = merged[ballot]["dapil"][entry.dapil]
        assert set(entry.choices) >= set(got["votes"])
    for ballot in ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB"):
        plain: dict[str, Counter] = {}
        for (b, _), entry in truth.current.items():
            if b == ballot:
                plain.setdefault(entry.dapil, Counter()).update(
                    dict(zip(entry.choices, entry.counts, strict=True))
                )
        for code, want in plain.items():
            got = merged[ballot]["dapil"][code]
            assert got["votes"] == dict(want) and got["parties"] == party_totals(want)
        assert len(merged[ballot]["dapil"]) == sum(
            1 for c in shape.contests if c["ballot"] == ballot
        )
        threshold = 0.04 if ballot == "DPR" else None  # what the read side elects with
        assert merged[ballot]["seats"] == {"threshold": threshold}


def test_tps_abroad_hold_ppwp_and_dpr_only_and_count_in_the_national_total():
    plan = Plan(2000, 7, ALL, abroad=True)
    shape, events, truth = generate(plan)
    abroad = [t for t in shape.tps if t.startswith("99")]
    assert len(abroad) == abroad_tps(2000, True) == 7
    list(events)
    held = Counter(b for (b, tps) in truth.current if tps.startswith("99"))
    assert held == {"PPWP": len(abroad), "DPR": len(abroad)}
    registry = Registry.from_records(registry_records(shape))
    dpd = decode_tally(orjson.dumps(tally_dict(tps=abroad[0], ballot="DPD", votes={"D01": 10})))
    assert [f.reason.value for f in validate_tally(dpd.tally, registry).findings][
        0
    ] == "BALLOT_NOT_HELD"
    national = merge_truth(truth.groups())["ballots"]["PPWP"]["national"]["ID"]
    # abroad inside the national total
    assert national["tps_reported"] == national["tps_total"] == len(shape.tps)
    dapils = merge_truth(truth.groups())["ballots"]["DPR"]["dapil"]
    holder = next(c for c in shape.contests if "99" in c["regions"])
    # DKI Jakarta II, or DKI's only dapil on a small night
    assert holder["dapil"].startswith("DPR-31-")
    at_home = sum(
        1 for t in shape.tps if any(t.startswith(r) for r in holder["regions"] if r != "99")
    )
    assert dapils[holder["dapil"]]["tps_total"] == at_home + len(abroad)


def test_a_tps_has_one_set_of_voters_and_no_legislative_ballot_outnumbers_ppwp():
    """MORE_THAN_PPWP is for the rare broken count: on the simulated night every ballot of a TPS has
    the same registered voters, and a legislative ballot never more voters than PPWP (DPTb voters
    from another dapil get the presidential ballot only)."""
    from collections import defaultdict

    from streams.core.contract import BALLOTS
    from streams.gateways.simulate import Plan, generate

    _, events, _ = generate(Plan(1500, 5, BALLOTS, corrections=0.05))
    seen: dict[str, list[dict]] = defaultdict(list)
    for raw in events:
        seen[orjson.loads(raw)["tps"]].append(orjson.loads(raw))
    for tallies in seen.values():
        assert len({orjson.dumps(t["voters"]["registered"]) for t in tallies}) == 1
        ppwp = max(sum(t["voters"]["voted"].values()) for t in tallies if t["ballot"] == "PPWP")
        assert all(sum(t["voters"]["voted"].values()) <= ppwp for t in tallies)
