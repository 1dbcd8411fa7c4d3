"""The worker's write queue: a fetch is decided while the one before it is written, never more.

A fetch is decided under `deciding` (a lock); the write it starts waits for the write before it, so
batches land in the order they were decided, one at a time, while the next fetch is decided. A
rebalance takes the lock and waits for every write (`settled`), so no batch straddles one: a batch
fenced by a new lease would otherwise still be acked, and lost. A write that fails stops the
process without a commit (`stop`): a restart replays from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from streams.clickhouse.sink import Fenced

log = logging.getLogger("tally.worker")

EXIT_FENCED = 75  # lost the group membership: the partition's owner replays what was not acked
EXIT_BUG = 70  # anything else unexpected: nothing unwritten is acked either way


class WriteQueue:
    def __init__(self, stop: Callable[[int], object] = os._exit) -> None:
        self.deciding = asyncio.Lock()
        self.writes: list[asyncio.Task] = []  # at most two: the one in ClickHouse and the next
        self.stop = stop  # a parameter so that tests see the exit instead of dying of it

    async def settled(self) -> None:
        """Wait for every write started so far (the caller holds `deciding`, so none starts
        meanwhile)."""
        while self.writes:
            await asyncio.gather(*self.writes, return_exceptions=True)
            self.writes[:] = [w for w in self.writes if not w.done()]

    def start(self, write: Callable[[list[asyncio.Task]], Awaitable[bool]]) -> asyncio.Task:
        """Start `write(before)`, which must await `before` (the writes still queued) first. Called
        with `deciding` held, so the order of starts is the order of decisions."""
        task = asyncio.create_task(self._guarded(write(list(self.writes))))
        self.writes.append(task)
        task.add_done_callback(lambda t: t in self.writes and self.writes.remove(t))
        return task

    async def _guarded(self, writing: Awaitable[bool]) -> bool:
        try:
            return await writing
        except Fenced as exc:
            # Only a worker that lost its group membership (stalled past the session timeout) gets
            # here. Its events must not be acked: stop now; the partition's owner replays them.
            log.critical("fenced: %s; exiting without commit", exc)
            self.stop(EXIT_FENCED)
        except Exception:
            # Never let anything ack events that were not written. Stop hard; a restart replays
            # from the last commit.
            log.critical(
                "unexpected error while writing a batch; exiting without commit", exc_info=True
            )
            self.stop(EXIT_BUG)
        return False
