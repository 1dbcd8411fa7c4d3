"""Everything the pages of many TPS show, in one statement: each TPS's current tally of every ballot
and its audit trail (every record received for it or under its code as Kafka key, in arrival order,
with its decision, reasons and findings, flags, gateway, device key, times and where it was
received). A record that arrived off its home partition shows twice: `forwarded` where it arrived,
and its decision at home, which names the arrival in `forwarded_from`.

Each row of tally_current and tally_decisions carries what a page shows of it (a tally's votes
apart) as one JSON array the server derives from the row's own columns when it is written
(schemas/clickhouse/012_tps_pages.sql), so a page reads a few narrow columns where it read thirty:
each column read costs the embedded server about as much as the few rows a TPS has. Without FINAL,
and deduplicated here as FINAL would: the highest revision of each (TPS, ballot), the first
decision of each source position (first_wins falls with time), one arrival a forwarded
position."""

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

# One statement however many TPS: the tallies (with their votes, the other arms in their shape),
# the decisions, the records that arrived off their home partition (where each arrived and was
# sent), and the records sent under a TPS's code that were not its tallies (those are rejected,
# and tally_rejections names them: `keyed`), to be read from their decisions by KEYED_SQL, which
# runs only when there are some.
PAGES_SQL = """
SELECT tps AS page, 'tally' AS kind, toUInt64(revision) AS rank, tally_entry AS entry, votes
FROM tally_current WHERE tps IN {codes:Array(String)}
UNION ALL
SELECT tps, 'decision', first_wins, trail_entry, map()
FROM tally_decisions WHERE tps IN {codes:Array(String)}
UNION ALL
SELECT kafka_key, 'forwarded', 0,
       toJSONString(tuple(toUnixTimestamp64Milli(received_at), toUnixTimestamp64Milli(forwarded_at),
                          src_partition, src_offset, kafka_key, home_partition, src_epoch)),
       map()
FROM tally_forwards WHERE kafka_key IN {codes:Array(String)}
UNION ALL
SELECT kafka_key, 'keyed', 0, ifNull(tps, ''), map()
FROM tally_rejections WHERE kafka_key IN {codes:Array(String)} AND ifNull(tps, '') != kafka_key
"""

KEYED_SQL = """
SELECT tps, kafka_key, first_wins, trail_entry FROM tally_decisions
WHERE tps IN {tps:Array(String)} AND kafka_key IN {keys:Array(String)} AND tps != kafka_key
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
    keyed: set[tuple[str, str]] = set()  # (the record's TPS, the code it was sent under)
    result = client.query(PAGES_SQL, parameters={"codes": codes})
    for code, kind, rank, entry, votes in result.result_rows:
        if kind == "keyed":
            keyed.add((entry, code))
            continue
        page = pages.get(code) or pages.setdefault(code, Page())
        if kind == "tally":
            page.tally(rank, entry, votes)
        elif kind == "decision":
            page.decision(rank, entry)
        else:
            page.forward(entry)
    if keyed:
        tps, keys = sorted({t for t, _ in keyed}), sorted({k for _, k in keyed})
        result = client.query(KEYED_SQL, parameters={"tps": tps, "keys": keys})
        for tps_, key, rank, entry in result.result_rows:
            if (tps_, key) in keyed:
                (pages.get(key) or pages.setdefault(key, Page())).decision(rank, entry)
    return pages
