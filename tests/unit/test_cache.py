"""The API's answer cache (streams.read.cache): a kept answer past its time is served at once while
it is built again, and those refreshes run a few at a time, never all the views at once."""

from __future__ import annotations

import asyncio

import orjson

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


def test_a_kept_answer_is_sent_as_the_json_encoded_when_it_was_built():
    """Readers of a kept answer get the bytes encoded once a build (the same JSON as the answer),
    and a refresh's new answer with its own bytes."""

    async def night() -> None:
        now, builds = [0.0], []

        async def build() -> dict:
            builds.append(now[0])
            return {"tps_reported": len(builds), "name": "Daerah Istimewa Yogyakarta"}

        cache = ResponseCache(ttl=1.0, clock=lambda: now[0])
        first = await cache.get_awaiting_json("view", build)
        assert orjson.loads(first) == await cache.get_awaiting("view", build)
        assert await cache.get_awaiting_json("view", build) is first  # not encoded again
        now[0] = 5.0
        await cache.get_awaiting_json("view", build)  # stale: served, refreshed behind it
        await asyncio.gather(*cache.refreshing.values())
        fresh = await cache.get_awaiting_json("view", build)
        assert orjson.loads(fresh) == {"tps_reported": 2, "name": "Daerah Istimewa Yogyakarta"}
        assert len(builds) == 2

    asyncio.run(night())


def test_answers_made_from_a_ballot_view_are_encoded_once_a_view():
    """A dapil's results and seats are made from the ballot's kept view: every reader of one view
    gets the same bytes, a refreshed view gets answers of its own, and an answer as of a moment is
    made again (readers choose moments without bound, so none is kept)."""
    from datetime import UTC, datetime

    from streams.read.handlers import Reader
    from streams.read.metrics import ApiMetrics

    reader = Reader(None, ResponseCache(ttl=1.0), 0.04, ApiMetrics())  # type: ignore[arg-type]
    made = []

    def answer(view: dict) -> dict:
        made.append(view["as_of"])
        return {"as_of": view["as_of"], "seats": view["seats"]}

    old = {"as_of": "2024-02-14T13:00:00Z", "seats": 3}
    first = reader.made_json("DPR", None, old, "seats:", lambda: answer(old))
    assert reader.made_json("DPR", None, old, "seats:", lambda: answer(old)) is first
    assert orjson.loads(first) == {"as_of": "2024-02-14T13:00:00Z", "seats": 3}
    new = {"as_of": "2024-02-14T13:00:01Z", "seats": 4}
    assert (
        orjson.loads(reader.made_json("DPR", None, new, "seats:", lambda: answer(new)))["seats"]
        == 4
    )
    moment = datetime(2024, 2, 14, 13, tzinfo=UTC)
    assert reader.made_json("DPR", moment, new, "seats:", lambda: answer(new)) == answer(new)
    assert made == [old["as_of"], new["as_of"], new["as_of"], new["as_of"]]


def test_a_kept_answer_is_held_once_in_the_form_it_is_read_as_and_the_bound_counts_it():
    """An answer sent as JSON is held as its bytes alone, a view read as a dict as the dict alone:
    the bound in bytes counts what is held, so no copy of an answer sits beside it uncounted."""

    async def night() -> ResponseCache:
        cache = ResponseCache(ttl=60, clock=lambda: 0.0, max_bytes=2_000)
        for i in range(40):  # answers sent as they are: bytes only, their length counted
            await cache.get_awaiting_json(f"/api/tps/{i}", _answer(i))
        held = list(cache.entries.values())
        assert all(isinstance(value, bytes) for _, value in held)
        assert cache.bytes == sum(len(value) for _, value in held) <= 2_000
        assert len(held) < 40  # the oldest went first
        view = await cache.get_awaiting("ballot:DPR:", _answer(99))  # a view: the dict alone
        assert cache.entries["ballot:DPR:"][1] is view
        assert cache.bytes <= 2_000
        # a key asked for in the other form is converted, not built again
        assert orjson.loads(await cache.get_awaiting_json("ballot:DPR:", _answer(0))) == view
        assert await cache.get_awaiting("/api/tps/39", _answer(0)) == await _answer(39)()
        return cache

    asyncio.run(night())


def _answer(i: int):
    async def build() -> dict:
        return {"tps": f"{i:013d}", "votes": {"01": i, "02": 2 * i}, "name": "Kota Yogyakarta"}

    return build
