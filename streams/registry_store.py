"""The registry in ClickHouse: load a registry file into it; read it back for the workers."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from clickhouse_connect.driver.client import Client

from streams.registry import Contest, Registry

CHUNK = 200_000
REGISTRY_TABLES = ("regions", "registry_tps", "registry_contests", "region_tps_total")

# Which TPS hold which ballot: a TPS is covered by a contest whose regions include one of its prefixes.
TPS_TOTALS_SQL = """
INSERT INTO region_tps_total (ballot, level, region, tps_total, dpt_total)
SELECT ballot, level_region.1 AS level, level_region.2 AS region, count() AS tps_total, sum(dpt) AS dpt_total
FROM (
    SELECT DISTINCT c.ballot AS ballot, p.tps AS tps, p.dpt AS dpt
    FROM (SELECT tps, dpt, arrayJoin(['ID', substring(tps, 1, 2), substring(tps, 1, 4), substring(tps, 1, 6),
                                      substring(tps, 1, 10), tps]) AS region FROM registry_tps) AS p
    INNER JOIN (SELECT ballot, arrayJoin(regions) AS region FROM registry_contests) AS c USING (region)
)
ARRAY JOIN [('national', 'ID'), ('province', substring(tps, 1, 2)), ('regency', substring(tps, 1, 4)),
            ('district', substring(tps, 1, 6)), ('village', substring(tps, 1, 10))] AS level_region
GROUP BY ballot, level, region
"""


def load_registry(client: Client, records: Iterable[dict]) -> dict[str, int]:
    """Replace the registry in ClickHouse with these records; returns counts per record type."""
    for table in REGISTRY_TABLES:
        client.command(f"TRUNCATE TABLE IF EXISTS {table}")
    counts = {"region": 0, "tps": 0, "contest": 0}
    regions: list[tuple] = []
    tps: list[tuple] = []
    contests: list[tuple] = []

    def flush() -> None:
        if regions:
            client.insert("regions", regions, column_names=["code", "name", "level", "parent"])
        if tps:
            client.insert("registry_tps", tps, column_names=["tps", "dpt"])
        if contests:
            client.insert(
                "registry_contests", contests, column_names=["ballot", "dapil", "name", "regions", "choices", "choice_names"]
            )
        regions.clear(), tps.clear(), contests.clear()

    iterator = iter(records)
    while chunk := list(islice(iterator, CHUNK)):
        for record in chunk:
            kind = record.get("type")
            if kind == "region":
                regions.append((record["code"], record["name"], record["level"], record.get("parent", "")))
            elif kind == "tps":
                tps.append((record["code"], int(record["dpt"])))
            elif kind == "contest":
                contests.append(
                    (
                        record["ballot"],
                        record["dapil"],
                        record.get("name", record["dapil"]),
                        list(record["regions"]),
                        [c["code"] for c in record["choices"]],
                        [c.get("name", c["code"]) for c in record["choices"]],
                    )
                )
            else:
                raise ValueError(f"unknown registry record type {kind!r}")
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


def read_registry(client: Client) -> Registry:
    registry = Registry()
    with client.query_rows_stream("SELECT tps, dpt FROM registry_tps FINAL") as stream:
        registry.dpt = {tps: dpt for tps, dpt in stream}
    for ballot, dapil, name, regions, choices, names in client.query(
        "SELECT ballot, dapil, name, regions, choices, choice_names FROM registry_contests FINAL"
    ).result_rows:
        registry.add_contest(Contest(ballot, dapil, name, tuple(regions), tuple(choices), tuple(names)))
    return registry
