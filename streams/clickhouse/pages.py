"""Everything the pages of many TPS show, in one statement: each TPS's current tally of every ballot
and its audit trail (every record received for it or under its code as Kafka key, in arrival order,
with its decision, reasons and findings, flags, gateway, device key, times and where it was
received). A record that arrived off its home partition shows twice: `forwarded` where it arrived,
and its decision at home, which names the arrival in `forwarded_from`.

What a page shows of each row of tally_current and tally_decisions (a tally's votes apart) is one
JSON array the server derives from the row's own columns (schemas/clickhouse/012_tps_pages.sql),
and views copy it with the votes, and each forwarded arrival, as rows are written, into one table
ordered by the code a page is read under (014_tps_pages_table.sql): a page of many TPS reads a
few narrow columns of one table, where each column and each table a statement reads costs the
embedded server about as much as the few rows a TPS has. Without FINAL, and
deduplicated here as FINAL would the source: the highest revision of each (TPS, ballot), the first
decision of each source position (first_wins falls with time), one arrival a forwarded position;
a row copied twice reads as once."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from clickhouse_connect.driver.client import Client

# The field orders of tally_entry and trail_entry (schemas/clickhouse/012_tps_pages.sql).
TALLY_FIELDS = (
    "ballot", "event_id", "gateway", "submitted_at", "invalid", "voters", "registered", "flags",
)  # fmt: skip
TRAIL_FIELDS = (
    "received_at", "decided_at", "event_id", "ballot", "revision", "decision", "reasons",
    "findings", "flags", "gateway", "key_id", "submitted_at", "partition", "offset", "kafka_key",
    "forwarded_from", "epoch",
)  # fmt: skip
FORWARD_FIELDS = ("received_at", "decided_at", "partition", "offset", "kafka_key", "home", "epoch")

# One statement however many TPS, of one table: what the views of
# schemas/clickhouse/014_tps_pages_table.sql copy there of each row as it is written.
PAGES_SQL = """
SELECT page, kind, rank, entry, votes FROM tps_pages WHERE page IN {codes:Array(String)}
"""

EPOCH = datetime(1970, 1, 1)


def moment(ms: int) -> str:
    """A time of the trail as the API has always written it: UTC, naive, to the microsecond."""
    return str(EPOCH + timedelta(milliseconds=ms))


class Page:
    """One TPS's tallies (ballot -> (revision, tally)) and trail (position -> (first_wins,
    entry)), as the rows come."""

    __slots__ = ("tallies", "trail")

    def __init__(self) -> None:
        self.tallies: dict[str, tuple[int, dict]] = {}
        self.trail: dict[tuple, tuple[int, dict]] = {}

    def tally(self, revision: int, entry: str, votes: dict[str, int]) -> None:
        fields = dict(zip(TALLY_FIELDS, orjson.loads(entry), strict=True))
        held = self.tallies.get(fields["ballot"])
        if held is None or revision >= held[0]:  # the highest revision, as FINAL keeps it
            # In the order the API has always written a tally.
            tally = {"ballot": fields.pop("ballot"), "revision": revision}
            tally |= {"event_id": fields.pop("event_id"), "gateway": fields.pop("gateway")}
            tally |= {"submitted_at": fields.pop("submitted_at"), "votes": votes, **fields}
            self.tallies[tally["ballot"]] = (revision, tally)

    def decision(self, rank: int, entry: str) -> None:
        event = dict(zip(TRAIL_FIELDS, orjson.loads(entry), strict=True))
        where = (event["ballot"], event["partition"], event["offset"], event.pop("epoch"))
        held = self.trail.get(where)
        if held is None or rank > held[0]:  # the first decision of a position (first_wins)
            event["forwarded_to"] = ""
            self.trail[where] = (rank, event)

    def forward(self, entry: str) -> None:
        arrival = dict(zip(FORWARD_FIELDS, orjson.loads(entry), strict=True))
        where = ("forwarded", arrival["partition"], arrival["offset"], arrival["epoch"])
        self.trail[where] = (0, {
            "received_at": arrival["received_at"], "decided_at": arrival["decided_at"],
            "event_id": "", "ballot": "", "revision": 0, "decision": "forwarded", "reasons": [],
            "findings": [], "flags": [], "gateway": "", "key_id": "", "submitted_at": "",
            "partition": arrival["partition"], "offset": arrival["offset"],
            "kafka_key": arrival["kafka_key"], "forwarded_from": "",
            "forwarded_to": str(arrival["home"]),
        })  # fmt: skip

    def tally_list(self) -> list[dict]:
        return [tally for _, (_, tally) in sorted(self.tallies.items())]

    def events(self) -> list[dict]:
        """The trail in arrival order, its times as text (the entries kept as they came)."""
        events = sorted(
            (event for _, event in self.trail.values()),
            key=lambda e: (e["received_at"], e["partition"], e["offset"]),
        )
        return [
            {**e, "received_at": moment(e["received_at"]), "decided_at": moment(e["decided_at"])}
            for e in events
        ]


def read_pages(client: Client, codes: list[str]) -> dict[str, Page]:
    """The tallies and trail of each TPS of `codes` of which anything was received; the others are
    absent."""
    pages: dict[str, Page] = {}
    result = client.query(PAGES_SQL, parameters={"codes": codes})
    for code, kind, rank, entry, votes in result.result_rows:
        page = pages.get(code) or pages.setdefault(code, Page())
        if kind == "tally":
            page.tally(rank, entry, votes)
        elif kind == "decision":
            page.decision(rank, entry)
        else:
            page.forward(entry)
    return pages
