"""The rows a batch writes, named once: each table's columns, in order, with their ClickHouse types.

The pipeline builds these records; the sink's tables (`streams.clickhouse.sink`) are made from them,
so a column added here is written without a second list to keep in step. Rows stay tuples (a
NamedTuple is one), because the sink turns a batch into columns with one `zip`.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple, get_type_hints

String = Annotated[str, "String"]
Strings = Annotated[list[str], "Array(String)"]
OptionalString = Annotated[str | None, "Nullable(String)"]
UInt16 = Annotated[int, "UInt16"]
UInt32 = Annotated[int, "UInt32"]
UInt64 = Annotated[int, "UInt64"]
Int64 = Annotated[int, "Int64"]
Moment = Annotated[float, "DateTime64(3)"]  # seconds since the epoch, as the broker stamped them
Votes = Annotated[dict[str, int], "Map(String, UInt32)"]
# a change's votes moved, as two arrays (schema 016): cheaper for the server to take than a Map
Choices = Annotated[list[str], "Array(String)"]
Moved = Annotated[list[int], "Array(Int32)"]


class CurrentRow(NamedTuple):
    """tally_current: the revision of a (ballot, TPS) that counts now."""

    ballot: String
    tps: String
    revision: UInt32
    event_id: String
    event_ids: Strings  # every event id this TPS's count has had, so a replayed one is a duplicate
    digest: String
    gateway: String
    submitted_at: String
    votes: Votes
    invalid: UInt32
    voters: UInt32
    registered: UInt32
    flags: Strings
    src_partition: UInt16
    src_offset: UInt64


class DecisionRow(NamedTuple):
    """tally_decisions: what became of one record (applied, duplicate, stale, rejected), and why."""

    event_id: String
    tps: String
    ballot: String
    revision: UInt32
    decision: String
    reasons: Strings
    flags: Strings
    gateway: String
    key_id: String
    submitted_at: String
    src_partition: UInt16
    src_offset: UInt64
    received_at: Moment
    kafka_key: String
    forwarded_from: String
    judged_at: Moment
    findings: Strings  # a rejected record's findings, 'CODE: field path: detail' (else empty)


class RejectionRow(NamedTuple):
    """tally_rejections: a refused record as it came, with its reason codes (also sent to the
    topic)."""

    event_id: OptionalString
    tps: OptionalString
    ballot: OptionalString
    gateway: OptionalString
    reasons: Strings
    findings: Strings
    payload: String
    src_partition: UInt16
    src_offset: UInt64
    received_at: Moment
    kafka_key: String


class ForwardRow(NamedTuple):
    """tally_forwards: a record read off its home partition and sent home."""

    kafka_key: String
    src_partition: UInt16
    src_offset: UInt64
    received_at: Moment
    home_partition: UInt16


class TotalsRow(NamedTuple):
    """region_totals: a region's summary, a vote delta, or a TPS's change (see
    `streams.core.aggregate`, which builds these as columns, in this order, for a batch's tens of
    thousands of rows)."""

    ballot: String
    level: String
    region: String
    choice: String
    votes: Int64
    tps_reported: Int64
    invalid: Int64
    voters: Int64
    revision: Int64
    delta_choices: Choices
    delta_votes: Moved
    event_id: String
    gateway: String
    event: String
    source: String
    registered: Int64


def columns(record: type[NamedTuple]) -> tuple[tuple[str, str], ...]:
    """(name, ClickHouse type) of each field of `record`, in order."""
    hints = get_type_hints(record, include_extras=True)
    return tuple((name, hints[name].__metadata__[0]) for name in record._fields)
