"""The API's answer cache (streams.read.cache): a kept answer past its time is served at once while
it is built again, and those refreshes run a few at a time, never all the views at once."""

from __future__ import annotations

import asyncio

from streams.read.cache import ResponseCache


def test_stale_answers_are_served_at_once_and_refreshed_a_few_at_a_time():
    async def night() -> None:
        now = [0.0]
        cache = ResponseCache(ttl=1.0, clock=lambda: now[0], refreshes_at_once=2)
        building, most, version = 0, 0, [1]

        async def build(key: str) -> dict:
            nonlocal building, most
            building += 1
            most = max(most, building)
            await asyncio.sleep(0.02)
            building -= 1
            return {"key": key, "version": version[0]}

        keys = [f"view{i}" for i in range(6)]
        for key in keys:  # first answers: each reader waits for its own
            first = await cache.get_awaiting(key, lambda k=key: build(k))
            assert first == {"key": key, "version": 1}
        now[0], version[0], most = 5.0, 2, 0
        stale = [await cache.get_awaiting(k, lambda k=k: build(k)) for k in keys]
        assert [a["version"] for a in stale] == [1] * 6  # served at once, none waited
        await asyncio.gather(*cache.refreshing.values())
        assert most == 2  # six refreshes, two at a time
        assert [cache.entries[k][1]["version"] for k in keys] == [2] * 6

    asyncio.run(night())
