"""Stage 5, the ClickHouse sink: one batch in, its rows written, or an exception out.

The contract (after Quix Streams and the ClickHouse Kafka Connect sink): a batch is written whole,
in a fixed order, with insert tokens derived from its source offsets, and the caller commits
Kafka offsets only after `write` returned. Writing the same batch again is harmless:
  1. region_totals, tally_decisions, tally_rejections: each insert carries the token
     `<table>:<topic>:<partition>:<first>-<last>`; ClickHouse drops a repeat
     (non_replicated_deduplication_window on every target table).
  2. tally_current last: a ReplacingMergeTree keyed by (ballot, tps) with the revision as version,
     so rewriting a row is a no-op. Its rows are the state the next decisions read, so state
     never runs ahead of the totals written before it.
clickhouse-connect is synchronous: the worker calls `write` in a thread, never on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from streams.aggregate import TotalsDelta
from streams.revisions import Applied

log = logging.getLogger("tally.sink")

CURRENT_COLUMNS = [
    "ballot",
    "tps",
    "revision",
    "event_id",
    "event_ids",
    "digest",
    "gateway",
    "submitted_at",
    "votes",
    "invalid",
    "voters",
    "registered",
    "flags",
    "src_partition",
    "src_offset",
]
TOTALS_COLUMNS = ["ballot", "level", "region", "choice", "votes", "tps_reported", "invalid", "voters"]
DECISION_COLUMNS = [
    "event_id",
    "tps",
    "ballot",
    "revision",
    "decision",
    "reasons",
    "flags",
    "gateway",
    "submitted_at",
    "src_partition",
    "src_offset",
]
REJECTION_COLUMNS = ["event_id", "tps", "ballot", "gateway", "reasons", "findings", "payload", "src_partition", "src_offset"]


@dataclass
class Batch:
    """The rows decided from one run of consecutive offsets of one topic partition."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    totals: TotalsDelta = field(default_factory=TotalsDelta)
    current: list[tuple] = field(default_factory=list)
    decisions: list[tuple] = field(default_factory=list)
    rejections: list[tuple] = field(default_factory=list)

    def token(self, table: str) -> str:
        return f"{table}:{self.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"


class ClickHouseSink:
    def __init__(self, client: Client, retry_max_s: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.retry_max_s = retry_max_s
        self.sleep = sleep
        self.written = {"batches": 0, "current": 0, "totals": 0, "decisions": 0, "rejections": 0}

    def write(self, batch: Batch) -> None:
        totals = batch.totals.as_rows()
        self._insert("region_totals", totals, TOTALS_COLUMNS, batch.token("region_totals"))
        self._insert("tally_decisions", batch.decisions, DECISION_COLUMNS, batch.token("tally_decisions"))
        self._insert("tally_rejections", batch.rejections, REJECTION_COLUMNS, batch.token("tally_rejections"))
        self._insert("tally_current", batch.current, CURRENT_COLUMNS, None)
        self.written["batches"] += 1
        self.written["current"] += len(batch.current)
        self.written["totals"] += len(totals)
        self.written["decisions"] += len(batch.decisions)
        self.written["rejections"] += len(batch.rejections)

    def _insert(self, table: str, rows: list[tuple], columns: list[str], token: str | None) -> None:
        if not rows:
            return
        settings = {"insert_deduplication_token": token} if token else {}
        delay = 0.1
        while True:
            try:
                self.client.insert(table, rows, column_names=columns, settings=settings)
                return
            except Exception as exc:  # ClickHouse away or refusing: retry the same rows, same token
                log.warning(
                    "insert into %s failed (%s: %s); retrying in %.1fs; no offset is committed meanwhile",
                    table,
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200],
                    delay,
                )
                self.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def load_applied(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Applied]:
        """The applied state of these (ballot, tps) keys, as ClickHouse holds it now."""
        keys = list(keys)
        found: dict[tuple[str, str], Applied] = {}
        for start in range(0, len(keys), 5000):
            chunk = keys[start : start + 5000]
            result = self.client.query(
                "SELECT ballot, tps, revision, event_id, event_ids, digest, votes, invalid, voters "
                "FROM tally_current FINAL WHERE (ballot, tps) IN %(keys)s",
                parameters={"keys": chunk},
            )
            for ballot, tps, revision, event_id, event_ids, digest, votes, invalid, voters in result.result_rows:
                found[(ballot, tps)] = Applied(
                    tps, ballot, revision, event_id, digest, dict(votes), invalid, voters, tuple(event_ids)
                )
        return found
