"""The statements of schemas/clickhouse/, as they are for one server, or made for a ClickHouse
cluster of one shard and several replicas (Keeper coordinates them) by `tally init --cluster NAME`.

Each statement is the same file's, rewritten:
  * `CREATE DATABASE`, `CREATE TABLE`, `CREATE MATERIALIZED VIEW` and `ALTER TABLE` run
    `ON CLUSTER`, so every replica has them;
  * every MergeTree engine becomes its Replicated twin, its data at
    /clickhouse/tables/{shard}/{database}/<table> in Keeper, `{replica}` from each server's macros,
    its own arguments kept (ReplacingMergeTree(revision) -> ReplicatedReplacingMergeTree(path,
    replica, revision));
  * a table that drops repeated inserts (`non_replicated_deduplication_window`) keeps that window in
    Keeper instead, sized for a night: DEDUP_BLOCKS blocks and at least DEDUP_SECONDS.

One shard: a national night is ~4.3M TPS rows and ~5M decisions, which one server holds easily; more
replicas are for staying up. A shard per something would split a TPS's change rows from the totals
they move (one insert, one part, docs/exactly-once.md), so sharding is not offered. Reads work on
any replica unchanged. The sink, in cluster mode (`TALLY_CLUSTER`), makes every insert wait for a
quorum of replicas and every read it decides by (leases, state) see all quorum writes
(clickhouse.sink)."""

from __future__ import annotations

import re
from pathlib import Path

from streams.embedded.schema_files import CREATE_VIEW, SCHEMA_DIR, backfills, sql_statements

__all__ = ["backfills", "cluster_statement", "create_database", "schema", "sql_statements"]

DEDUP_BLOCKS = 10_000  # as non_replicated_deduplication_window: a retry comes within seconds
DEDUP_SECONDS = 86_400  # a night and its morning: a replay's retry is never out of the window

_CREATE_TABLE = re.compile(r"^(CREATE TABLE IF NOT EXISTS\s+)(\w+)", re.MULTILINE)
_ALTER_TABLE = re.compile(r"^(ALTER TABLE\s+)(\w+)", re.MULTILINE)
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w*)MergeTree(?:\(([^)]*)\))?")
_NON_REPLICATED = re.compile(r"non_replicated_deduplication_window\s*=\s*\d+")


def schema(
    cluster: str | None = None, schema_dir: Path = SCHEMA_DIR
) -> list[tuple[str, list[str]]]:
    """(file name, its statements, for `cluster` if given) for every schema file, in the order they
    apply."""
    return [
        (p.name, [cluster_statement(s, cluster) if cluster else s for s in sql_statements(p)])
        for p in sorted(schema_dir.glob("*.sql"))
    ]


def _quoted(cluster: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", cluster):
        raise ValueError(f"cluster name {cluster!r}: letters, digits, '_', '.' and '-' only")
    return f"'{cluster}'"


def cluster_statement(statement: str, cluster: str) -> str:
    """One schema statement for `cluster` (see the module's docstring)."""
    on = f" ON CLUSTER {_quoted(cluster)}"
    view = CREATE_VIEW.search(statement)
    if view:  # ON CLUSTER goes after the view's name
        return statement[: view.end(2)] + on + statement[view.end(2) :]
    created = _CREATE_TABLE.search(statement)
    if created:
        table = created.group(2)
        statement = _CREATE_TABLE.sub(lambda m: f"{m.group(1)}{m.group(2)}{on}", statement, count=1)

        def replicated(match: re.Match[str]) -> str:
            kind, args = match.group(1), match.group(2)
            path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}'"
            return f"ENGINE = Replicated{kind}MergeTree({path}{', ' + args if args else ''})"

        statement = _ENGINE.sub(replicated, statement)
        window = (
            f"replicated_deduplication_window = {DEDUP_BLOCKS}, "
            f"replicated_deduplication_window_seconds = {DEDUP_SECONDS}"
        )
        return _NON_REPLICATED.sub(window, statement)
    return _ALTER_TABLE.sub(lambda m: f"{m.group(1)}{m.group(2)}{on}", statement, count=1)


def create_database(database: str, cluster: str | None) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{database}`" + (
        f" ON CLUSTER {_quoted(cluster)}" if cluster else ""
    )
