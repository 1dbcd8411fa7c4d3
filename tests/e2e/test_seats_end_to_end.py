"""Dapil results and provisional seats through the real worker, ClickHouse, CLI and API."""

from __future__ import annotations

import re

import orjson
import pytest

from streams.core.seats import party_totals
from streams.ops.demo import wait_caught_up
from tests.conftest import api_server, get, tally
from tests.factories import key_record, signed, tally_dict

TPS1, TPS2 = "3171010001001", "3171010001002"
CHOICES = ["P01", "P01.01", "P01.02", "P02", "P02.01", "P02.02", "P03", "P03.01"]
REGISTRY = [
    {"type": "region", "code": "ID", "name": "Indonesia", "level": "national", "parent": ""},
    {"type": "region", "code": "31", "name": "DKI Jakarta", "level": "province", "parent": "ID"},
    {"type": "tps", "code": TPS1, "dpt": 281},
    {"type": "tps", "code": TPS2, "dpt": 281},
    {"type": "contest", "ballot": "DPR", "dapil": "DPR-31-01", "name": "DKI Jakarta I",
     "regions": ["31"], "seats": 3, "choices": [{"code": c} for c in CHOICES]},
    key_record(TPS1),
    key_record(TPS2),
]  # fmt: skip


def dpr(tps: str, event_id: str, revision: int = 1, **votes: int) -> bytes:
    counts = dict.fromkeys(CHOICES, 0) | {k.replace("_", "."): v for k, v in votes.items()}
    # the TPS received its DPT 281 + 2% = 287 ballots (OVER_ALLOCATION)
    spare = 286 - sum(counts.values()) - 5
    event = tally_dict(
        counts, tps=tps, ballot="DPR", event_id=event_id, revision=revision, spare=spare
    )
    return orjson.dumps(signed(event))


def seats_now(pipeline) -> dict:
    return orjson.loads(tally(pipeline, "seats", "--ballot", "DPR", "--json").stdout)


def test_corrections_and_late_tps_move_the_seats(pipeline, workers, tmp_path):
    workers.start()
    registry = tmp_path / "registry.jsonl"
    registry.write_bytes(b"\n".join(orjson.dumps(r) for r in REGISTRY))
    tally(pipeline, "registry", "load", str(registry))
    sent = 0

    def send(*events: bytes) -> None:
        nonlocal sent
        tally(pipeline, "produce", "-", stdin=b"\n".join(events) + b"\n")
        sent += len(events)
        wait_caught_up(pipeline, sent, timeout_s=120)

    # P01 150, P02 60, P03 10
    send(dpr(TPS1, "gw:1", P01=40, P01_01=80, P01_02=30, P02=20, P02_01=40, P03_01=10))
    first = seats_now(pipeline)
    dapil = first["dapils"][0]
    assert {p["party"]: p["seats"] for p in dapil["parties"]} == {"P01": 2, "P02": 1, "P03": 0}
    assert dapil["elected"] == ["P01.01", "P01.02", "P02.01"]
    assert dapil["margin"] | {} == {
        "party": "P01",
        "quotient": 50.0,
        "runner_up": "P02",
        "runner_up_quotient": 20.0,
        "votes_needed": 91,
    }
    assert {p["party"]: p["passes"] for p in first["national"]} == {
        "P01": True,
        "P02": True,
        "P03": True,
    }

    send(
        dpr(
            TPS1,
            "gw:2",
            revision=2,
            P01=10,
            P01_01=20,
            P01_02=10,
            P02=40,
            P02_01=60,
            P02_02=70,
            P03_01=10,
        )
    )
    # P01 40, P02 170, P03 10: the correction replaces, not adds
    corrected = seats_now(pipeline)["dapils"][0]
    assert {p["party"]: p["votes"] for p in corrected["parties"]} == {
        "P01": 40,
        "P02": 170,
        "P03": 10,
    }
    assert {p["party"]: p["seats"] for p in corrected["parties"]} == {"P01": 1, "P02": 2, "P03": 0}
    assert corrected["elected"] == ["P01.01", "P02.01", "P02.02"]

    send(dpr(TPS2, "gw:3", P03=100, P03_01=150))  # a late TPS: P03 260
    late = seats_now(pipeline)["dapils"][0]
    # P03 260, P02 170, P01 40: seats P03, P02, then P03's 86.7 beats P02's 56.7, but P03 listed one
    # candidate only: the seat goes on to P02 (rule 3), and the output says so.
    assert {p["party"]: p["seats"] for p in late["parties"]} == {"P01": 0, "P02": 2, "P03": 1}
    assert late["steps"][2]["skipped"] == ["P03"] and any(
        "too few candidates" in t for t in late["ties"]
    )
    assert late["elected"] == ["P02.01", "P02.02", "P03.01"]
    assert {
        "rule": "exhausted_list",
        "seat": 3,
        "party": "P02",
        "passed_over": ["P03"],
    }.items() <= (next(n for n in late["tie_notes"] if n["rule"] == "exhausted_list").items())
    # The page words it in Indonesian (English with ?lang=en), as every other word of it.
    from tests.e2e.test_page import screen

    with api_server(pipeline) as port:
        page = screen(port, "#/DPR/dapil/DPR-31-01", tmp_path)
        english = screen(port, "?lang=en#/DPR/dapil/DPR-31-01", tmp_path)
    ties = re.search(r'<p class="muted" id="ties">(.*?)</p>', page).group(1)
    assert "kursi 3: calon " in ties and "habis; kursi beralih ke hasil bagi berikutnya" in ties
    assert "listed" not in ties
    ties = re.search(r'<p class="muted" id="ties">(.*?)</p>', english).group(1)
    assert "seat 3: " in ties and "listed too few candidates; it went on" in ties
    one = orjson.loads(
        tally(pipeline, "results", "--ballot", "DPR", "--dapil", "DPR-31-01", "--json").stdout
    )
    assert one["tps_reported"] == 2 == one["tps_total"] and one["seats"] == 3
    assert {c["code"]: c["elected"] for c in one["candidates"]}["P03.01"] is True
    assert {p["party"]: p["votes"] for p in one["parties"]} == {"P01": 40, "P02": 170, "P03": 260}


def test_registry_load_refuses_a_legislative_contest_without_seats_and_replaces_nothing(
    pipeline, ch, tmp_path
):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_bytes(b"\n".join(orjson.dumps(r) for r in REGISTRY))
    bad.write_bytes(
        b"\n".join(orjson.dumps({k: v for k, v in r.items() if k != "seats"}) for r in REGISTRY)
    )
    tally(pipeline, "registry", "load", str(good))
    refused = tally(pipeline, "registry", "load", str(bad), check=False)
    assert refused.returncode == 2
    assert "contest DPR-31-01: seats is required for a DPR contest" in refused.stderr.decode()
    assert ch.query("SELECT dapil, seats FROM registry_contests FINAL").result_rows == [
        ("DPR-31-01", 3)
    ]


@pytest.fixture
def five_ballots(pipeline, workers, tmp_path):
    workers.start()
    out = tmp_path / "d"
    tally(
        pipeline, "simulate", "--tps", "500", "--seed", "15", "--ballots",
        "PPWP,DPR,DPD,DPRD_PROV,DPRD_KAB", "--corrections", "0.05", "--duplicates", "0.05",
        "--invalid", "0.02", "--abroad", "--out", str(out),
    )  # fmt: skip
    wait_caught_up(pipeline, len((out / "events.jsonl").read_bytes().splitlines()), timeout_s=180)
    with api_server(pipeline) as port:
        yield port, out


def test_a_five_ballot_night_verifies_dapils_and_seats_and_the_api_agrees_with_the_cli(
    five_ballots, pipeline
):
    port, out = five_ballots
    verified = tally(pipeline, "verify", "--truth", str(out / "truth.jsonl"), check=False)
    # dapil totals and seats included
    assert verified.returncode == 0, verified.stdout.decode()[-2000:]
    # A truth in which one dapil's elected candidate and a candidate of the same party who was not
    # elected swap their votes fails verify, naming the dapil's elected candidates: the seats are
    # elected again from the truth's votes, not taken from it.
    seats = orjson.loads(tally(pipeline, "seats", "--ballot", "DPR", "--json").stdout)
    lines = (out / "truth.jsonl").read_bytes().splitlines()
    dapil_at = next(
        i
        for i, line in enumerate(lines)
        if b'"level":"dapil"' in line and b'"ballot":"DPR"' in line
    )
    group = orjson.loads(lines[dapil_at])
    first = next(d for d in seats["dapils"] if d["elected"])
    votes = group["regions"][first["dapil"]]["votes"]
    winner = first["elected"][0]
    loser = next(
        c
        for c in votes
        if c.startswith(winner[:4]) and c not in first["elected"] and c != winner[:3]
    )
    votes[winner], votes[loser] = votes[loser], votes[winner] + 1
    lines[dapil_at] = orjson.dumps(group)
    (out / "tampered.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    refused = tally(pipeline, "verify", "--truth", str(out / "tampered.jsonl"), check=False)
    assert (
        refused.returncode == 1 and f"DPR seats {first['dapil']} elected" in refused.stdout.decode()
    )
    for ballot in ("DPR", "DPD", "DPRD_PROV", "DPRD_KAB"):
        status, body = get(port, f"/api/seats?ballot={ballot}")
        assert status == 200
        cli = orjson.loads(tally(pipeline, "seats", "--ballot", ballot, "--json").stdout)
        # read at two moments of a settled night
        assert {**body, "as_of": None} == {
            **cli,
            "as_of": None,
        }
        # and the CLI's, exactly
        assert get(port, f"/api/seats?ballot={ballot}&as_of={cli['as_of']}")[1] == cli
        assert (
            sum(d["seats"] for d in body["dapils"])
            == sum(len(d["elected"]) for d in body["dapils"])
            > 0
        )
        listed = get(port, f"/api/dapils?ballot={ballot}")[1]["dapils"]
        assert [d["dapil"] for d in listed] == [d["dapil"] for d in body["dapils"]]
        dapil = listed[0]["dapil"]
        status, one = get(port, f"/api/results?ballot={ballot}&dapil={dapil}")
        assert status == 200 and one["dapil"] == dapil and one["seats"] == listed[0]["seats"]
        assert sum(c["elected"] for c in one["candidates"]) == len(body["dapils"][0]["elected"])
        if ballot != "DPD":
            assert sum(p["votes"] for p in one["parties"]) == one["valid"]  # C1 eq. 6
    # TPS abroad: PPWP and DPR only
    abroad = get(port, "/api/results?ballot=PPWP&region=99")[1]["regions"]
    assert (
        abroad and sum(r["tps_total"] for r in abroad) == sum(r["tps_reported"] for r in abroad) > 0
    )
    assert get(port, "/api/results?ballot=DPD&region=99")[1]["regions"] == [] or all(
        r["tps_total"] == 0 for r in get(port, "/api/results?ballot=DPD&region=99")[1]["regions"]
    )
    voter_abroad = get(port, "/api/results?ballot=PPWP&level=tps&region=99")[1]["regions"][0][
        "code"
    ]
    [row] = get(port, f"/api/results?ballot=DPR&level=tps&region={voter_abroad}")[1]["regions"]
    assert row["dapil"].startswith("DPR-31-") and row["parties"] == party_totals(row["votes"])
    tallies = {t["ballot"]: t for t in get(port, f"/api/tps/{voter_abroad}")[1]["tallies"]}
    assert set(tallies) == {"PPWP", "DPR"} and tallies["PPWP"]["dapil"] == "PPWP"
    # a candidate number means something in its dapil only
    assert tallies["DPR"]["dapil"].startswith("DPR-31-")
    national = get(port, "/api/results?ballot=DPR&level=national")[1]["regions"][0]
    # party totals, no candidates summed across dapils
    assert all("." not in choice for choice in national["votes"])
    status, body = get(port, "/api/results?ballot=DPR&dapil=DPR-99-99")
    assert status == 404 and "unknown dapil" in body["error"]
    dpd = get(port, "/api/dapils?ballot=DPD")[1]["dapils"][0]["dapil"]
    status, body = get(port, f"/api/results?ballot=DPR&dapil={dpd}")
    assert status == 400 and "DPD dapil" in body["error"]
    status, body = get(port, "/api/seats?ballot=PPWP")
    # the ballots that elect seats
    assert status == 400 and "DPR, DPD, DPRD_PROV, DPRD_KAB" in body["error"]
    printed = tally(pipeline, "results", "--ballot", "DPR").stdout.decode()
    assert "P03" in printed and max(len(line) for line in printed.splitlines()) <= 80
