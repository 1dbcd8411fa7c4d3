"""The change feed: every change that moved a region's or a dapil's totals, in the order it became
visible, with what moved and why (a first count or a correction, old -> new revision).

Read from the TPS level of region_totals, where each row is one applied revision of one TPS, written
in the same insert as the totals it moved (schemas/clickhouse/005_changes.sql). Duplicates, stale or
conflicting resends and rejections never move totals, so they are not here: `tally audit` has them.

A cursor names one change, `<decided_at in epoch microseconds>/<tps>/<revision>`; changes are
ordered by that triple, so a page ends at a cursor and the next starts after it, whatever the page
size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import moment_read
from streams.core.aggregate import TPS_LEVEL, revision_key
from streams.core.moments import MomentError, moment_text, parse_moment, sql_moment
from streams.core.regions import digits
from streams.core.seats import PARTY_BALLOTS, party_totals

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Cursor:
    """A change's place in the feed: (decided_at, tps, revision); a moment alone is (moment, '',
    0)."""

    moment: datetime
    tps: str = ""
    revision: int = 0

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """A cursor from a page's `next`, or a moment (ISO 8601 with offset, or epoch seconds)."""
        parts = text.split("/")
        if len(parts) == 1:
            return cls(parse_moment(text))
        micros, tps, revision = parts if len(parts) == 3 else ("", "", "")
        if not (digits(micros, 17) and len(tps) == 13 and digits(tps, 13) and digits(revision, 10)):
            raise MomentError(f"{text!r} is not a cursor: use a page's `next`, or a moment")
        return cls(EPOCH + timedelta(microseconds=int(micros)), tps, int(revision))

    def __str__(self) -> str:
        if not self.tps:
            return moment_text(self.moment)
        return f"{(self.moment - EPOCH) // timedelta(microseconds=1)}/{self.tps}/{self.revision}"


def changes(
    client: Client,
    ballot: str,
    regions: list[str] | None = None,
    since: Cursor | None = None,
    until: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    newest_first: bool = False,
    within: str = "",
) -> dict:
    """A page of the changes of `ballot` within any of `regions` (code prefixes; None: everywhere):
    oldest first after `since`, or newest first before it; none after `until`. `next` is the cursor
    of the page's last change (or `since` again when there were none: poll with it). `within`
    narrows them to one region as well."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    params: dict = {"b": ballot, "regions": regions or [""], "n": limit, "within": within}
    where = [
        "ballot = {b:String}",
        f"level = '{TPS_LEVEL}'",
        "startsWith(region, {within:String})",
        "arrayExists(r -> startsWith(region, r), {regions:Array(String)})",
    ]
    if since is not None:
        where.append(_after(since, newest_first, params))
    if until is not None:
        params["until"] = sql_moment(until)
        where.append("decided_at <= {until:DateTime64(6, 'UTC')}")
    order = "DESC" if newest_first else "ASC"
    rows = client.query(
        "SELECT decided_at, region, choice, revision, moved, tps_reported, invalid, voters, "
        "event_id, gateway "
        f"FROM region_totals WHERE {' AND '.join(where)} "
        f"ORDER BY decided_at {order}, region {order}, choice {order} LIMIT {{n:UInt32}}",
        parameters=params,
        settings=moment_read(),  # no change stamped before a page's last may land after it
    ).result_rows
    feed = [_change(ballot, *row) for row in rows]
    if feed:
        last = feed[-1]
        next_cursor = str(
            Cursor(parse_moment(last["decided_at"]), last["tps"], last["revision"]["new"])
        )
    else:
        next_cursor = str(since) if since is not None else None
    return {
        "ballot": ballot,
        "order": "newest first" if newest_first else "oldest first",
        "since": str(since) if since is not None else None,
        "until": moment_text(until) if until is not None else None,
        "changes": feed,
        "next": next_cursor,
    }


def _after(since: Cursor, newest_first: bool, params: dict) -> str:
    """The condition for the changes after `since` (before it, newest first); its parameters go
    into `params`."""
    params.update(
        t=sql_moment(since.moment),
        tps=since.tps,
        rev=revision_key(since.revision) if since.tps else "",
    )
    side = "<" if newest_first else ">"
    # spelt out: chDB 26.9 compares (DateTime64, String, String) tuples wrongly when the first
    # are equal
    if since.tps:
        t = "{t:DateTime64(6, 'UTC')}"
        return (
            f"(decided_at {side} {t} OR decided_at = {t} AND (region {side} {{tps:String}} "
            f"OR region = {{tps:String}} AND choice {side} {{rev:String}}))"
        )
    # after the moment, or (newest first) as of it
    return f"decided_at {'<=' if newest_first else '>'} {{t:DateTime64(6, 'UTC')}}"


def _change(
    ballot: str,
    decided_at: datetime,
    tps: str,
    key: str,
    step: int,
    deltas: dict[str, int],
    reported: int,
    invalid: int,
    voters: int,
    event_id: str,
    gateway: str,
) -> dict:
    """One change row as the feed gives it."""
    revision = int(key)
    change = {
        "tps": tps,
        "ballot": ballot,
        "event_id": event_id,
        "gateway": gateway,
        "kind": "first count" if reported else "correction",
        "revision": {"old": revision - step, "new": revision},
        "votes": {c: n for c, n in sorted(deltas.items()) if n},
        "invalid": invalid,
        "voters": voters,
        "tps_reported": reported,
        "decided_at": moment_text(
            decided_at.replace(tzinfo=UTC) if decided_at.tzinfo is None else decided_at
        ),
    }
    if ballot in PARTY_BALLOTS:
        change["parties"] = {p: n for p, n in party_totals(change["votes"]).items() if n}
    return change
