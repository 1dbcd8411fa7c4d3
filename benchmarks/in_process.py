"""chDB in this process with tally's schema: the benchmarks that time the server's own work, with no
HTTP and no worker between."""

from __future__ import annotations

import chdb

from streams.clickhouse.schema import schema


def with_schema(path: str, database: str) -> chdb.Connection:
    """A chDB connection on `path` whose `database` holds every table and view of the schema."""
    con = chdb.connect(path)
    con.query(f"CREATE DATABASE {database}")
    con.query(f"USE {database}")
    for _, statements in schema():
        for statement in statements:
            con.query(statement)
    return con
