"""Questions asked at once are answered together (streams.read.batched): each reader gets its own
answer, a failed read fails only its readers, and a reader that goes away takes nobody with it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from streams.read.batched import Batcher


class Reads:
    """A fetch that records each batch it is given and holds it until `release` is set."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.fail_on = fail_on

    async def __call__(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(keys)
        await asyncio.to_thread(self.release.wait, 5)
        if self.fail_on in keys:
            raise RuntimeError(f"read of {self.fail_on} failed")
        return {k: k.upper() for k in keys if k != "unknown"}


async def asked(batcher: Batcher, keys: list[str]) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(batcher.get(k)) for k in keys]
    await asyncio.sleep(0.05)  # each has asked
    return tasks


def test_questions_asked_while_a_read_runs_wait_for_one_read_of_all_of_them():
    async def night() -> None:
        reads = Reads()
        batcher = Batcher(reads, max_batch=3, in_flight=1)
        first = await asked(batcher, ["a"])
        rest = await asked(batcher, ["b", "c", "b", "unknown", "d"])
        assert reads.batches == [["a"]]  # the rest wait for the read in flight
        reads.release.set()
        answers = await asyncio.gather(*first, *rest)
        assert answers == ["A", "B", "C", "B", None, "D"]
        # b asked twice is read once; at most three a read
        assert reads.batches == [["a"], ["b", "c", "unknown"], ["d"]]

    asyncio.run(night())


def test_reads_in_flight_are_bounded():
    async def night() -> None:
        reads = Reads()
        batcher = Batcher(reads, max_batch=10, in_flight=2)
        tasks = await asked(batcher, ["a"]) + await asked(batcher, ["b"])
        tasks += await asked(batcher, ["c", "d"])
        assert reads.batches == [["a"], ["b"]]
        reads.release.set()
        assert await asyncio.gather(*tasks) == ["A", "B", "C", "D"]
        assert reads.batches == [["a"], ["b"], ["c", "d"]]

    asyncio.run(night())


def test_a_failed_read_fails_its_readers_only():
    async def night() -> None:
        reads = Reads(fail_on="bad")
        batcher = Batcher(reads, max_batch=2, in_flight=1)
        tasks = await asked(batcher, ["x"]) + await asked(batcher, ["bad", "y", "z"])
        reads.release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert outcomes[0] == "X" and outcomes[3] == "Z"
        assert all(isinstance(o, RuntimeError) and "bad" in str(o) for o in outcomes[1:3])
        assert await batcher.get("after") == "AFTER"  # and it reads on

    asyncio.run(night())


def test_a_reader_that_goes_away_takes_nobody_with_it():
    async def night() -> None:
        reads = Reads()
        batcher = Batcher(reads, in_flight=1)
        first = await asked(batcher, ["a"])
        gone, stays = await asked(batcher, ["b", "b"])
        gone.cancel()
        reads.release.set()
        assert await asyncio.gather(*first, stays) == ["A", "B"]
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(night())
