"""Stage 6, the read side: region results from ClickHouse, and `verify` against a truth file.

Every query is small and indexed: the totals come from region_totals in one statement (see
`read.totals`: the written levels' summed rows, or the TPS level's change rows by code prefix, a
district has ~110 TPS, a village ~10), the names and denominators from the registry. No FINAL over
raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from streams.core.moments import moment_text
from streams.core.regions import LEVELS, NATIONAL, child_level, level_of
from streams.core.seats import LEGISLATIVE, PARTY_BALLOTS, party_totals, reported_votes
from streams.read.dapils import ballot_view, dapil_totals
from streams.read.registry_memo import DIRECT, Memo
from streams.read.totals import region_sums
from streams.read.verify_tps import TruthTable, choices_of


def resolve_scope(level: str | None, region: str | None) -> tuple[str, str]:
    """The level to list and the code prefix that limits it ('' for all)."""
    if region in (None, "", NATIONAL):
        return (level or "national"), ""
    own = level_of(region)
    if level is None:
        level = child_level(own) if own != "tps" else "tps"
    if LEVELS.index(level) < LEVELS.index(own):
        raise ValueError(f"level {level} is above region {region} ({own})")
    return level, region


def _region_entry() -> dict:
    return {
        "code": "",
        "name": "",
        "tps_reported": 0,
        "tps_total": 0,
        "votes": {},
        "invalid": 0,
        "voters": 0,
        "registered": 0,
        "registered_reported": 0,
    }


def results(
    client: Client,
    ballot: str,
    level: str | None = None,
    region: str | None = None,
    as_of: datetime | None = None,
    memo: Memo = DIRECT,
) -> dict:
    """The regions at `level` within `region`, with their totals now or as they stood at `as_of`,
    and the moment they are of (`as_of` in the answer: asking for that moment later gives the same
    totals). What comes from the registry alone may come from `memo`."""
    level, prefix = resolve_scope(level, region)
    sums, moment = region_sums(client, ballot, level, prefix, as_of)
    if level == "tps":
        found = _tps_regions(client, ballot, prefix, sums)
    else:
        found = _regions(client, ballot, level, prefix, sums, memo)
    return {"ballot": ballot, "level": level, "as_of": moment_text(moment), "regions": found}


def _registered_regions(
    client: Client, ballot: str, level: str, prefix: str
) -> dict[str, dict[str, object]]:
    """The registry's regions of `level` within `prefix`: name, TPS total and DPT total."""
    params = {"ballot": ballot, "level": level, "prefix": prefix}
    regions: dict[str, dict[str, object]] = {}
    for code, name in client.query(
        "SELECT code, name FROM regions FINAL WHERE level = {level:String} AND startsWith(code, "
        "{prefix:String}) ORDER BY code",
        parameters=params,
    ).result_rows:
        regions.setdefault(code, {})["name"] = name
    for code, total, registered in client.query(
        "SELECT region, tps_total, dpt_total FROM region_tps_total FINAL "
        "WHERE ballot = {ballot:String} AND level = {level:String} AND startsWith(region, "
        "{prefix:String})",
        parameters=params,
    ).result_rows:
        regions.setdefault(code, {}).update(tps_total=total, registered=registered)
    return regions


def _regions(
    client: Client, ballot: str, level: str, prefix: str, sums: dict[str, dict], memo: Memo
) -> list[dict]:
    """Every region of `level` within `prefix`: its name, TPS and DPT totals, and its sums."""
    regions: dict[str, dict] = {}

    def entry(code: str) -> dict:
        return regions.setdefault(code, {**_region_entry(), "code": code})

    registered = memo.get(
        ("regions", ballot, level, prefix),
        lambda: _registered_regions(client, ballot, level, prefix),
    )
    for code, known in registered.items():
        entry(code).update(known)
    for code, totals in sums.items():
        entry(code).update(totals)
    ordered = [regions[c] for c in sorted(regions)]
    for region in ordered:
        region["votes"] = reported_votes(ballot, level, region["votes"])
    return ordered


def _tps_regions(client: Client, ballot: str, prefix: str, sums: dict[str, dict]) -> list[dict]:
    """The TPS within `prefix` that have a count at the moment, each with its dapil on a
    legislative ballot (a candidate's number means something in its dapil only)."""
    params = {"ballot": ballot, "prefix": prefix}
    registered = (
        dict(
            client.query(
                "SELECT tps, dpt FROM registry_tps FINAL WHERE startsWith(tps, {prefix:String})",
                parameters=params,
            ).result_rows
        )
        if sums
        else {}
    )
    regions = []
    for tps in sorted(sums):
        if not sums[tps]["tps_reported"]:
            continue
        e = {**_region_entry(), "code": tps}
        e.update(sums[tps], name=f"TPS {tps[-3:]}", tps_total=1, registered=registered.get(tps, 0))
        if ballot in PARTY_BALLOTS:
            e["parties"] = party_totals(e["votes"])
        regions.append(e)
    if ballot in LEGISLATIVE and regions:
        dapil_of = dict(
            client.query(
                "SELECT arrayJoin(regions) AS region, dapil FROM registry_contests FINAL WHERE "
                "ballot = {ballot:String}",
                parameters=params,
            ).result_rows
        )
        for e in regions:
            code = e["code"]
            prefixes = (code[:2], code[:4], code[:6], code[:10])
            e["dapil"] = next((dapil_of[p] for p in prefixes if p in dapil_of), None)
    return regions


def choice_names(client: Client, ballot: str, memo: Memo = DIRECT) -> dict[str, str]:
    """Names of the ballot's choices that mean the same in every contest (pairs, parties); a
    candidate number names different people in different dapil, so it stays a code."""
    return memo.get(("choice names", ballot), lambda: _choice_names(client, ballot))


def _choice_names(client: Client, ballot: str) -> dict[str, str]:
    rows = client.query(
        "SELECT pair.1 AS code, groupUniqArray(pair.2) AS names FROM registry_contests FINAL "
        "ARRAY JOIN arrayZip(choices, choice_names) AS pair "
        "WHERE ballot = {b:String} GROUP BY code",
        parameters={"b": ballot},
    ).result_rows
    return {code: names[0] for code, names in rows if len(names) == 1}


def _nonzero(value: object) -> object:
    """A choice with no votes may be listed with 0 or not at all: compare without zeros."""
    return {k: v for k, v in value.items() if v} if isinstance(value, dict) else value


def read_truth(path: Path, progress: Callable[[int], object] | None = None) -> Iterator[dict]:
    """The groups of a truth file (`truth.jsonl`, written by `tally simulate --out`), one line at a
    time; `progress` hears how many bytes of it were read (five ballots' truth is ~4.6 GB)."""
    done = 0
    with path.open("rb") as lines:
        for line in lines:
            done += len(line)
            if line.strip():
                yield orjson.loads(line)
            if progress is not None:
                progress(done)


def truth_groups(truth: Mapping | Iterable[dict]) -> Iterator[dict]:
    """Groups from a truth file's lines, or from the merged form {"ballots": {ballot: {level:
    regions}}}."""
    if isinstance(truth, Mapping):
        for ballot, levels in truth["ballots"].items():
            for level, regions in levels.items():
                if level == "seats":
                    yield {"ballot": ballot, "level": level, "scope": "", **regions}
                else:
                    yield {"ballot": ballot, "level": level, "scope": "", "regions": regions}
    else:
        yield from truth


def verify(
    client: Client,
    truth: Mapping | Iterable[dict],
    max_report: int = 20,
    tps_file: Path | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[str]:
    """Every difference between ClickHouse and the truth, at every level of every ballot (empty =
    exact). One group of the truth at a time, against ClickHouse's results for the same scope: a
    level is read whole once (the TPS level a province at a time), so a five-ballot night takes tens
    of queries a ballot, not several per province. A TPS that ClickHouse counts in a province the
    truth does not list shows at province level.

    A truth written by `tally simulate --out` leaves its TPS to `tps_file` (`truth-tps.jsonl`),
    compared in ClickHouse with the votes of villages and districts (read.verify_tps; `progress`
    hears how many of its bytes were loaded); its district and village lines then carry only their
    TPS totals."""
    differences: list[str] = []
    whole: dict[tuple[str, str], dict[str, dict]] = {}  # (ballot, level) -> region -> results
    dapils: dict[str, tuple] = {}  # ballot -> its dapils' totals, read once for totals and seats
    truth_dapils: dict[str, dict[str, dict]] = {}  # ballot -> the truth's dapils, to elect from
    choices: dict[str, dict[str, list[str]]] = {}  # ballot -> dapil -> choices, to read tps_file by
    tps_totals: dict[
        tuple[str, str], dict[str, int]
    ] = {}  # (ballot, level) -> region -> TPS holding it
    for group in truth_groups(truth):
        if group["level"] == "seats":
            ballot = group["ballot"]
            threshold = group["threshold"]
            differences += _seat_differences(
                client,
                ballot,
                None if threshold is None else Fraction(str(threshold)),
                truth_dapils.pop(ballot, {}),
                dapils.pop(ballot, None),
            )
            continue
        if group["level"] == "choices":
            choices[group["ballot"]] = choices_of(group)
            continue
        if "tps_total" in group:  # a fine level's regions, their votes left to tps_file
            key = (group["ballot"], group["level"])
            if key not in tps_totals:
                tps_totals.clear()  # a ballot's levels at a time
                tps_totals[key] = _tps_totals(client, *key)
            differences += [
                f"{key[0]} {key[1]} {code} tps_total: expected {n}, ClickHouse has "
                f"{tps_totals[key].get(code)}"
                for code, n in group["tps_total"].items()
                if tps_totals[key].get(code) != n
            ]
            continue
        ballot, level, expected = group["ballot"], group["level"], group["regions"]
        if level == "dapil":
            truth_dapils[ballot] = expected
            dapils[ballot] = dapil_totals(client, ballot)
        held = _held(client, group, whole, dapils)
        differences += _region_differences(ballot, level, expected, held)
    if tps_file is not None:
        with TruthTable(client, choices) as table:
            table.load(tps_file, progress)
            for ballot in choices:
                differences += table.differences(ballot, max_report)
    return differences[:max_report] + (
        [f"... and {len(differences) - max_report} more"] if len(differences) > max_report else []
    )


def _held(
    client: Client,
    group: dict,
    whole: dict[tuple[str, str], dict[str, dict]],
    dapils: dict[str, tuple],
) -> dict[str, dict]:
    """ClickHouse's regions for one group of the truth: a dapil's from the dapil totals already
    read, a province's TPS on their own, any other level read whole once and kept in `whole`."""
    ballot, level, scope = group["ballot"], group["level"], group.get("scope") or ""
    if level == "dapil":
        return {
            code: {**t, "parties": party_totals(t["votes"])}
            for code, t in dapils[ballot][0].items()
        }
    if level == "tps":  # a province's TPS at a time: the only level too large to hold whole
        # The sums `results` serves, without what it adds for readers (names, parties, dapils):
        # the truth of a TPS is its votes, invalid and tps_reported.
        return region_sums(client, ballot, level, scope)[0]
    if whole and next(iter(whole))[0] != ballot:
        # The truth comes a ballot at a time: hold one ballot's levels at most.
        whole.clear()
    if (ballot, level) not in whole:
        whole[(ballot, level)] = {r["code"]: r for r in results(client, ballot, level)["regions"]}
    return {c: r for c, r in whole[(ballot, level)].items() if c.startswith(scope)}


def _region_differences(
    ballot: str, level: str, expected: dict[str, dict], held: dict[str, dict]
) -> list[str]:
    """Each field of each region that differs, the regions ClickHouse counts but the truth does
    not list included."""
    differences = []
    counted = {c for c, r in held.items() if r["tps_reported"] or r["votes"]}
    for code in sorted(set(expected) | counted):
        want = expected.get(code, {"votes": {}, "invalid": 0, "tps_reported": 0})
        got = held.get(code, {"votes": {}, "invalid": 0, "tps_reported": 0, "tps_total": 0})
        for field in ("votes", "parties", "invalid", "tps_reported", "tps_total"):
            if (
                field in want
                and want[field] != got.get(field)
                and _nonzero(want[field]) != _nonzero(got.get(field))
            ):
                differences.append(
                    f"{ballot} {level} {code} {field}: expected {want[field]}, ClickHouse has "
                    f"{got.get(field)}"
                )
    return differences


def _tps_totals(client: Client, ballot: str, level: str) -> dict[str, int]:
    return dict(
        client.query(
            "SELECT region, tps_total FROM region_tps_total FINAL WHERE ballot = {b:String} AND "
            "level = {l:String}",
            parameters={"b": ballot, "l": level},
        ).result_rows
    )


def _seat_differences(
    client: Client,
    ballot: str,
    threshold: Fraction | None,
    truth: dict[str, dict],
    totals: tuple | None,
) -> list[str]:
    """Seats elected from ClickHouse's totals (`totals`: the dapil totals verify already read, if
    it did) against those elected from the truth's dapil votes (`truth`), on the same contests and
    threshold: seats per party nationally and in each body, and each dapil's party seats and
    elected candidates."""
    moment = totals[1] if totals else datetime.now(UTC)
    expected = ballot_view(client, ballot, threshold, (truth, moment))["seats"]
    held = ballot_view(client, ballot, threshold, totals)["seats"]
    differences = []
    for key in ("national", "bodies"):
        if held[key] != expected[key]:
            differences.append(
                f"{ballot} seats {key}: expected {expected[key]}, ClickHouse gives {held[key]}"
            )
    held_dapils = {d["dapil"]: d for d in held["dapils"]}
    for want in expected["dapils"]:
        got = held_dapils.get(want["dapil"], {})
        for field in ("parties", "elected"):
            if got.get(field) != want[field]:
                differences.append(
                    f"{ballot} seats {want['dapil']} {field}: expected {want[field]}, ClickHouse "
                    f"gives {got.get(field)}"
                )
    return differences
