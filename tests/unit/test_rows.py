"""The rows the pipeline builds are the tables the sink writes: one declaration
(`streams.core.rows`), held here to the schema files and to what a decided batch holds."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from streams.clickhouse.sink import CURRENT, DECISIONS, FORWARDS, REJECTIONS, TOTALS
from streams.core.batch import Batch
from streams.core.pipeline import Message, Processor
from streams.core.rows import CurrentRow, DecisionRow, ForwardRow, RejectionRow, TotalsRow, columns
from tests.factories import small_registry, tally_dict

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"
TYPE = r"[A-Za-z0-9]+(?:\((?:[^()]|\([^()]*\))*\))?"


def schema_columns() -> dict[str, dict[str, str]]:
    """Table -> column -> type, from every CREATE TABLE and ALTER .. ADD COLUMN of the schema
    files."""
    tables: dict[str, dict[str, str]] = {}
    for sql in sorted(SCHEMAS.glob("*.sql")):
        text = re.sub(r"--[^\n]*", "", sql.read_text())
        for name, body in re.findall(
            r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\)\s*ENGINE", text, re.S
        ):
            for column, kind in re.findall(rf"^\s*(\w+)\s+({TYPE})", body, re.M):
                tables.setdefault(name, {})[column] = kind
        for name, column, kind in re.findall(
            rf"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) ({TYPE})", text
        ):
            tables.setdefault(name, {})[column] = kind
    return tables


def stored(kind: str) -> str:
    """The type a value is sent as: LowCardinality is how the server stores it, not what it
    takes."""
    return re.sub(r"LowCardinality\((\w+)\)", r"\1", kind)


@pytest.mark.parametrize(
    "table", [TOTALS, DECISIONS, REJECTIONS, FORWARDS, CURRENT], ids=lambda t: t.name
)
def test_every_column_the_sink_writes_is_in_the_schema_with_its_type(table):
    schema = schema_columns()[table.name]
    for name, kind in table.columns:
        assert name in schema, f"{table.name}.{name} is written but not in schemas/clickhouse"
        assert stored(schema[name]) == kind, (
            f"{table.name}.{name}: written as {kind}, stored as {schema[name]}"
        )


@pytest.mark.parametrize(
    ("table", "row", "constants"),
    [
        (TOTALS, TotalsRow, ()),
        (DECISIONS, DecisionRow, ("src_epoch",)),
        (REJECTIONS, RejectionRow, ("src_epoch",)),
        (FORWARDS, ForwardRow, ("src_epoch",)),
        (CURRENT, CurrentRow, ()),
    ],
    ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")),
)
def test_each_table_is_its_record_then_its_constants(table, row, constants):
    assert [name for name, _ in table.columns] == [*row._fields, *constants]
    assert table.columns[: len(row._fields)] == columns(row)


def decided_batch() -> Batch:
    """Two TPS counted, one of them corrected, and one record that is not JSON."""
    processor = Processor(lambda: small_registry(), require_signatures=False)
    processor.preload(0, [], {})
    events = [
        tally_dict(),
        tally_dict(tps="3171010001002", event_id="gw-31-01:000124"),
        tally_dict(votes={"01": 121, "02": 79, "03": 30}, revision=2, event_id="gw-31-01:000125"),
    ]
    messages = [
        Message(i, orjson.dumps(e), 1.0 + i, e["tps"].encode()) for i, e in enumerate(events)
    ]
    messages.append(Message(3, b"not json", 4.0, b"3171010001003"))
    return processor.process("t", 0, messages)


def test_a_decided_batch_holds_named_rows_that_match_their_columns():
    batch = decided_batch()
    assert batch.current and batch.decisions and batch.rejections
    for rows, record in (
        (batch.current, CurrentRow),
        (batch.decisions, DecisionRow),
        (batch.rejections, RejectionRow),
    ):
        assert all(type(row) is record for row in rows)
    applied = {row.tps for row in batch.decisions if row.decision == "applied"}
    assert applied == {row.tps for row in batch.current}
    assert {row.decision for row in batch.decisions} >= {"applied", "rejected"}
    # The totals' columns are built in bulk; read back as rows they are TotalsRow's fields, in
    # order.
    for values in batch.totals.as_rows():
        row = TotalsRow(*values)
        assert row.level in ("national", "province", "regency", "tps")
        assert isinstance(row.delta_choices, list) and isinstance(row.delta_votes, list)
        assert len(row.delta_choices) == len(row.delta_votes)
        assert row.level == "tps" or not row.delta_choices
