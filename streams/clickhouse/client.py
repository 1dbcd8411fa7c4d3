"""The ClickHouse edge: connect with clickhouse-connect's HTTP client, and apply schemas/clickhouse/*.sql."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse, urlunparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streams.embedded.servers import clickhouse_dsn
from streams.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"


def database_of(dsn: str) -> str:
    return urlparse(dsn).path.strip("/") or "default"


def _with_database(dsn: str, database: str) -> str:
    return urlunparse(urlparse(dsn)._replace(path=f"/{database}"))


def connect(settings: Settings, **kwargs: object) -> Client:
    """A client for the configured ClickHouse (starting the embedded one if none is configured)."""
    return clickhouse_connect.get_client(dsn=clickhouse_dsn(settings), **kwargs)


def sql_statements(path: Path) -> list[str]:
    """The statements of one .sql file: split on ';' at the end of a line, comments kept."""
    text = path.read_text()
    return [
        s.strip()
        for s in text.split(";\n")
        if s.strip() and not all(line.strip().startswith("--") or not line.strip() for line in s.strip().splitlines())
    ]


def apply_schema(settings: Settings) -> list[str]:
    """Create the database and every table, idempotently, in file order; returns the files applied."""
    dsn = clickhouse_dsn(settings)
    database = database_of(dsn)
    admin = clickhouse_connect.get_client(dsn=_with_database(dsn, "default"))
    admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client = clickhouse_connect.get_client(dsn=dsn)
    applied = []
    for path in sorted(SCHEMA_DIR.glob("*.sql")):
        for statement in sql_statements(path):
            client.command(statement)
        applied.append(path.name)
    return applied
