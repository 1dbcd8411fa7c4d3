"""Results per dapil (electoral district) and the seats they elect, from the totals now or at a
moment.

A dapil is a set of regions (registry_contests.regions): regencies for DPR and DPRD provinsi, a
province for DPD, districts for DPRD kab/kota. Its totals are the sums of its regions', read in one
statement (read.totals.dapil_sums). Candidate codes are only summed inside one dapil, where each
names one person.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

from clickhouse_connect.driver.client import Client

from streams.core.moments import moment_text
from streams.core.regions import NATIONAL, level_of
from streams.core.seats import (
    LEGISLATIVE,
    Dapil,
    ballot_seats,
    body_of,
    dapil_seats,
    dpd_seats,
    party_of,
    party_totals,
    passing,
)
from streams.read.seats_json import ballot_json, dapil_json
from streams.read.totals import dapil_sums, region_sums


class DapilError(LookupError):
    """An unknown dapil (404) or one of another ballot (400): the message says which."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def contests(
    client: Client, ballot: str, dapil: str | None = None, region: str | None = None
) -> list[dict]:
    """The contests (dapils) of a ballot, or one of them, or those within a region (a province or
    regency: the dapils whose regions lie in it or contain it)."""
    rows = client.query(
        "SELECT dapil, name, seats, regions, choices, choice_names FROM registry_contests FINAL "
        "WHERE ballot = {b:String} AND ({d:String} = '' OR dapil = {d:String}) "
        "AND ({r:String} = '' OR arrayExists(x -> startsWith(x, {r:String}) OR "
        "startsWith({r:String}, x), regions)) "
        "ORDER BY dapil",
        parameters={"b": ballot, "d": dapil or "", "r": region or ""},
    ).named_results()
    return list(rows)


def check_dapil(client: Client, ballot: str, dapil: str) -> dict:
    """The contest of `dapil` on `ballot`, or a DapilError saying why there is none."""
    found = contests(client, ballot, dapil)
    if found:
        return found[0]
    other = client.query(
        "SELECT ballot FROM registry_contests FINAL WHERE dapil = {d:String} LIMIT 1",
        parameters={"d": dapil},
    ).result_rows
    if other:
        raise DapilError(f"dapil {dapil} is a {other[0][0]} dapil, not {ballot}", 400)
    raise DapilError(f"unknown dapil {dapil}", 404)


def dapil_totals(
    client: Client, ballot: str, dapil: str | None = None, as_of: datetime | None = None
) -> tuple[dict[str, dict], datetime]:
    """dapil -> {votes (per choice), tps_reported, invalid, voters, tps_total, registered}, now or
    at `as_of`, and the moment they are of (read.totals.dapil_sums)."""
    totals, moment = dapil_sums(client, ballot, dapil, as_of)
    empty = {"votes": {}, "tps_reported": 0, "invalid": 0, "voters": 0, "registered_reported": 0}
    for code, tps_total, registered in client.query(
        "SELECT m.dapil, sum(t.tps_total), sum(t.dpt_total) FROM region_tps_total AS t FINAL "
        "INNER JOIN (SELECT dapil, arrayJoin(regions) AS region FROM registry_contests FINAL "
        "WHERE ballot = {b:String} AND ({d:String} = '' OR dapil = {d:String})) AS m "
        "ON t.region = m.region WHERE t.ballot = {b:String} GROUP BY m.dapil",
        parameters={"b": ballot, "d": dapil or ""},
    ).result_rows:
        totals.setdefault(code, dict(empty)).update(tps_total=tps_total, registered=registered)
    for entry in totals.values():
        entry.setdefault("tps_total", 0)
        entry.setdefault("registered", 0)
    return totals, moment


def ballot_view(
    client: Client,
    ballot: str,
    threshold: Fraction | None,
    totals: tuple[dict[str, dict], datetime] | None = None,
    as_of: datetime | None = None,
) -> dict:
    """Everything a ballot's dapil pages and seats need, from one snapshot of the totals: the
    contests, each dapil's totals (`dapil_totals`, read here unless the caller has them), and the
    seats (core.seats.ballot_seats). The API keeps one of these a ballot and answers every dapil and
    seats request from it."""
    if ballot not in LEGISLATIVE:
        raise DapilError(f"seats are elected on {', '.join(LEGISLATIVE)}, not {ballot}", 400)
    found = contests(client, ballot)
    totals, moment = dapil_totals(client, ballot, as_of=as_of) if totals is None else totals
    seated = [
        Dapil(
            c["dapil"],
            c["seats"],
            tuple(c["choices"]),
            totals.get(c["dapil"], {}).get("votes", {}),
            body_of(ballot, c["regions"]),
        )
        for c in found
    ]
    return {
        "ballot": ballot,
        "as_of": moment_text(moment),
        "contests": {c["dapil"]: c for c in found},
        "totals": totals,
        "seats": ballot_json(ballot_seats(ballot, seated, threshold)),
    }


def seats_of(view: dict, dapil: str | None = None) -> dict:
    """The seats answer of a ballot view, or of one dapil in it (whose name the caller checked)."""
    result = {**view["seats"], "as_of": view["as_of"]}
    if dapil:
        result = {**result, "dapils": [d for d in result["dapils"] if d["dapil"] == dapil]}
    return result


def seats(
    client: Client,
    ballot: str,
    threshold: Fraction | None,
    dapil: str | None = None,
    as_of: datetime | None = None,
) -> dict:
    """`tally seats --json`: every dapil's seats, elected candidates and margin, and the seats per
    party of each body (core.seats.ballot_seats), from the current totals. With `dapil`, only its
    entry is listed (the threshold still needs every dapil's votes)."""
    if ballot not in LEGISLATIVE:
        raise DapilError(f"seats are elected on {', '.join(LEGISLATIVE)}, not {ballot}", 400)
    if dapil:
        check_dapil(client, ballot, dapil)
    return seats_of(ballot_view(client, ballot, threshold, as_of=as_of), dapil)


def dapil_of(client: Client, view: dict, dapil: str) -> dict:
    """One dapil's results from a ballot view (the API's path: no query unless the dapil is
    unknown)."""
    contest = view["contests"].get(dapil)
    if contest is None:
        check_dapil(client, view["ballot"], dapil)  # raises: unknown, or of another ballot
        raise DapilError(f"unknown dapil {dapil}", 404)  # loaded after this view was taken
    mine = next(d for d in view["seats"]["dapils"] if d["dapil"] == dapil)
    return {
        **_dapil_answer(view["ballot"], contest, view["totals"].get(dapil), mine),
        "as_of": view["as_of"],
    }


def takes_part(
    client: Client, ballot: str, threshold: Fraction | None, as_of: datetime | None = None
) -> dict[str, bool]:
    """Party -> whether it takes part in this ballot's seats: for DPR, by its share of the national
    valid votes (now: the national rows of region_totals, one small query); DPRD: every party."""
    if ballot != "DPR":
        return {}
    national, _ = region_sums(client, ballot, "national", "", as_of)
    return passing(party_totals(national.get(NATIONAL, {}).get("votes", {})), threshold)


def dapil_results(
    client: Client,
    ballot: str,
    dapil: str,
    threshold: Fraction | None,
    as_of: datetime | None = None,
) -> dict:
    """One dapil: name, seats, TPS, registered, voters, invalid, its parties (party totals, seats)
    and candidates (votes, elected). Reads that dapil's rows only (and, for DPR, the national party
    totals that say who passes the threshold)."""
    if ballot not in LEGISLATIVE:
        raise DapilError(f"dapils are contests of {', '.join(LEGISLATIVE)}, not {ballot}", 400)
    contest = check_dapil(client, ballot, dapil)
    held, moment = dapil_totals(client, ballot, dapil, as_of)
    totals = held.get(dapil) or {
        "votes": {},
        "tps_reported": 0,
        "invalid": 0,
        "voters": 0,
        "registered_reported": 0,
    }
    if ballot == "DPD":
        seated = dpd_seats(dapil, contest["seats"], contest["choices"], totals["votes"])
    else:
        passes = takes_part(client, ballot, threshold, as_of)
        seated = dapil_seats(dapil, contest["seats"], contest["choices"], totals["votes"], passes)
    return {
        **_dapil_answer(ballot, contest, totals, dapil_json(seated)),
        "as_of": moment_text(moment),
    }


def _dapil_answer(ballot: str, contest: dict, totals: dict | None, mine: dict) -> dict:
    """The JSON of one dapil: its contest, its totals and its seats entry."""
    totals = totals or {
        "votes": {},
        "tps_reported": 0,
        "invalid": 0,
        "voters": 0,
        "registered_reported": 0,
    }
    names = dict(zip(contest["choices"], contest["choice_names"], strict=True))
    votes = totals["votes"]
    won = {row["party"]: row["seats"] for row in mine["parties"]}
    elected = set(mine["elected"])
    return {
        "ballot": ballot,
        "dapil": contest["dapil"],
        "name": contest["name"],
        "seats": contest["seats"],
        "tps_reported": totals["tps_reported"],
        "tps_total": totals.get("tps_total", 0),
        "registered": totals.get("registered", 0),
        "registered_reported": totals.get("registered_reported", 0),
        "voters": totals["voters"],
        "invalid": totals["invalid"],
        "valid": sum(votes.values()),
        "parties": [
            {"party": p, "name": names.get(p, p), "votes": n, "seats": won.get(p, 0)}
            for p, n in party_totals({c: votes.get(c, 0) for c in contest["choices"]}).items()
        ],
        "candidates": [
            {"code": c, "name": names.get(c, c), "votes": votes.get(c, 0), "elected": c in elected}
            for c in contest["choices"]
            if party_of(c) != c  # a party's own column is not a candidate
        ],
        "margin": mine["margin"],
        "ties": mine["ties"],
        "tie_notes": mine["tie_notes"],
        "steps": mine.get("steps", []),
    }


def dapil_list(client: Client, ballot: str, region: str | None = None) -> dict:
    """`GET /api/dapils`: the dapils of a ballot (within a province or regency): code, name, seats,
    regions."""
    if ballot not in LEGISLATIVE:
        raise DapilError(f"dapils are contests of {', '.join(LEGISLATIVE)}, not {ballot}", 400)
    if region:
        level_of(region)  # a ValueError names what is wrong with the code
    return {
        "ballot": ballot,
        "region": region or None,
        "dapils": [
            {"dapil": c["dapil"], "name": c["name"], "seats": c["seats"], "regions": c["regions"]}
            for c in contests(client, ballot, region=region)
        ],
    }
