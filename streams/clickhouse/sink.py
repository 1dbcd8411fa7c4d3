"""Stage 5, the ClickHouse sink: one batch in, its rows written (or refused by the fence), or
retried.

The contract (after Quix Streams and the ClickHouse Kafka Connect sink): the caller commits Kafka
offsets only after `write_all` returned. One fetch's batches (several partitions) go in one insert
per table, and every insert is
  * fenced row by row: `INSERT INTO t SELECT .. FROM input(..) WHERE (src_partition, <its owner>)
    IN <current lease holders>`, one statement, so rows of a partition that moved on are not
    written (the writer learns so from the row count, or, where the server adds rows to the
    count (UNCOUNTED), from the leases once the write ends);
  * idempotent on retry: it carries the token `<table>:<topic>:<partition>:<first>-<last>,..`,
    and every target has non_replicated_deduplication_window, so the retry of a timed-out insert
    is dropped.
  * bounded in time by the server: `max_execution_time` = the deadline, so that the lease check,
    evaluated when a server starts the insert, and the rows, which land when it ends, are never
    more than the deadline (plus the server's HTTP receive timeout, while the body arrives) apart.
    A worker that takes over a lease its owner did not release waits, before it reads the
    partition's state, while an insert of the old owner still runs, that bound at most
    (`acquire_lease`, `wait_out`): whatever the stalled owner had in flight has landed by then,
    and is in that state, or was ended by the server and never lands. A worker that hands a
    partition on cleanly releases its lease (`release_leases`), so the next owner need not wait.
    docs/exactly-once.md.
Order: region_totals (deltas plus each TPS's revision marker, and the provinces' and the nation's
totals rolled up from the regencies' by the same statement: one atomic part), tally_decisions,
tally_rejections, tally_forwards, then tally_current. A crash between the first and the last
leaves totals ahead of tally_current; the markers let the replay apply those revisions without
moving totals twice.
clickhouse-connect is synchronous: the worker calls `write` in a thread, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TypeVar

import orjson
from clickhouse_connect.driver.client import Client

from streams.core.aggregate import ROLLED_UP, SENT_LEVEL, columns_of
from streams.core.batch import Batch
from streams.core.regions import NATIONAL, PREFIX_LENGTH
from streams.core.revisions import Applied
from streams.core.rows import CurrentRow, DecisionRow, ForwardRow, RejectionRow, TotalsRow
from streams.core.rows import columns as record_columns

log = logging.getLogger("tally.sink")
REMIND_S = 30.0  # while ClickHouse is away, a reminder at most this often
# The server's limit on the wait for each piece of a request body (ClickHouse's
# http_receive_timeout, set for tally's users in deploy/clickhouse/users.d/tally.xml): an insert
# whose client stalls while sending is ended by the server after at most this long without bytes.
RECEIVE_TIMEOUT_S = 10.0
TAKEOVER_MARGIN_S = 5.0  # for the end of an insert after its last time check: the part's commit
RELEASED = ""  # the owner of a released lease: no writer is ever called that

Key = tuple[str, str]  # (ballot, tps)
T = TypeVar("T")


@dataclass(frozen=True)
class Table:
    """A target table and the columns the sink writes, in row order; `select` and `expand`, if
    given, make the rows stored from the rows sent (the select list and an ARRAY JOIN clause)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    select: str = ""
    expand: str = ""

    @classmethod
    def of(cls, name: str, row: type, *constants: tuple[str, str]) -> Table:
        """The table of the core's record `row` (`streams.core.rows`), then `constants`: columns of
        one value an insert."""
        return cls(name, record_columns(row) + constants)

    @property
    def names(self) -> str:
        return ", ".join(name for name, _ in self.columns)

    @property
    def has_partition(self) -> bool:
        """Rows carry `src_partition`; for tables without it the sink appends one to fence by."""
        return any(name == "src_partition" for name, _ in self.columns)

    @property
    def structure(self) -> str:
        return ", ".join(f"{name} {kind}" for name, kind in self.columns)


def _rolled_up(table: Table) -> Table:
    """region_totals as the insert makes it: every regency row sent is also written at its province
    and the nation (aggregate.ROLLED_UP; `aggregate.rolled_up` is the reference), in the same
    statement and so the same part as the change rows that moved it. Same-key rows of the part
    are summed as it is written (SummingMergeTree, optimize_on_insert) or at a merge."""
    region = (
        f"multiIf(up = 'province', substring(region, 1, {PREFIX_LENGTH['province']}), "
        f"up = 'national', '{NATIONAL}', region)"
    )
    made = {"level": "up", "region": region}
    select = ", ".join(made.get(name, name) for name, _ in table.columns)
    levels = ", ".join(f"'{level}'" for level in (SENT_LEVEL, *ROLLED_UP))
    expand = f"ARRAY JOIN if(level = '{SENT_LEVEL}', [{levels}], [level]) AS up"
    return Table(table.name, table.columns, select, expand)


# the broker's incarnation: the same for a whole insert, added by the sink
EPOCH = ("src_epoch", "UInt32")
TOTALS = _rolled_up(Table.of("region_totals", TotalsRow))
DECISIONS = Table.of("tally_decisions", DecisionRow, EPOCH)
REJECTIONS = Table.of("tally_rejections", RejectionRow, EPOCH)
FORWARDS = Table.of("tally_forwards", ForwardRow, EPOCH)
CURRENT = Table.of("tally_current", CurrentRow)
# Tables whose rows written are not the rows sent: region_totals adds the levels it rolls up to,
# and the others feed the page table's views (014_tps_pages_table.sql), whose rows the server
# counts among those written. Fewer rows written than sent no longer tells that a fence dropped
# some, so whether a write held every partition is asked once it ends.
UNCOUNTED = frozenset({TOTALS.name, DECISIONS.name, FORWARDS.name, CURRENT.name})


class Fenced(Exception):
    """This writer no longer holds the partition's lease: another worker owns it now."""


def joined(parts: Sequence[list[list]]) -> list[list]:
    """The columns of several batches as one insert's."""
    return (
        parts[0]
        if len(parts) == 1
        else [list(chain.from_iterable(column)) for column in zip(*parts, strict=True)]
    )


def json_columns(columns: list[list]) -> bytes:
    """An insert body in JSONCompactColumns: one orjson call for the whole batch, and ClickHouse
    parses it in ~70% of the time of the same rows as JSONCompactEachRow."""
    return orjson.dumps(columns)


def _holders(topic: str) -> str:
    """(partition, owner) of every partition of `topic`: the latest lease wins. The fence and `held`
    must agree on it, so both use this one query."""
    return (
        "SELECT partition, argMax(owner, generation) FROM partition_leases WHERE topic = "
        f"{_literal(topic)} GROUP BY partition"
    )


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseSink:
    def __init__(
        self,
        client: Client,
        retry_max_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        deadline_s: float = 15.0,
        receive_timeout_s: float = RECEIVE_TIMEOUT_S,
        cluster: str | None = None,
    ) -> None:
        self.client = client
        # On a cluster (replicas of one shard, clickhouse.schema): every write waits for a quorum of
        # replicas, and every read this sink decides by (leases, the fence, state) sees every quorum
        # write, or fails and is retried, never answers from a replica that lags.
        self.writes: dict[str, object] = {"insert_quorum": "auto"} if cluster else {}
        self.reads: dict[str, object] = {"select_sequential_consistency": 1} if cluster else {}
        # Where the statements running now are listed: every replica's, on a cluster.
        self.processes = (
            f"clusterAllReplicas({_literal(cluster)}, system.processes)"
            if cluster
            else "system.processes"
        )
        self.deadline_s = deadline_s
        # How long an insert that passed its lease check may still land: the server's deadline, the
        # wait for a stalled body, and the commit.
        self.takeover_wait_s = deadline_s + receive_timeout_s + TAKEOVER_MARGIN_S
        # Until then an insert that failed here may still be running on the server (its client timed
        # out, not the statement): this writer must not release its leases before
        # (`release_leases`).
        self.unsure_until = 0.0
        self.retry_max_s = retry_max_s
        self.sleep = sleep
        self.written = {
            "batches": 0,
            "current": 0,
            "totals": 0,
            "decisions": 0,
            "rejections": 0,
            "forwards": 0,
            "fenced": 0,
        }
        # One HTTP session, used from the batch thread and the rebalance callbacks: one call at a
        # time.
        self._lock = threading.Lock()
        self.up = True  # ClickHouse took the last statement
        self.down_since: float | None = None  # monotonic time of the first failure of an outage
        self.reminded = 0.0
        self.retries = 0
        self.seconds = 0.0  # duration of the last statement that ClickHouse took
        self.insert_seconds: dict[
            str, float
        ] = {}  # table -> duration of its insert in the last write_all
        self.epoch = 0  # the broker's incarnation of the topic (schemas/clickhouse/007_epochs.sql)

    def call(self, what: str, read: Callable[[Client], T]) -> T:
        """Run a read against ClickHouse under the sink's lock, retrying while ClickHouse is
        away."""
        return self._retry(what, lambda: read(self.client))

    # -- leases
    # ---------------------------------------------------------------------------------------
    def acquire_lease(self, topic: str, partition: int, owner: str) -> str:
        """Take the partition's lease: one statement, so the generation is one higher than any
        before. Returns the owner before this one: RELEASED if it handed the partition on (or there
        was none), else a writer that may still have an insert in flight, to be waited out
        (`wait_out`) before the partition's state is read."""
        params = {"topic": topic, "partition": partition, "owner": owner}
        self._retry(
            "partition_leases",
            lambda: self.client.command(
                "INSERT INTO partition_leases (topic, partition, generation, owner) "
                "SELECT {topic:String}, {partition:UInt16}, "
                "(SELECT max(generation) FROM partition_leases "
                "WHERE topic = {topic:String} AND partition = {partition:UInt16}) + 1, "
                "{owner:String}",
                parameters=params,
                settings={**self.writes, **self.reads},
            ),
        )
        before = self.call(
            "partition_leases",
            lambda c: (
                c.query(
                    "SELECT argMax(owner, generation) FROM partition_leases WHERE topic = "
                    "{topic:String} "
                    "AND partition = {partition:UInt16} AND generation < (SELECT max(generation) "
                    "FROM partition_leases "
                    "WHERE topic = {topic:String} AND partition = {partition:UInt16} AND owner = "
                    "{owner:String})",
                    parameters=params,
                    settings=self.reads,
                ).result_rows
            ),
        )
        return before[0][0] if before else RELEASED

    @staticmethod
    def unreleased(before: str, owner: str) -> bool:
        """Whether a lease taken from `before` was not handed on, so its inserts must be waited
        out."""
        return before not in (RELEASED, owner)

    def wait_out(self, owners: Collection[str], poll_s: float = 0.2) -> float:
        """After taking leases from `owners` (unreleased), wait until none of their inserts runs on
        the server, or `takeover_wait_s` at most; returns the seconds waited.

        Why it may end early: a fenced insert names its writer in its text (the fence's owner
        literal), and a server lists a statement in system.processes from before it evaluates
        anything in it. So an insert of theirs not listed now has either ended (landed or not,
        before the state is read) or has not started, and will meet our lease at its start. A poll
        that fails waits the bound."""
        started = time.monotonic()
        if not owners:
            return 0.0
        names = " OR ".join(f"position(query, {_literal(_literal(o))}) > 0" for o in sorted(owners))
        sql = f"SELECT count() FROM {self.processes} WHERE query_kind = 'Insert' AND ({names})"
        while (waited := time.monotonic() - started) < self.takeover_wait_s:
            try:
                with self._lock:
                    running = int(self.client.command(sql))
            except Exception:  # noqa: BLE001 - cannot tell: wait the whole bound
                running = 1
            if not running:
                return waited
            self.sleep(min(poll_s, self.takeover_wait_s - waited))
        return time.monotonic() - started

    def release_leases(self, topic: str, owners: Mapping[int, str]) -> set[int]:
        """Hand partitions on: a release row above each lease still held by its owner here, in one
        statement, so the next owner reads their state without waiting. Only once every write of
        this writer has returned, and none that failed may still run on the server (else: nothing
        released, the next owner waits)."""
        if not owners or time.monotonic() < self.unsure_until:
            return set()
        held = self.held(topic, owners)
        if not held:
            return set()
        partitions = ", ".join(str(p) for p in sorted(held))
        names = ", ".join(_literal(owners[p]) for p in sorted(held))
        self._retry(
            "partition_leases",
            lambda: self.client.command(
                "INSERT INTO partition_leases (topic, partition, generation, owner) "
                f"SELECT {_literal(topic)}, partition, max(generation) + 1, {_literal(RELEASED)} "
                "FROM partition_leases "
                f"WHERE topic = {_literal(topic)} AND partition IN ({partitions}) GROUP BY "
                "partition "
                f"HAVING argMax(owner, generation) = transform(partition, [{partitions}], "
                f"[{names}], '')",
                settings={**self.writes, **self.reads},
            ),
        )
        return held

    def _fence(self, topic: str, owners: Mapping[int, str]) -> str:
        """A row's `src_partition` must still be leased to the writer that decided it."""
        partitions = ", ".join(str(int(p)) for p in owners)
        names = ", ".join(_literal(o) for o in owners.values())
        return (
            f"(src_partition, transform(src_partition, [{partitions}], [{names}], '')) IN "
            f"({_holders(topic)})"
        )

    def held(self, topic: str, owners: Mapping[int, str]) -> set[int]:
        """The partitions among `owners` still leased to their owner."""
        rows = self.call(
            "partition_leases",
            lambda c: c.query(_holders(topic), settings=self.reads).result_rows,
        )
        return {int(p) for p, owner in rows if owners.get(int(p)) == owner}

    # -- writes
    # ---------------------------------------------------------------------------------------
    def write(self, batch: Batch, owner: str) -> None:
        """Write one partition's batch (see `write_all`)."""
        self.write_all([batch], {batch.partition: owner})

    def write_all(self, batches: Sequence[Batch], owners: Mapping[int, str]) -> None:
        """Write the batches of several partitions of one topic with one insert per table (each
        insert has a fixed cost, about 11 ms on the embedded server), every row fenced by its own
        partition's lease. Raise Fenced if this writer lost any of them: the caller must not ack,
        and the rows of the partitions it still held are replayed exactly, like after a crash
        between two inserts."""
        if not batches:
            return
        topic = batches[0].topic
        owners = {b.partition: owners[b.partition] for b in batches}
        fence = self._fence(topic, owners)
        token = ",".join(f"{b.partition}:{b.first_offset}-{b.last_offset}" for b in batches)
        if self.epoch:  # offsets of another incarnation of the broker's topic: other tokens
            token = f"{token}@{self.epoch}"
        self.insert_seconds = {}
        epoch = self.epoch
        written: dict[str, int] = {}
        for table, columns in (
            (TOTALS, joined([b.totals.as_columns(b.partition) for b in batches])),
            (
                DECISIONS,
                joined([columns_of(b.decisions, len(DecisionRow._fields), epoch) for b in batches]),
            ),
            (
                REJECTIONS,
                joined(
                    [columns_of(b.rejections, len(RejectionRow._fields), epoch) for b in batches]
                ),
            ),
            (
                FORWARDS,
                joined([columns_of(b.forwards, len(ForwardRow._fields), epoch) for b in batches]),
            ),
            (CURRENT, joined([columns_of(b.current, len(CurrentRow._fields)) for b in batches])),
        ):
            rows = written[table.name] = len(columns[0])
            if (
                rows
                and self._insert(table, columns, f"{table.name}:{topic}:{token}", fence) < rows
                and table.name not in UNCOUNTED
            ):
                # Fenced, or still ours: the retry of an insert that landed, dropped by its token.
                self._still_held(topic, owners, token)
        if UNCOUNTED.intersection(name for name, rows in written.items() if rows):
            self._still_held(topic, owners, token)
        self.written["batches"] += 1
        tables = {
            "current": CURRENT,
            "totals": TOTALS,
            "decisions": DECISIONS,
            "rejections": REJECTIONS,
            "forwards": FORWARDS,
        }
        for key, table in tables.items():
            self.written[key] += written[table.name]

    def _still_held(self, topic: str, owners: Mapping[int, str], token: str) -> None:
        """Raise Fenced if any partition of the write is leased to another worker now."""
        lost = set(owners) - self.held(topic, owners)
        if lost:
            self.written["fenced"] += 1
            raise Fenced(
                f"partitions {sorted(lost)} of {topic} are leased to another worker; "
                f"offsets {token} left to their owners"
            )

    def _insert(self, table: Table, columns: list[list], token: str, fence: str) -> int:
        body = json_columns(columns)
        structure = (
            table.structure if table.has_partition else f"{table.structure}, src_partition UInt16"
        )
        statement = (
            f"{table.name} ({table.names}) SELECT {table.select or table.names} "
            f"FROM input({_literal(structure)}) {table.expand} WHERE {fence}"
        )
        settings = {
            "insert_deduplication_token": token,
            "max_execution_time": self.deadline_s,
            **self.writes,
            **self.reads,
        }

        def attempt() -> object:
            started = time.monotonic()
            try:
                return self.client.raw_insert(
                    statement, None, body, settings=settings, fmt="JSONCompactColumns"
                )
            except Exception:
                self.unsure_until = max(self.unsure_until, started + self.takeover_wait_s)
                raise

        summary = self._retry(table.name, attempt)
        self.insert_seconds[table.name] = self.seconds
        return int(summary.written_rows)

    def _retry(self, what: str, operation: Callable[[], T]) -> T:
        """Run `operation` until ClickHouse takes it. While it is away: one warning when it goes, a
        reminder at most every REMIND_S, and one line when it answers again (how long, how many
        retries)."""
        delay = 0.1
        while True:
            try:
                with self._lock:
                    started = time.monotonic()
                    result = operation()
                    self.seconds = time.monotonic() - started
            except (
                Exception
            ) as exc:  # ClickHouse away or refusing: retry the same statement, same token
                self._failed(what, exc, delay)
                self.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            if self.down_since is not None:
                away = time.monotonic() - self.down_since
                log.warning(
                    "ClickHouse answers again after %.1f s and %d retries; writing on",
                    away,
                    self.retries,
                )
                self.down_since, self.retries = None, 0
            self.up = True
            return result

    def _failed(self, what: str, exc: Exception, delay: float) -> None:
        now = time.monotonic()
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        self.up = False
        self.retries += 1
        if self.down_since is None:
            self.down_since = self.reminded = now
            log.warning(
                "write to %s failed (%s); retrying in %.1fs and on; no offset is committed "
                "meanwhile",
                what,
                reason,
                delay,
            )
        elif now - self.reminded >= REMIND_S:
            self.reminded = now
            log.warning(
                "ClickHouse still refuses after %.0f s and %d retries (%s: %s); no offset is "
                "committed meanwhile",
                now - self.down_since,
                self.retries,
                what,
                reason,
            )

    # -- the topic's layout, partitions that wait
    # ---------------------------------------------------------
    def record_layout(self, topic: str, partitions: int) -> int:
        """The partition count the topic's homes were first computed with (recorded now if none
        was)."""

        def recorded(c: Client) -> int | None:
            rows = c.query(
                "SELECT argMin(partitions, recorded_at), count() FROM topic_layout FINAL WHERE "
                "topic = {t:String}",
                parameters={"t": topic},
                settings=self.reads,
            ).result_rows
            return int(rows[0][0]) if rows and rows[0][1] else None

        first = self.call("topic layout", recorded)
        if first is not None:
            return first
        self.call(
            "topic layout",
            lambda c: c.insert(
                "topic_layout",
                [(topic, partitions)],
                column_names=["topic", "partitions"],
                settings=self.writes,
            ),
        )
        return self.call("topic layout", recorded) or partitions

    def note_stalls(self, rows: Sequence[tuple[str, int, int, str, str]]) -> None:
        """(topic, partition, offset it waits at or -1 once it reads again, reason, worker) rows."""
        self.call(
            "partition stalls",
            lambda c: c.insert(
                "partition_stalls",
                list(rows),
                column_names=["topic", "partition", "offset", "reason", "worker"],
                settings=self.writes,
            ),
        )

    # -- state
    # ----------------------------------------------------------------------------------------
    def load_partition(
        self, partition: int
    ) -> tuple[Iterator[tuple[Key, Applied]], dict[Key, int]]:
        """The whole applied state of one partition (its TPS keys hash there; tally_current records
        src_partition), and every key whose totals are ahead of tally_current (a crash between the
        two writes): read once when the partition is assigned, so batches need no state queries.
        The state comes as (key, applied) pairs, a page at a time: a legislative row carries ~150
        counts, and a partition can hold half a million keys."""
        ahead = self.call(
            "load markers",
            lambda c: (
                c.query(
                    "SELECT m.ballot, m.tps, m.revision FROM ("
                    "  SELECT ballot, region AS tps, sum(revision) AS revision FROM region_totals "
                    "  WHERE level = 'tps' GROUP BY ballot, region) AS m "
                    "LEFT JOIN (SELECT ballot, tps, max(revision) AS revision FROM tally_current "
                    "GROUP BY ballot, tps) AS c "
                    "USING (ballot, tps) WHERE m.revision > c.revision",
                    settings={"join_use_nulls": 0, **self.reads},
                ).result_rows
            ),
        )
        return self._applied(partition), {(b, t): int(r) for b, t, r in ahead}

    def _applied(self, partition: int, page: int = 5000) -> Iterator[tuple[Key, Applied]]:
        after = ("", "")
        while True:
            rows = self.call(
                "load partition",
                lambda c, after=after: (
                    c.query(
                        "SELECT ballot, tps, revision, event_id, event_ids, digest, votes, "
                        "invalid, voters "
                        "FROM tally_current FINAL WHERE src_partition = {p:UInt16} AND (tps, "
                        "ballot) > ({t:String}, {b:String}) "
                        "ORDER BY tps, ballot LIMIT {n:UInt32}",
                        parameters={"p": partition, "b": after[0], "t": after[1], "n": page},
                        settings=self.reads,
                    ).result_rows
                ),
            )
            # Over the choices it kept (not 0), not yet shared: the processor puts each over its
            # contest's (`Processor.preload`).
            for b, t, r, e, ids, d, v, i, n in rows:
                yield (b, t), Applied(t, b, r, e, d, tuple(v), tuple(v.values()), i, n, tuple(ids))
            if len(rows) < page:
                return
            after = (rows[-1][0], rows[-1][1])
