"""A worker's partition leases: taken at assignment before any state is read, released at a
revocation once every write has returned (docs/exactly-once.md, "lease fencing").

Every insert is fenced by the lease of its rows' partition (`streams.clickhouse.sink`). Taking a
lease refuses a previous owner's writes from then on; a lease its owner did not release (a crash, a
stall past the session timeout) is waited out: an insert of theirs that passed its check before may
still land, and the server ends every insert at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable

from streams.clickhouse.sink import ClickHouseSink

log = logging.getLogger("tally.worker")
RELEASE_WAIT_S = (
    5.0  # a release not done in this is skipped: the next owner waits, which is only slower
)


class LayoutChanged(Exception):
    """The topic's partition count is not the one its tallies were placed and decided on."""


class Leases:
    """partition -> the owner token this worker writes under."""

    def __init__(self, sink: ClickHouseSink, worker: str) -> None:
        self.sink = sink
        self.worker = worker
        self.held: dict[int, str] = {}
        self.assignments = itertools.count(1)

    def next_token(self) -> str:
        """The owner name of one assignment: the worker and the assignment's number."""
        return f"{self.worker}#{next(self.assignments)}"

    async def take(self, topic: str, partitions: Iterable[int], token: str) -> float:
        """Take each partition's lease; return the seconds waited for unreleased owners' inserts."""
        unreleased: dict[int, str] = {}
        for partition in sorted(partitions):
            before = await asyncio.to_thread(self.sink.acquire_lease, topic, partition, token)
            self.held[partition] = token
            if self.sink.unreleased(before, token):
                unreleased[partition] = before
        if not unreleased:
            return 0.0
        waited = await asyncio.to_thread(self.sink.wait_out, set(unreleased.values()))
        log.warning(
            "partitions %s taken over from %s without a release: waited %.1f s (at most %.0f) for "
            "their "
            "inserts in flight to land or end before reading state",
            sorted(unreleased),
            ", ".join(sorted(set(unreleased.values()))),
            waited,
            self.sink.takeover_wait_s,
        )
        return waited

    async def release(self, topic: str, partitions: Iterable[int]) -> set[int]:
        """Hand on the leases of `partitions` (called once every write has returned), so the next
        owner need not wait out our inserts; return the partitions handed on."""
        handed = {p: self.held[p] for p in partitions if p in self.held}
        # not released: the next owner waits, which is only slower
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.to_thread(self.sink.release_leases, topic, handed), RELEASE_WAIT_S
            )
        for partition in handed:
            self.held.pop(partition, None)
        return set(handed)

    async def check_layout(self, topic: str, count: int) -> int:
        """Homes are computed with the topic's partition count: counting on with another count than
        the one the night began with would give TPS new homes without their state, and count them
        again."""
        recorded = await asyncio.to_thread(self.sink.record_layout, topic, count)
        if recorded != count:
            raise LayoutChanged(
                f"{topic} has {count} partitions, but its tallies were placed and decided on "
                f"{recorded}: a TPS's home "
                "partition depends on the count, so counting on would decide TPS without their "
                "state. Restore the "
                f"topic's {recorded} partitions (or count this night into a new database)."
            )
        return count
