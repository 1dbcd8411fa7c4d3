"""The ClickHouse edge: connect with clickhouse-connect's HTTP client, and apply
schemas/clickhouse/*.sql."""

from __future__ import annotations

import uuid
from urllib.parse import urlparse, urlunparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streams.clickhouse.schema import backfills, create_database, schema
from streams.embedded.servers import clickhouse_dsn
from streams.embedded.servers import read_only as read_only_dsn
from streams.settings import Settings


def moment_read() -> dict[str, str]:
    """The settings of a statement that must see every insert stamped before its moment (a totals
    read that answers with its moment, a page of the change feed, the log's next leaves): a query_id
    the embedded server knows (embedded.chdb_http.MomentGate), unique as a query_id must be."""
    return {"query_id": f"moment-{uuid.uuid4()}"}


def database_of(dsn: str) -> str:
    return urlparse(dsn).path.strip("/") or "default"


def _with_database(dsn: str, database: str) -> str:
    return urlunparse(urlparse(dsn)._replace(path=f"/{database}"))


def connect(settings: Settings, read_only: bool = False, **kwargs: object) -> Client:
    """A client for the configured ClickHouse (starting the embedded one if none is configured);
    with `read_only`, as the embedded ClickHouse's read-only user (a configured server's DSN is as
    given)."""
    dsn = clickhouse_dsn(settings)
    return clickhouse_connect.get_client(
        dsn=read_only_dsn(settings, dsn) if read_only else dsn, **kwargs
    )


def apply_schema(settings: Settings) -> list[str]:
    """Create the database and every table, idempotently, in file order (on every replica of
    `settings.cluster` if one is set: clickhouse.schema); returns the files applied."""
    dsn = clickhouse_dsn(settings)
    database = database_of(dsn)
    admin = clickhouse_connect.get_client(dsn=_with_database(dsn, "default"))
    admin.command(create_database(database, settings.cluster))
    client = clickhouse_connect.get_client(dsn=dsn)
    applied = []
    for name, statements in schema(settings.cluster):
        for statement in statements:
            client.command(statement)
        for view, copy in backfills(statements):
            _backfill(client, view, copy)
        applied.append(name)
    return applied


def _backfill(client: Client, view: str, copy: str) -> None:
    """Copy what a view's source held before the view existed, once: a copy is marked done after
    it ran, so one cut short runs again, and the rows it wrote twice (or beside the view) are copies
    their readers deduplicate (schemas/clickhouse/014_tps_pages_table.sql)."""
    done = client.command(
        "SELECT count() FROM schema_backfills WHERE name = {v:String}", parameters={"v": view}
    )
    if int(done):
        return
    client.command(copy)
    client.command(
        "INSERT INTO schema_backfills (name) VALUES ({v:String})", parameters={"v": view}
    )
