"""The audit trail of one TPS: every event received for it or under its code as Kafka key, in
arrival order, with its decision, reasons and findings, flags, gateway, device key, times and where
it was received (a record that arrived off its home partition shows twice: `forwarded` where it
arrived, and its decision at home, which names the arrival in `forwarded_from`). Read by `tally
audit` and /api/tps/{code}."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

HISTORY_SQL = """
SELECT received_at, decided_at, event_id, ballot, revision, decision, reasons, findings, flags,
       gateway, key_id, submitted_at, src_partition AS partition, src_offset AS offset, kafka_key,
       forwarded_from, forwarded_to
FROM (
    SELECT received_at, decided_at, event_id, ballot, revision, decision, reasons, findings, flags,
           gateway, key_id, submitted_at, src_partition, src_offset, kafka_key, forwarded_from,
           '' AS forwarded_to
    FROM tally_decisions FINAL
    -- Its own decisions, and the records keyed by it that were not its tallies (rejected: another
    -- TPS's tally, or none): those are found through tally_rejections, so that both conditions
    -- are on the primary key's tps, and a TPS page reads a few granules, not the table.
    WHERE (tps = {tps:String}
           OR (tps IN (SELECT ifNull(tps, '') FROM tally_rejections WHERE kafka_key = {tps:String})
               AND kafka_key = {tps:String}))
      AND ({ballot:String} = '' OR ballot = {ballot:String})
    UNION ALL
    -- A record that arrived off its home partition: its arrival, and where it was sent to be
    -- decided.
    SELECT received_at, forwarded_at, '', '', 0, 'forwarded', [], [], [], '', '', '',
           src_partition, src_offset, kafka_key, '', toString(home_partition)
    FROM tally_forwards FINAL WHERE kafka_key = {tps:String}
)
ORDER BY received_at, partition, offset
"""


def history(client: Client, tps: str, ballot: str | None = None) -> list[dict]:
    rows = client.query(
        HISTORY_SQL, parameters={"tps": tps, "ballot": ballot or ""}
    ).named_results()
    return [
        {**row, "received_at": str(row["received_at"]), "decided_at": str(row["decided_at"])}
        for row in rows
    ]
