"""The audit trail of one TPS: every event received for it or under its code as Kafka key, in
arrival order, with its decision, reasons and findings, flags, gateway, device key, times and where
it was received (a record that arrived off its home partition shows twice: `forwarded` where it
arrived, and its decision at home, which names the arrival in `forwarded_from`). Read by `tally
audit` and /api/tps/{code}, the API's for many TPS at once (`histories`)."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

COLUMNS = """received_at, decided_at, event_id, ballot, revision, decision, reasons, findings,
       flags, gateway, key_id, submitted_at, src_partition AS partition, src_offset AS offset,
       kafka_key, forwarded_from"""

# Each statement a table costs the embedded server a few ms however little it reads, so the trail
# is one statement, and a second only for a TPS under whose code records of another TPS (or none)
# were sent: those are rejected, and tally_rejections names them (`keyed`). Its rows are put in
# arrival order here: an ORDER BY over the union cost the server a third of the statement.
HISTORY_SQL = f"""
    -- Each TPS's own decisions,
    SELECT tps AS page, tps, {COLUMNS}, '' AS forwarded_to
    FROM tally_decisions FINAL WHERE tps IN {{codes:Array(String)}}
    UNION ALL
    -- the records that arrived off its home partition: where each arrived and was sent,
    SELECT kafka_key, '', received_at, forwarded_at, '', '', 0, 'forwarded', [], [], [], '', '', '',
           src_partition, src_offset, kafka_key, '', toString(home_partition)
    FROM tally_forwards FINAL WHERE kafka_key IN {{codes:Array(String)}}
    UNION ALL
    -- and the records under its code that were not its tallies, to be read from their decisions.
    SELECT kafka_key, ifNull(tps, ''), received_at, rejected_at, '', '', 0, 'keyed', [], [], [], '',
           '', '', src_partition, src_offset, kafka_key, '', ''
    FROM tally_rejections
    WHERE kafka_key IN {{codes:Array(String)}} AND ifNull(tps, '') != kafka_key
"""

KEYED_SQL = f"""
SELECT tps, {COLUMNS}, '' AS forwarded_to
FROM tally_decisions FINAL
WHERE tps IN {{tps:Array(String)}} AND kafka_key IN {{keys:Array(String)}} AND tps != kafka_key
"""


def histories(client: Client, codes: list[str]) -> dict[str, list[dict]]:
    """The audit trail of each TPS of `codes` (of every ballot); a TPS of which nothing was received
    is absent."""
    found: dict[str, list[dict]] = {}
    keyed: set[tuple[str, str]] = set()  # (the record's TPS, the code it was sent under)
    for row in client.query(HISTORY_SQL, parameters={"codes": codes}).named_results():
        page, tps = row.pop("page"), row.pop("tps")
        if row["decision"] == "keyed":
            keyed.add((tps, page))
        else:
            found.setdefault(page, []).append(row)
    if keyed:
        tps, keys = sorted({t for t, _ in keyed}), sorted({k for _, k in keyed})
        for row in client.query(KEYED_SQL, parameters={"tps": tps, "keys": keys}).named_results():
            if (row.pop("tps"), row["kafka_key"]) in keyed:
                found.setdefault(row["kafka_key"], []).append(row)
    for events in found.values():
        events.sort(key=lambda e: (e["received_at"], e["partition"], e["offset"]))
        for e in events:
            e["received_at"], e["decided_at"] = str(e["received_at"]), str(e["decided_at"])
    return found


def of_ballot(events: list[dict], ballot: str | None) -> list[dict]:
    """The trail narrowed to one ballot's decisions (all, if None); a forward names no ballot (the
    record is decided at home) and always stays."""
    if not ballot:
        return events
    return [e for e in events if e["ballot"] == ballot or e["decision"] == "forwarded"]


def history(client: Client, tps: str, ballot: str | None = None) -> list[dict]:
    return of_ballot(histories(client, [tps]).get(tps, []), ballot)
