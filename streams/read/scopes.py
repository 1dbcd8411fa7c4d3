"""What a reader may ask about: a ballot, a region, a dapil. Each check names what is wrong, with
the HTTP status it means (400: malformed or of another ballot; 404: well formed but unknown)."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from streams.core.contract import BALLOTS
from streams.core.regions import LEVELS, NATIONAL, digits, level_of
from streams.read.dapils import DapilError, check_dapil
from streams.read.registry_memo import DIRECT, Memo


class ScopeError(DapilError):
    """A bad or unknown ballot or region (DapilError's statuses, for one handler of both)."""


def check_ballot(ballot: str) -> str:
    if ballot not in BALLOTS:
        raise ScopeError(f"ballot: must be one of {', '.join(BALLOTS)}", 400)
    return ballot


def check_level(level: str | None) -> str | None:
    if level is not None and level not in LEVELS:
        raise ScopeError(f"level: must be one of {', '.join(LEVELS)}", 400)
    return level


def check_region(client: Client, region: str | None, memo: Memo = DIRECT) -> str:
    """The region's code ('' for the nation), if it is well formed and in the registry."""
    if region in (None, "", NATIONAL):
        return ""
    try:
        level_of(region)
    except ValueError as exc:
        raise ScopeError(str(exc), 400) from None
    if not digits(region, 13):
        raise ScopeError(f"{region!r} is not a region code (digits only, or {NATIONAL})", 400)
    if not memo.get(("known", region), lambda: _known(client, region)):
        raise ScopeError(f"unknown region {region}", 404)
    return region


def _known(client: Client, region: str) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM regions WHERE code = {c:String}", parameters={"c": region}
        )
        or (
            len(region) == 13
            and client.command(
                "SELECT count() FROM registry_tps WHERE tps = {c:String}", parameters={"c": region}
            )
        )
    )


def change_regions(
    client: Client, ballot: str, region: str | None, dapil: str | None
) -> tuple[list[str] | None, str]:
    """What a change feed covers: the code prefixes of a dapil's regions (None: everywhere), and a
    region the changes must also lie in ('' for the nation). Both given: the part of the dapil in
    the region."""
    check_ballot(ballot)
    code = check_region(client, region)
    return (list(check_dapil(client, ballot, dapil)["regions"]) if dapil else None), code
