"""The API's answers kept and refreshed in the background, bounded in bytes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import orjson

CACHE_BYTES = 256 << 20  # of answers the API keeps; an answer larger than this is kept alone
REFRESHES_AT_ONCE = 2  # of kept answers, while their old answer is served
# (when it is stale, the answer): held in the one form it is read as, the dict of a view that
# answers are made from or the JSON of an answer sent as it is (encoding it again for every reader
# was the API's largest cost of its own), so that the bound counts what is held
Entry = tuple[float, dict | bytes]


class ResponseCache:
    """Answers kept `ttl` seconds; after that the old answer is served while one refresh runs.

    Totals move once per worker batch; a reader polling every second or two sees them about `ttl`
    later, and 50 readers of the same view cost one set of queries, not 50, and never wait behind
    other readers' queries once the view has been computed.

    A view that is costly to build is kept longer: at least `cost_factor` times what its last build
    took, so that no view keeps ClickHouse busy more than 1/cost_factor of the time, whatever the
    readers do (the seats of 2,325 DPRD kab/kota dapils take ~4 s at national scale, and ClickHouse
    is shared with the workers' inserts)."""

    def __init__(
        self,
        ttl: float,
        cost_factor: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = CACHE_BYTES,
        size_of: Callable[[dict], int] | None = None,
        refreshes_at_once: int = REFRESHES_AT_ONCE,
    ) -> None:
        self.ttl = ttl
        self.cost_factor = cost_factor
        self.clock = clock  # a parameter so that the policy can be tested without a sleeping thread
        self.entries: dict[str, Entry] = {}
        self.refreshing: dict[str, asyncio.Task] = {}
        # Bounded in bytes (of each answer's JSON, or `size_of`), the oldest answers going first:
        # readers choose the keys, so their number and size are theirs to grow, not the server's
        # memory.
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.sizes: dict[str, int] = {}
        self.bytes = 0
        # Refreshes nobody waits for run a few at a time: the views read at once expire at once,
        # and a dozen refreshes together took every handle of the embedded server from the reads
        # a reader waits for (a TPS page never asked before) and from the workers' inserts.
        self.refresh_slots = asyncio.Semaphore(refreshes_at_once)

    async def get(self, key: str, build: Callable[[], dict]) -> dict:
        """The answer to `key`, built by `build` on a thread when it is not kept."""
        return _as_dict(await self._kept(key, lambda: asyncio.to_thread(build), False))

    async def get_json(self, key: str, build: Callable[[], dict]) -> bytes:
        """The answer to `key` as JSON, encoded once a build, not once a reader."""
        return _as_json(await self._kept(key, lambda: asyncio.to_thread(build), True))

    async def get_awaiting(self, key: str, build: Callable[[], Awaitable[dict]]) -> dict:
        """The answer to `key`, awaited from `build` when it is not kept."""
        return _as_dict(await self._kept(key, build, False))

    async def get_awaiting_json(self, key: str, build: Callable[[], Awaitable[dict]]) -> bytes:
        """The answer to `key` as JSON, awaited from `build` when it is not kept."""
        return _as_json(await self._kept(key, build, True))

    async def _kept(
        self, key: str, build: Callable[[], Awaitable[dict]], as_json: bool
    ) -> dict | bytes:
        hit = self.entries.get(key)
        if hit is not None:
            if hit[0] <= self.clock() and key not in self.refreshing:
                self.refreshing[key] = asyncio.create_task(self._refresh(key, build, as_json, True))
            return hit[1]
        task = self.refreshing.get(key) or self.refreshing.setdefault(
            key, asyncio.create_task(self._refresh(key, build, as_json))
        )
        await task
        return self.entries[key][1]

    async def _refresh(
        self,
        key: str,
        build: Callable[[], Awaitable[dict]],
        as_json: bool,
        background: bool = False,
    ) -> None:
        try:
            async with self.refresh_slots if background else contextlib.nullcontext():
                started = self.clock()
                body = await build()
                finished = self.clock()
            encoded = orjson.dumps(body) if as_json or self.size_of is None else b""
            size = len(encoded) if self.size_of is None else self.size_of(body)
            self._forget(key)
            while self.entries and self.bytes + size > self.max_bytes:
                self._forget(next(iter(self.entries)))
            self.entries[key] = (
                finished + max(self.ttl, self.cost_factor * (finished - started)),
                encoded if as_json else body,
            )
            self.sizes[key] = size
            self.bytes += size
        finally:
            self.refreshing.pop(key, None)

    def _forget(self, key: str) -> None:
        self.entries.pop(key, None)
        self.bytes -= self.sizes.pop(key, 0)


def _as_dict(kept: dict | bytes) -> dict:
    """A kept answer as a dict (a key asked for in the other form is decoded, not built again)."""
    return orjson.loads(kept) if isinstance(kept, bytes) else kept


def _as_json(kept: dict | bytes) -> bytes:
    return kept if isinstance(kept, bytes) else orjson.dumps(kept)
