"""The worker's write queue and watches, on their own: no faust, no broker, no ClickHouse."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.clickhouse.sink import Fenced
from streams.kafka.watch import NO_STALL, BrokerWatch, StallReport
from streams.kafka.writes import EXIT_BUG, EXIT_FENCED, WriteQueue


def test_writes_land_one_at_a_time_in_the_order_decided():
    landed: list[int] = []
    running: list[int] = []

    async def night() -> None:
        queue = WriteQueue(stop=pytest.fail)

        async def write(n: int, before: list[asyncio.Task]) -> bool:
            await asyncio.gather(*before)
            running.append(n)
            assert len(running) == 1, "two writes in ClickHouse at once"
            await asyncio.sleep(0.01 * (3 - n))  # the first is the slowest: order must still hold
            running.remove(n)
            landed.append(n)
            return True

        tasks = []
        for n in range(3):
            async with queue.deciding:
                tasks.append(queue.start(lambda before, n=n: write(n, before)))
        async with queue.deciding:
            await queue.settled()
            assert queue.writes == [] and all(t.done() for t in tasks)
        assert [t.result() for t in tasks] == [True, True, True]

    asyncio.run(night())
    assert landed == [0, 1, 2]


@pytest.mark.parametrize(
    ("error", "code"), [(Fenced("moved on"), EXIT_FENCED), (RuntimeError("bug"), EXIT_BUG)]
)
def test_a_failed_write_stops_the_process_and_is_never_acked(error, code):
    stopped: list[int] = []

    async def night() -> bool:
        queue = WriteQueue(stop=stopped.append)

        async def write(before: list[asyncio.Task]) -> bool:
            raise error

        async with queue.deciding:
            task = queue.start(write)
        return await task

    assert asyncio.run(night()) is False  # what bulk.py acks on: nothing
    assert stopped == [code]


def test_settled_waits_for_a_write_queued_behind_another():
    async def night() -> list[str]:
        queue, order = WriteQueue(stop=pytest.fail), []

        async def write(name: str, before: list[asyncio.Task]) -> bool:
            await asyncio.gather(*before)
            await asyncio.sleep(0.02)
            order.append(name)
            return True

        async with queue.deciding:
            queue.start(lambda b: write("first", b))
            queue.start(lambda b: write("second", b))
            await queue.settled()
            order.append("settled")
        return order

    assert asyncio.run(night()) == ["first", "second", "settled"]


def test_the_broker_watch_says_once_then_reminds_then_says_it_is_back(caplog):
    now = [0.0]
    watch = BrokerWatch(poll_s=10, remind_s=30, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "tally.worker")
    for _ in range(7):
        watch.failed(ConnectionError())
        now[0] += 10
    assert not watch.up
    watch.answered()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "the broker does not answer (ConnectionError); nothing is acked meanwhile"
    assert lines[1:3] == [
        "the broker still does not answer after 30 s (4 failed polls)",
        "the broker still does not answer after 60 s (7 failed polls)",
    ]
    assert lines[3] == "the broker answers again after 70 s and 7 failed polls" and len(lines) == 4
    assert watch.up
    watch.answered()  # answering while up says nothing
    assert len(caplog.records) == 4


def test_the_stall_report_sends_only_changes_and_resends_what_was_not_taken():
    report = StallReport()
    stalled = {3: (41, "no codec", 1.0)}
    changed = report.changes(stalled)
    assert report.rows("t", "w", changed) == [("t", 3, 41, "no codec", "w")]
    assert report.changes(stalled) == changed  # not taken (ClickHouse away): sent again
    report.taken(stalled)
    assert report.changes(stalled) == {}
    assert report.changes({}) == {3: NO_STALL}  # it reads again: -1 tells `tally status`
    report.taken({})
    assert report.changes({}) == {}
