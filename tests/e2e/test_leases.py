"""A worker's leases against real ClickHouse, without faust: taken, refused to the previous owner,
released, waited out when not released, and the partition count held to the night's."""

from __future__ import annotations

import asyncio

import pytest

from streams.clickhouse.sink import ClickHouseSink
from streams.kafka.leases import LayoutChanged, Leases

TOPIC = "tally.submissions"


def test_a_lease_taken_fences_the_previous_owner_and_a_release_spares_the_wait(ch):
    first, second = Leases(ClickHouseSink(ch), "a"), Leases(ClickHouseSink(ch), "b")
    a, b = first.next_token(), second.next_token()
    assert (a, b, first.next_token()) == ("a#1", "b#1", "a#2")
    assert asyncio.run(first.take(TOPIC, [0, 1], a)) == 0.0
    assert first.sink.held(TOPIC, first.held) == {0, 1}
    assert asyncio.run(first.release(TOPIC, [1])) == {1} and first.held == {0: a}
    assert asyncio.run(second.take(TOPIC, [1], b)) == 0.0  # released: no wait
    assert second.sink.held(TOPIC, second.held) == {1}
    assert first.sink.held(TOPIC, {1: a}) == set()  # the old owner's writes are refused from now on


def test_a_lease_not_released_is_waited_out_before_state_is_read(ch):
    crashed, heir = (
        Leases(ClickHouseSink(ch), "crashed"),
        Leases(ClickHouseSink(ch, deadline_s=0.5), "heir"),
    )
    asyncio.run(crashed.take(TOPIC, [2], crashed.next_token()))
    # The crashed owner never releases: the heir waits while inserts of that owner may still run
    # (none here, so no longer than the bound), and says so.
    waited = asyncio.run(heir.take(TOPIC, [2], heir.next_token()))
    assert 0.0 < waited <= heir.sink.takeover_wait_s + 1


def test_a_topic_with_another_partition_count_than_the_night_is_refused(ch):
    leases = Leases(ClickHouseSink(ch), "w")
    assert asyncio.run(leases.check_layout(TOPIC, 4)) == 4
    assert asyncio.run(leases.check_layout(TOPIC, 4)) == 4
    with pytest.raises(
        LayoutChanged, match="has 8 partitions, but its tallies were placed and decided on 4"
    ):
        asyncio.run(leases.check_layout(TOPIC, 8))
