"""The transparency log in ClickHouse: the appender that turns change rows into leaves and
signed checkpoints, and the reads that build proofs.

Order and exactly-once: leaf i is the i-th change row of region_totals (level tps) in (decided_at,
ballot, tps, revision) order, every ballot and partition together. Change rows are written once, in
the same insert as the totals they move, and never rewritten (docs/time-travel.md), so that order
is a fact of the data: an appender that restarts resumes after its last leaf and makes the same
leaves; one that dies between two inserts writes the same rows again, dropped by their token or
merged as the same row. Nodes are written before the leaves they come from, so whatever the log
holds, the nodes of its leaves are there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client

from streams.clickhouse.client import moment_read
from streams.core import merkle
from streams.core.checkpoint import (
    BallotTotals,
    Checkpoint,
    leaf_bytes,
    public_key_of,
    sign_note,
    verifier_key,
)
from streams.core.moments import moment_text, sql_moment

log = logging.getLogger("tally.log")
CHANGES = (
    "SELECT decided_at, ballot, region, choice, revision, event, source, moved, tps_reported, "
    "invalid, voters "
    "FROM region_totals WHERE level = 'tps'"
)
# After the cursor (decided_at, ballot, tps, revision key), spelt out (chDB 26.9 compares such
# tuples wrongly).
AFTER = (
    " AND (decided_at > {t:DateTime64(6, 'UTC')} OR decided_at = {t:DateTime64(6, 'UTC')} AND "
    "(ballot > {b:String} "
    "OR ballot = {b:String} AND (region > {r:String} OR region = {r:String} AND choice > "
    "{c:String})))"
)
ORDER = " ORDER BY decided_at, ballot, region, choice"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# On a cluster the watermark is another replica's clock than the stamps of inserts on the others: it
# stays this far behind, the replicas' clocks are assumed closer than that (NTP keeps them to ms).
CLUSTER_SKEW_S = 1.0


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass
class LogState:
    size: int = 0
    cursor: tuple[datetime, str, str, str] = (EPOCH, "", "", "")
    frontier: merkle.Frontier = field(default_factory=list)  # (level, hash), levels decreasing
    totals: dict[str, BallotTotals] = field(default_factory=dict)
    checkpointed: int = 0

    def root(self) -> bytes:
        return merkle.frontier_root(self.frontier)


class LogAppender:
    """The one appender of a night's log: `step` appends what became visible since, `checkpoint`
    signs."""

    def __init__(
        self,
        client: Client,
        origin: str,
        seed: bytes,
        page: int = 20_000,
        cluster: str | None = None,
        read_settings: Callable[[], dict] = moment_read,
        settled_only: bool = True,
    ) -> None:
        self.client = client
        self.origin = origin
        self.seed = seed
        self.page = page
        # Where running inserts are listed, and how far the replicas' clocks may be apart (their
        # stamps).
        self.processes = (
            f"clusterAllReplicas('{cluster}', system.processes)" if cluster else "system.processes"
        )
        self.skew_s = CLUSTER_SKEW_S if cluster else 0.0
        self.read_settings = (
            read_settings  # a server has no moment gate: tests pass `dict` to read as on one
        )
        self.settled_only = (
            settled_only  # off only in the test that shows what the watermark is for
        )
        self.state = self.recover()

    def recover(self) -> LogState:
        """The log as ClickHouse holds it: its size and last leaf, the frontier of perfect subtrees,
        the totals of its leaves, the last checkpoint."""
        state = LogState()
        last = self.client.query(
            "SELECT idx, decided_at, ballot, tps, revision FROM log_leaves FINAL ORDER BY idx DESC "
            "LIMIT 1"
        ).result_rows
        if last:
            idx, decided_at, ballot, tps, revision = last[0]
            state.size = idx + 1
            state.cursor = (_utc(decided_at), ballot, tps, f"{revision:010d}")
            wanted, start = [], 0
            for level in range(state.size.bit_length() - 1, -1, -1):
                if state.size >> level & 1:
                    wanted.append((level, start >> level))
                    start += 1 << level
            found = subtree_reader(self.client)(wanted)
            state.frontier = [(lv, found[(lv, i)]) for lv, i in wanted]
            for ballot, votes, reported, invalid, voters in self.client.query(
                "SELECT ballot, sumMap(moved), sum(tps_reported), sum(invalid), sum(voters) FROM "
                "region_totals "
                "WHERE level = 'tps' AND NOT (1" + AFTER + ") GROUP BY ballot",
                parameters=self._cursor_params(state.cursor),
            ).result_rows:
                state.totals.setdefault(ballot, BallotTotals()).add(
                    reported, invalid, voters, votes
                )
        state.checkpointed = int(self.client.command("SELECT max(size) FROM log_checkpoints") or 0)
        return state

    @staticmethod
    def _cursor_params(cursor: tuple[datetime, str, str, str]) -> dict:
        return {"t": sql_moment(cursor[0]), "b": cursor[1], "r": cursor[2], "c": cursor[3]}

    def watermark(self) -> datetime:
        """A moment before which every change that will ever exist has landed: the server's clock,
        or the start of the oldest insert into region_totals still running, if earlier. A change is
        stamped when its insert starts, and a server lists an insert among its processes before it
        stamps anything: an insert stamped before this moment is not listed, so it has ended
        (landed, or failed for good and retried later, stamped anew)."""
        moment = self.client.query(
            # A running insert started `elapsed` seconds before it was listed, so at most that long
            # before now.
            "SELECT least(now64(6), ifNull(minOrNull(now64(6) - "
            "toIntervalMicrosecond(toUInt64(elapsed * 1e6) + 1000)), "
            "now64(6))) "
            f"FROM {self.processes} WHERE query_kind = 'Insert' AND current_database = "
            "currentDatabase() "
            "AND positionCaseInsensitive(query, 'region_totals') > 0"
        ).result_rows[0][0]
        return _utc(moment) - timedelta(seconds=self.skew_s)

    def step(self) -> tuple[int, bool]:
        """Append the next page of changes: (leaves appended, whether that was all there was)."""
        # Only changes stamped before the watermark, read in a statement that starts after it was
        # taken: none stamped before the page's last can land later. On the embedded default the
        # read is a moment read besides, which never runs beside an insert (docs/trust.md, the
        # transparency log).
        settled = " AND decided_at < {w:DateTime64(6, 'UTC')}" if self.settled_only else ""
        params = {**self._cursor_params(self.state.cursor), "n": self.page}
        if self.settled_only:
            params["w"] = sql_moment(self.watermark())
        rows = self.client.query(
            CHANGES + AFTER + settled + ORDER + " LIMIT {n:UInt32}",
            parameters=params,
            settings=self.read_settings(),
        ).result_rows
        if not rows:
            return 0, True
        state = self.state
        first = state.size
        frontier = list(state.frontier)
        nodes, leaves = [], []
        totals = {
            b: BallotTotals(t.tps, t.invalid, t.voters, dict(t.votes))
            for b, t in state.totals.items()
        }
        for row in rows:
            ballot, tps, deltas, reported, invalid, voters = (row[i] for i in (1, 2, 7, 8, 9, 10))
            index = first + len(leaves)
            revision, decided, leaf, h = _leaf(row)
            leaves.append((index, ballot, tps, revision, decided, leaf, h))
            # A subtree of level L completed by leaf `index` covers the 2^L leaves ending there.
            nodes += [
                (level, ((index + 1) >> level) - 1, node)
                for level, node in merkle.push(frontier, h)
            ]
            totals.setdefault(ballot, BallotTotals()).add(reported, invalid, voters, deltas)
        token = f"log:{first}-{first + len(leaves) - 1}"
        self.client.insert(
            "log_nodes",
            nodes,
            column_names=["level", "idx", "hash"],
            settings={"insert_deduplication_token": token},
        )
        self.client.insert(
            "log_leaves",
            leaves,
            column_names=["idx", "ballot", "tps", "revision", "decided_at", "leaf", "leaf_hash"],
            settings={"insert_deduplication_token": token},
        )
        last = rows[-1]
        state.size, state.frontier, state.totals = first + len(leaves), frontier, totals
        state.cursor = (_utc(last[0]), last[1], last[2], last[3])
        return len(leaves), len(rows) < self.page

    def checkpoint(self) -> Checkpoint | None:
        """Sign the log as it stands, if it grew since the last checkpoint (call it only when a
        `step` took everything visible: a checkpoint then covers whole inserts, and its totals are
        the results as of its last leaf's moment)."""
        state = self.state
        if state.size == 0 or state.size == state.checkpointed:
            return None
        checkpoint = Checkpoint(self.origin, state.size, state.root(), state.totals)
        note = sign_note(checkpoint.text(), self.origin, self.seed)
        self.client.insert(
            "log_checkpoints",
            [
                (
                    state.size,
                    checkpoint.root,
                    state.cursor[0],
                    note,
                    verifier_key(self.origin, public_key_of(self.seed)),
                )
            ],
            column_names=["size", "root", "decided_at", "note", "verifier_key"],
        )
        state.checkpointed = state.size
        return checkpoint

    def run(
        self, interval: float, stop: Callable[[], bool], sleep: Callable[[float], None]
    ) -> None:
        """Append and checkpoint every `interval` seconds until `stop()`."""
        while not stop():
            try:
                _, caught_up = self.step()
                if caught_up:
                    made = self.checkpoint()
                    if made is not None:
                        log.info("checkpoint %d %s", made.size, made.root.hex())
            except Exception as exc:  # noqa: BLE001 - ClickHouse away: retry the same rows, same token
                # The state moves only after both inserts landed, so a retry writes the same rows
                # again: dropped by their token, or merged as the same row.
                log.warning(
                    "log append failed (%s: %s); retrying", type(exc).__name__, str(exc)[:200]
                )
                sleep(interval)
                continue
            if caught_up:
                sleep(interval)


def subtree_reader(
    client: Client,
) -> Callable[[list[tuple[int, int]]], dict[tuple[int, int], bytes]]:
    """Fetch perfect subtree hashes (level, idx) from log_nodes in one query."""

    def fetch(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        return {
            (lv, i): bytes(h)
            for lv, i, h in client.query(
                "SELECT level, idx, hash FROM log_nodes FINAL WHERE (level, idx) IN "
                "{w:Array(Tuple(UInt8, UInt64))}",
                parameters={"w": wanted},
            ).result_rows
        }

    return fetch


def proof_nodes(build: Callable[[merkle.SubtreeHash], list[bytes]], fetch) -> list[bytes]:
    """Run a proof builder twice: once to learn which perfect subtrees it needs, then with them
    fetched in one query. A range that is not a perfect subtree is split as RFC 9162 splits it."""

    def perfect(start: int, end: int) -> list[tuple[int, int]]:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            return [(level, start >> level)]
        k = merkle.split(size)
        return perfect(start, start + k) + perfect(start + k, end)

    wanted: list[tuple[int, int]] = []
    build(lambda start, end: wanted.extend(perfect(start, end)) or b"")
    known = fetch(sorted(set(wanted)))

    def subtree(start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            return known[(level, start >> level)]
        k = merkle.split(size)
        return merkle.node_hash(subtree(start, start + k), subtree(start + k, end))

    return build(subtree)


def _leaf(row: tuple) -> tuple[int, datetime, bytes, bytes]:
    """A change row of CHANGES as the log's leaf: (revision, decided at, leaf bytes, leaf hash)."""
    decided_at, _, _, key, step, event, source = row[:7]
    revision = int(key)
    partition, _, offset = source.partition(":")
    leaf = leaf_bytes(
        event.encode(),
        revision,
        revision - step,
        moment_text(_utc(decided_at)),
        int(partition or 0),
        int(offset or 0),
    )
    return revision, _utc(decided_at), leaf, merkle.leaf_hash(leaf)
