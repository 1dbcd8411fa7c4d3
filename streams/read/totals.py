"""The totals of regions and dapils, as they stand now or as they stood at any moment, each read in
one statement, which also says the moment it read at.

Now: the written levels (national, province, regency) from their summed rows of region_totals; the
levels below from the TPS level of region_totals, where each row is one change of one TPS (its
deltas, read as `moved`, written in the same insert as the totals it moved: schemas/clickhouse
005_changes.sql and 016_narrow_deltas.sql).
At a moment: every level from the change rows whose `decided_at` is at or before it.

One statement per answer makes it a snapshot. Its query_id marks it a moment read (`moment_read`):
the embedded server runs it beside other reads but never beside an insert, so a read at moment M
sees exactly the writes stamped at or before M, and asking later for M gives it back. On a server, a
write is stamped when it starts and seen when it ends, so a moment less than one insert's time ago
may still gain rows (docs/time-travel.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import moment_read
from streams.core.aggregate import TPS_LEVEL, WRITTEN_LEVELS
from streams.core.moments import sql_moment
from streams.core.regions import NATIONAL, PREFIX_LENGTH

Sums = dict[str, dict]  # code -> {votes, tps_reported, invalid, voters, registered_reported}
EMPTY_MAP = "CAST(map(), 'Map(String, Int64)')"
# The stamp row closing every totals read: code '' (no region or dapil has it) and the read's
# moment.
STAMP = f"UNION ALL SELECT '', {EMPTY_MAP}, 0, 0, 0, 0, now64(6, 'UTC')"


def _when(as_of: datetime | None) -> str:
    return "" if as_of is None else " AND decided_at <= {as_of:DateTime64(6, 'UTC')}"


def _params(params: dict, as_of: datetime | None) -> dict:
    return params if as_of is None else {**params, "as_of": sql_moment(as_of)}


def _collect(
    client: Client, sql: str, params: dict, as_of: datetime | None
) -> tuple[Sums, datetime]:
    """Run a totals statement (rows: code, votes map, tps_reported, invalid, voters, the DPT of the
    TPS that reported, read moment) and sum its rows per code; the moment answered is the one asked
    or, if later, the read's own."""
    sums: Sums = {}
    merged: set[str] = set()  # codes summed from more than one row: their votes need sorting again
    read_at = datetime.now(UTC)
    rows = client.query(f"{sql} {STAMP}", parameters=params, settings=moment_read()).result_rows
    for code, votes, reported, invalid, voters, registered, at in rows:
        read_at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        if code == "":
            continue
        e = sums.get(code)
        if e is None:  # most codes come in one row (a sumMap, keys sorted): take its map as it is
            sums[code] = {
                "votes": votes,
                "tps_reported": reported,
                "invalid": invalid,
                "voters": voters,
                "registered_reported": registered,
            }
            continue
        merged.add(code)
        into = e["votes"]
        for choice, n in votes.items():
            into[choice] = into.get(choice, 0) + n
        e["tps_reported"] += reported
        e["invalid"] += invalid
        e["voters"] += voters
        e["registered_reported"] += registered
    for code, e in sums.items():
        votes = sorted(e["votes"].items()) if code in merged else e["votes"].items()
        e["votes"] = {c: n for c, n in votes if n and c}
    return sums, read_at if as_of is None else min(as_of, read_at)


def region_sums(
    client: Client, ballot: str, level: str, prefix: str, as_of: datetime | None = None
) -> tuple[Sums, datetime]:
    """code -> totals of every region at `level` whose code starts with `prefix`, now or at `as_of`,
    and the moment they are of."""
    params = {"ballot": ballot, "level": level, "prefix": prefix}
    if as_of is None and level in WRITTEN_LEVELS:
        sql = (
            "SELECT region, map(choice, sum(votes)), sum(tps_reported), sum(invalid), sum(voters), "
            "sum(registered), "
            "now64(6, 'UTC') "
            "FROM region_totals WHERE ballot = {ballot:String} AND level = {level:String} "
            "AND startsWith(region, {prefix:String}) GROUP BY region, choice"
        )
    else:
        sql = change_sums(level, as_of) + " AND startsWith(region, {prefix:String}) GROUP BY code"
    return _collect(client, sql, _params(params, as_of), as_of)


def change_sums(level: str, as_of: datetime | None, code: str | None = None) -> str:
    """The statement summing a ballot's change rows per region at `level` (up to `as_of`), to be
    closed by the caller's further conditions and `GROUP BY code`; columns code, votes,
    tps_reported, invalid, voters, registered, read_at. `code` replaces the expression of the
    region's code."""
    if code is None:
        code = (
            f"'{NATIONAL}'"
            if level == "national"
            else f"substring(region, 1, {PREFIX_LENGTH[level]})"
        )
    return (
        f"SELECT {code} AS code, sumMap(moved) AS votes, sum(tps_reported) AS tps_reported, "
        "sum(invalid) AS invalid, "
        "sum(voters) AS voters, sum(registered) AS registered, now64(6, 'UTC') AS read_at FROM "
        "region_totals "
        f"WHERE ballot = {{ballot:String}} AND level = '{TPS_LEVEL}'{_when(as_of)}"
    )


def dapil_sums(
    client: Client, ballot: str, dapil: str | None = None, as_of: datetime | None = None
) -> tuple[Sums, datetime]:
    """dapil -> totals (of one dapil, or all of the ballot's), now or at `as_of`, and the moment
    they are of. A dapil is a set of regions (registry_contests.regions) of any level; each region's
    totals come from its written level's rows where there are some (now), else from the change rows
    by TPS prefix."""
    sql, params = dapil_statement(client, ballot, dapil, as_of)
    return _collect(client, sql, params, as_of)


def dapil_statement(
    client: Client, ballot: str, dapil: str | None, as_of: datetime | None
) -> tuple[str, dict]:
    """The statement of `dapil_sums` (columns code, votes, tps_reported, invalid, voters,
    registered, read_at) and its parameters."""
    params = {"b": ballot, "d": dapil or ""}
    members = (
        "SELECT dapil, arrayJoin(regions) AS region FROM registry_contests FINAL "
        "WHERE ballot = {b:String} AND ({d:String} = '' OR dapil = {d:String})"
    )
    widths = sorted(
        {
            int(w)
            for (w,) in client.query(
                f"SELECT DISTINCT length(region) FROM ({members}) WHERE region != '{NATIONAL}'",
                parameters=params,
            ).result_rows
        }
    )
    branches = []
    summed = (
        "SELECT m.dapil AS code, sumMap(t.moved) AS votes, sum(t.tps_reported) AS tps_reported, "
        "sum(t.invalid) AS invalid, "
        "sum(t.voters) AS voters, sum(t.registered) AS registered, now64(6, 'UTC') AS read_at "
        "FROM (SELECT region, moved, tps_reported, invalid, voters, registered FROM "
        "region_totals "
        f"WHERE ballot = {{b:String}} AND level = '{TPS_LEVEL}'{_when(as_of)}) AS t INNER JOIN "
        f"({members}) AS m "
    )
    if as_of is None:
        written = tuple(
            PREFIX_LENGTH.get(level, 2) for level in WRITTEN_LEVELS if level != "national"
        )
        branches.append(
            "SELECT m.dapil AS code, map(t.choice, sum(t.votes)) AS votes, sum(t.tps_reported) AS "
            "tps_reported, "
            "sum(t.invalid) AS invalid, sum(t.voters) AS voters, sum(t.registered) AS registered, "
            "now64(6, 'UTC') AS read_at "
            f"FROM region_totals AS t INNER JOIN ({members}) AS m ON t.region = m.region "
            f"WHERE t.ballot = {{b:String}} AND t.level IN {tuple(WRITTEN_LEVELS)} GROUP BY "
            "m.dapil, t.choice"
        )
        widths = [w for w in widths if w not in written]
    for width in widths:  # the TPS's changes, by the prefix that is the member region
        on = f"ON substring(t.region, 1, {width}) = m.region WHERE length(m.region) = {width}"
        branches.append(f"{summed} {on} GROUP BY m.dapil")
    if not branches:
        branches.append(
            f"SELECT '' AS code, {EMPTY_MAP} AS votes, 0, 0, 0, 0, now64(6, 'UTC') AS read_at"
        )
    return " UNION ALL ".join(branches), _params(params, as_of)
