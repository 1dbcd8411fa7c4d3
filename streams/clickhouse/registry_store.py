"""The registry in ClickHouse: load a registry file into it; read it back for the workers; revoke a
key."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice

from clickhouse_connect.driver.client import Client

from streams.core.registry import Contest, DptTable, Registry, key_from_record
from streams.core.signatures import DeviceKey, KeyRing

CHUNK = 200_000
KEY_COLUMNS = ("key_id", "tps", "public_key", "valid_from", "valid_until", "revoked_at")
REGISTRY_TABLES = (
    "regions",
    "registry_tps",
    "registry_contests",
    "registry_keys",
    "region_tps_total",
)

# Which TPS hold which ballot: a TPS is covered by a contest whose regions include one of its
# prefixes.
TPS_TOTALS_SQL = """
INSERT INTO region_tps_total (ballot, level, region, tps_total, dpt_total)
SELECT ballot, level_region.1 AS level, level_region.2 AS region,
       count() AS tps_total, sum(dpt) AS dpt_total
FROM (
    SELECT DISTINCT c.ballot AS ballot, p.tps AS tps, p.dpt AS dpt
    FROM (SELECT tps, dpt, arrayJoin(['ID', substring(tps, 1, 2), substring(tps, 1, 4),
                                      substring(tps, 1, 6), substring(tps, 1, 10), tps]) AS region
          FROM registry_tps) AS p
    INNER JOIN (SELECT ballot, arrayJoin(regions) AS region FROM registry_contests) AS c
    USING (region)
)
ARRAY JOIN [('national', 'ID'), ('province', substring(tps, 1, 2)),
            ('regency', substring(tps, 1, 4)), ('district', substring(tps, 1, 6)),
            ('village', substring(tps, 1, 10))] AS level_region
GROUP BY ballot, level, region
"""


def _region_row(record: dict) -> tuple:
    return (record["code"], record["name"], record["level"], record.get("parent", ""))


def _tps_row(record: dict) -> tuple:
    return (record["code"], int(record["dpt"]), int(record.get("ballots") or 0))


def _contest_row(record: dict) -> tuple:
    return (
        record["ballot"],
        record["dapil"],
        record.get("name", record["dapil"]),
        list(record["regions"]),
        [c["code"] for c in record["choices"]],
        [c.get("name", c["code"]) for c in record["choices"]],
        int(record.get("seats", 0)),
    )


def _key_row(record: dict) -> tuple:
    key = key_from_record(record)  # refuses a key that is not 32 bytes of base64
    return (
        record["key_id"],
        key.tps,
        record["public_key"],
        _utc(key.valid_from),
        _utc(key.valid_until),
        _utc(key.revoked_at),
    )


ROW_OF = {"region": _region_row, "tps": _tps_row, "contest": _contest_row, "key": _key_row}


def load_registry(client: Client, records: Iterable[dict]) -> dict[str, int]:
    """Replace the registry in ClickHouse with these records; returns counts per record type."""
    for table in REGISTRY_TABLES:
        client.command(f"TRUNCATE TABLE IF EXISTS {table}")
    counts = {"region": 0, "tps": 0, "contest": 0, "key": 0}
    regions: list[tuple] = []
    tps: list[tuple] = []
    contests: list[tuple] = []
    keys: list[tuple] = []

    def flush() -> None:
        if regions:
            client.insert("regions", regions, column_names=["code", "name", "level", "parent"])
        if tps:
            client.insert("registry_tps", tps, column_names=["tps", "dpt", "ballots"])
        if contests:
            client.insert(
                "registry_contests",
                contests,
                column_names=[
                    "ballot",
                    "dapil",
                    "name",
                    "regions",
                    "choices",
                    "choice_names",
                    "seats",
                ],
            )
        if keys:
            client.insert("registry_keys", keys, column_names=list(KEY_COLUMNS))
        regions.clear(), tps.clear(), contests.clear(), keys.clear()

    iterator = iter(records)
    while chunk := list(islice(iterator, CHUNK)):
        for record in chunk:
            kind = record.get("type")
            if kind not in ROW_OF:
                raise ValueError(f"unknown registry record type {kind!r}")
            {"region": regions, "tps": tps, "contest": contests, "key": keys}[kind].append(
                ROW_OF[kind](record)
            )
            counts[kind] += 1
        flush()
    client.command(TPS_TOTALS_SQL)
    client.command(
        "INSERT INTO registry_loads (tps, contests) VALUES ({tps:UInt32}, {contests:UInt32})",
        parameters={"tps": counts["tps"], "contests": counts["contest"]},
    )
    return counts


def registry_version(client: Client) -> int:
    return int(client.command("SELECT count() FROM registry_loads"))


def read_dpt(client: Client, codes: list[str] | None = None) -> DptTable:
    """The DPT of every registered TPS (of `codes` only, if given)."""
    where = "" if codes is None else " WHERE tps IN {codes:Array(String)}"
    with client.query_rows_stream(
        f"SELECT tps, dpt FROM registry_tps FINAL{where}",
        parameters=None if codes is None else {"codes": codes},
    ) as stream:
        return DptTable(stream)


def read_registry(client: Client) -> Registry:
    registry = Registry()
    registry.dpt = read_dpt(client)
    registry.allocations = dict(
        client.query("SELECT tps, ballots FROM registry_tps FINAL WHERE ballots > 0").result_rows
    )
    for ballot, dapil, name, regions, choices, names, seats in client.query(
        "SELECT ballot, dapil, name, regions, choices, choice_names, seats FROM registry_contests "
        "FINAL"
    ).result_rows:
        registry.add_contest(
            Contest(ballot, dapil, name, tuple(regions), tuple(choices), tuple(names), seats)
        )
    with client.query_rows_stream(
        "SELECT key_id, tps, public_key, toFloat64(valid_from), toFloat64(valid_until), "
        "toFloat64(revoked_at) "
        "FROM registry_keys FINAL"
    ) as stream:
        registry.keys = KeyRing(
            (key_id, DeviceKey(tps, base64.b64decode(pk), start, end, revoked))
            for key_id, tps, pk, start, end, revoked in stream
        )
    return registry


def revoke_key(client: Client, key_id: str, at: float) -> bool:
    """Mark a device key revoked from `at` (epoch seconds) on; workers pick it up within seconds.
    False if there is no such key."""
    found = client.query(
        "SELECT tps, public_key, valid_from, valid_until FROM registry_keys FINAL WHERE key_id = "
        "{k:String}",
        parameters={"k": key_id},
    ).result_rows
    if not found:
        return False
    tps, public_key, valid_from, valid_until = found[0]
    client.insert(
        "registry_keys",
        [(key_id, tps, public_key, valid_from, valid_until, _utc(at))],
        column_names=list(KEY_COLUMNS),
    )
    # A new registry version: workers reload and see the revocation.
    client.command(
        "INSERT INTO registry_loads (tps, contests) SELECT tps, contests FROM registry_loads ORDER "
        "BY loaded_at DESC LIMIT 1"
    )
    return True


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)
