"""tally's ClickHouse schema as its files hold it (schemas/clickhouse/): the statements of each
file, and the one-time copy each materialized view needs. Read by `tally init` (clickhouse.schema)
and by the embedded server, which runs no other statement on what only the server writes
(embedded.statements, DERIVED)."""

from __future__ import annotations

import re
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"

_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?(?:\n|\Z)")
CREATE_VIEW = re.compile(
    r"^(CREATE MATERIALIZED VIEW IF NOT EXISTS\s+)(\w+)(\s+TO\s+)(\w+)(\s+AS\s+)", re.MULTILINE
)


def sql_statements(path: Path) -> list[str]:
    """The statements of one .sql file: split on ';' at the end of a line (a comment may follow it),
    comments kept. One statement each: a ClickHouse server refuses several in one request."""
    text = path.read_text()
    return [
        s.strip()
        for s in _STATEMENT_END.split(text)
        if s
        and s.strip()
        and not all(
            line.strip().startswith("--") or not line.strip() for line in s.strip().splitlines()
        )
    ]


def backfills(statements: list[str]) -> list[tuple[str, str]]:
    """(view, the INSERT that copies its query's rows from what its source already holds) for each
    materialized view among `statements`: a view sees only the rows written after it exists, so
    `tally init` runs each copy once (clickhouse.client.apply_schema)."""
    found = []
    for statement in statements:
        view = CREATE_VIEW.search(statement)
        if view:
            found.append((view.group(2), f"INSERT INTO {view.group(4)} {statement[view.end() :]}"))
    return found


def own_statements() -> list[str]:
    """Every statement `tally init` runs on one server: the files', then the views' copies."""
    statements = [s for path in sorted(SCHEMA_DIR.glob("*.sql")) for s in sql_statements(path)]
    return statements + [copy for _, copy in backfills(statements)]
