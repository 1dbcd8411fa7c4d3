"""The audit trail of one TPS: every event received for it, in arrival order, with its decision,
reasons and findings, flags, gateway, device key and times. Read by `tally audit` and /api/tps/{code}."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

HISTORY_SQL = """
SELECT d.received_at AS received_at, d.decided_at AS decided_at, d.event_id AS event_id, d.ballot AS ballot,
       d.revision AS revision, d.decision AS decision, d.reasons AS reasons, r.findings AS findings, d.flags AS flags,
       d.gateway AS gateway, d.key_id AS key_id, d.submitted_at AS submitted_at,
       d.src_partition AS partition, d.src_offset AS offset
FROM (SELECT * FROM tally_decisions FINAL WHERE tps = {tps:String} AND ({ballot:String} = '' OR ballot = {ballot:String})) AS d
LEFT JOIN (SELECT src_partition, src_offset, findings FROM tally_rejections FINAL WHERE tps = {tps:String}) AS r
    ON d.src_partition = r.src_partition AND d.src_offset = r.src_offset
ORDER BY received_at, partition, offset
"""


def history(client: Client, tps: str, ballot: str | None = None) -> list[dict]:
    rows = client.query(HISTORY_SQL, parameters={"tps": tps, "ballot": ballot or ""}).named_results()
    return [{**row, "received_at": str(row["received_at"]), "decided_at": str(row["decided_at"])} for row in rows]
