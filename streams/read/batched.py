"""Questions asked at once, answered together: while one statement is in flight, the questions
that arrive wait for the next, which answers all of them. A reader's TPS page then waits for at
most the statements already in flight, never for one statement per reader ahead of it: on the
embedded server a statement's fixed cost (~5 ms through HTTP) dwarfs the few granules a TPS reads,
so 30 pages cost about what one does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

MAX_BATCH = 64  # questions a statement: its IN list, and a bound on what one failure fails
IN_FLIGHT = 1  # statements at once: one runs while the next gathers


class Batcher(Generic[K, V]):
    """`get(key)` answers from `await fetch(keys)`, with every key asked while earlier fetches ran
    (at most `max_batch` a fetch, `in_flight` fetches at once). A key absent from the fetch's answer
    is None; a fetch that fails fails each of its keys' readers with its error."""

    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        max_batch: int = MAX_BATCH,
        in_flight: int = IN_FLIGHT,
    ) -> None:
        self.fetch, self.max_batch, self.in_flight = fetch, max_batch, in_flight
        self.waiting: dict[K, list[asyncio.Future]] = {}  # a key asked twice is fetched once
        self.running: set[asyncio.Task] = set()

    async def get(self, key: K) -> V | None:
        answer = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key, []).append(answer)
        self._start()
        return await answer

    def _start(self) -> None:
        while self.waiting and len(self.running) < self.in_flight:
            keys = list(islice(self.waiting, self.max_batch))  # the longest waiting first
            task = asyncio.create_task(self._run({k: self.waiting.pop(k) for k in keys}))
            self.running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.running.discard(task)
        self._start()

    async def _run(self, readers: dict[K, list[asyncio.Future]]) -> None:
        try:
            found = await self.fetch(list(readers))
        except Exception as exc:  # noqa: BLE001 - each reader gets the error, not the loop
            for answers in readers.values():
                for answer in answers:
                    if not answer.done():  # a reader that went away
                        answer.set_exception(exc)
            return
        for key, answers in readers.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(found.get(key))
