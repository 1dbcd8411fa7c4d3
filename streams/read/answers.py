"""The answers built from ClickHouse that are not a module's of their own: a region's results with
the figures a reader derives, a TPS's detail, the anomalies per region. Each raises `ApiError`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from clickhouse_connect.driver.client import Client

from streams.clickhouse import audit
from streams.clickhouse.pages import Page, read_pages
from streams.clickhouse.registry_store import read_dpt
from streams.core.contract import BALLOTS
from streams.core.moments import moment_text, sql_moment
from streams.core.regions import LEVELS, digits
from streams.read.dapils import DapilError
from streams.read.registry_memo import DIRECT, Memo
from streams.read.requests import ApiError
from streams.read.results import choice_names, results
from streams.read.scopes import check_ballot, check_level, check_region


def enrich(data: dict) -> dict:
    """Add the derived figures a reader wants: percent reported, valid votes, turnout (voters over
    the DPT of the TPS that reported)."""
    for region in data["regions"]:
        valid = sum(region["votes"].values())
        region["valid"] = valid
        region["percent_reported"] = (
            round(100 * region["tps_reported"] / region["tps_total"], 2)
            if region["tps_total"]
            else 0.0
        )
        # Over the TPS that reported, never over all of them: a third reported is not a third's
        # turnout.
        basis = region.get("registered_reported", 0)
        region["turnout"] = round(100 * region["voters"] / basis, 2) if basis else None
    return data


def region_results(
    client: Client,
    ballot: str,
    level: str | None,
    region: str | None,
    as_of: datetime | None = None,
    memo: Memo = DIRECT,
) -> dict:
    try:
        check_level(level)
        check_ballot(ballot)
        check_region(client, region, memo)
        data = enrich(results(client, ballot, level, region, as_of, memo))
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    data["names"] = choice_names(client, ballot, memo)
    return data


def dapil_view(build: Callable[[], dict]) -> dict:
    """A dapil or seats answer, its errors as API errors."""
    try:
        return build()
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


class ContestIndex:
    """Which dapil of each ballot a TPS lies in, and each contest's choices, from the registry's
    contests. The API keeps one while the registry stays the same (`handlers.Reader.contests`):
    a few thousand contests, the same for every TPS page, so not one more statement a page; and
    read again only when the registry changes, never on a clock, because the read of every
    contest's choices holds up each page asked behind it."""

    def __init__(self, rows: Iterable[tuple[str, str, Sequence[str], Sequence[str]]]) -> None:
        self.by_region: dict[str, list[tuple[str, str]]] = {}
        self.choices_of: dict[tuple[str, str], tuple[str, ...]] = {}
        for ballot, dapil, regions, choices in rows:
            for region in regions:
                self.by_region.setdefault(region, []).append((ballot, dapil))
            self.choices_of[(ballot, dapil)] = tuple(choices)

    @classmethod
    def read(cls, client: Client) -> ContestIndex:
        return cls(
            client.query(
                "SELECT ballot, dapil, regions, choices FROM registry_contests FINAL"
            ).result_rows
        )

    def dapils(self, code: str) -> dict[str, str]:
        """Ballot -> the dapil of that ballot whose regions hold the TPS `code`."""
        found: dict[str, str] = {}
        for region in ("ID", *(code[:n] for n in range(1, len(code) + 1))):
            found.update(self.by_region.get(region, ()))
        return found

    def choices(self, ballot: str, dapil: str | None) -> tuple[str, ...]:
        """The choices of a ballot's contest in a dapil (none if the registry has no such one)."""
        return self.choices_of.get((ballot, dapil or ""), ())


def check_tps(code: str, ballot: str | None) -> None:
    if not (len(code) == 13 and digits(code, 13)):
        raise ApiError(400, "a TPS code is 13 digits")
    if ballot and ballot not in BALLOTS:
        raise ApiError(400, f"ballot: must be one of {', '.join(BALLOTS)}")


def tps_pages(
    codes: list[str], pages: Mapping[str, Page], dpt: Mapping[str, int], contests: ContestIndex
) -> dict[str, dict]:
    """The page of each TPS of `codes` from what was received for it (`pages.read_pages`) and the
    registry's DPT (`dpt`); a TPS neither registered nor received is absent."""
    found = {}
    for code in codes:
        page = pages.get(code)
        if page is None and code not in dpt:
            continue
        # A candidate's number names a person only within a dapil: each tally says which one.
        dapils = contests.dapils(code)
        found[code] = {
            "tps": code,
            "dpt": dpt.get(code),
            "tallies": [
                {
                    **tally,
                    "dapil": dapils.get(tally["ballot"]),
                    "votes": every_count(
                        tally["votes"],
                        contests.choices(tally["ballot"], dapils.get(tally["ballot"])),
                    ),
                }
                for tally in (page.tally_list() if page else [])
            ],
            "history": page.events() if page else [],
        }
    return found


def every_count(votes: Mapping[str, int], choices: tuple[str, ...]) -> dict[str, int]:
    """A tally's votes with a count for each choice of its contest, in code order: tally_current
    keeps no zero counts (`core.revisions.counted`), and the C1 form has a line for every choice."""
    return dict(sorted({**dict.fromkeys(choices, 0), **votes}.items()))


def tps_page(pages: dict[str, dict], code: str, ballot: str | None) -> dict:
    """One TPS's answer from `tps_pages`: its history narrowed to `ballot`, or a 404."""
    page = pages.get(code)
    if page is None:
        raise ApiError(404, f"nothing is known of TPS {code}")
    return {**page, "history": audit.of_ballot(page["history"], ballot)}


def tps_detail(client: Client, code: str, ballot: str | None, contests: ContestIndex) -> dict:
    check_tps(code, ballot)
    pages = tps_pages([code], read_pages(client, [code]), read_dpt(client, [code]), contests)
    return tps_page(pages, code, ballot)


def anomalies(
    client: Client, level: str | None, region: str | None, as_of: datetime | None = None
) -> dict:
    """Flagged and rejected events per region: every decision made by `as_of` (all, if None)."""
    level = level or "province"
    if level not in LEVELS[:-1]:
        raise ApiError(400, f"level: must be one of {', '.join(LEVELS[:-1])}")
    try:
        prefix = check_region(client, region)
    except DapilError as exc:
        raise ApiError(exc.status, str(exc)) from None
    width = {"national": 0, "province": 2, "regency": 4, "district": 6, "village": 10}[level]
    region_expr = "'ID'" if width == 0 else f"substring(tps, 1, {width})"
    when = "" if as_of is None else " AND decided_at <= {t:DateTime64(6, 'UTC')}"
    rows = client.query(
        f"SELECT {region_expr} AS region, countIf(decision = 'rejected') AS rejected, "
        "countIf(notEmpty(flags)) AS flagged, "
        "sumMap(reasons, arrayMap(r -> toUInt64(1), reasons)) AS by_reason, "
        "sumMap(flags, arrayMap(f -> toUInt64(1), flags)) AS by_flag "
        "FROM (SELECT tps, decision, reasons, flags FROM tally_decisions FINAL "
        f"WHERE startsWith(tps, {{p:String}}) AND tps != ''{when}) GROUP BY region ORDER BY region",
        parameters={"p": prefix, **({} if as_of is None else {"t": sql_moment(as_of)})},
    ).result_rows
    return {
        "level": level,
        "as_of": None if as_of is None else moment_text(as_of),
        "regions": [
            {
                "code": code,
                "rejected": rejected,
                "flagged": flagged,
                "reasons": dict(zip(*by_reason, strict=True)) if by_reason else {},
                "flags": dict(zip(*by_flag, strict=True)) if by_flag else {},
            }
            for code, rejected, flagged, by_reason, by_flag in rows
        ],
    }
