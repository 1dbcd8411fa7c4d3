"""Stage 3's packed state: what goes in comes out, at every count width, and it is smaller."""

from __future__ import annotations

import hashlib
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.revisions import Applied
from streams.core.state import AppliedState, pack, unpack

EVENT_IDS = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)


@st.composite
def applied(draw) -> Applied:
    n = draw(st.integers(1, 40))
    top = draw(st.sampled_from([255, 256, 65_535, 65_536, 1_000_000]))
    votes = {f"{i:02d}": draw(st.integers(0, top)) for i in range(n)}
    ids = tuple(draw(st.lists(EVENT_IDS, max_size=4)))
    return Applied.of(
        f"{draw(st.integers(0, 10**13 - 1)):013d}",
        draw(st.sampled_from(["PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB"])),
        draw(st.integers(1, 2**31 - 1)),
        draw(EVENT_IDS),
        hashlib.blake2b(draw(st.binary()), digest_size=16).hexdigest(),
        votes,
        draw(st.integers(0, 1_000_000)),
        draw(st.integers(0, 3_000_000)),
        ids,
    )


@settings(max_examples=300, deadline=None)
@given(applied())
def test_a_packed_tally_unpacks_to_the_same(one):
    assert unpack(one.ballot, one.tps, pack(one)) == one


@settings(max_examples=50, deadline=None)
@given(st.lists(applied(), max_size=20))
def test_the_state_is_a_mapping_of_its_last_writes(many):
    state, expected = AppliedState(), {}
    for one in many:
        state[(one.ballot, one.tps)] = one
        expected[(one.ballot, one.tps)] = one
    assert len(state) == len(expected)
    assert set(state) == set(expected)
    for key, one in expected.items():
        assert key in state and state.get(key) == one and state.voters(key) == one.voters
    assert state.get(("PPWP", "0" * 13)) == expected.get(("PPWP", "0" * 13))
    state.clear()
    assert len(state) == 0


def test_a_legislative_key_packs_into_under_a_quarter_of_its_object():
    """~150 small counts (a DPR tally): the tuple of them was most of a worker's memory."""
    votes = {
        f"{party:02d}.{rank:02d}": (party * rank) % 40
        for party in range(1, 19)
        for rank in range(9)
    }
    keys = [(f"{n:013d}", f"gw-1:{n:06d}") for n in range(2000)]

    def measure(make) -> float:
        tracemalloc.start()
        held = make()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del held
        return size / len(keys)

    def objects():
        return {
            ("DPR", tps): Applied.of(tps, "DPR", 1, e, "00" * 16, votes, 0, 100, (e,))
            for tps, e in keys
        }

    def packed():
        state = AppliedState()
        for tps, e in keys:
            state[("DPR", tps)] = Applied.of(tps, "DPR", 1, e, "00" * 16, votes, 0, 100, (e,))
        return state

    assert measure(packed) * 4 < measure(objects)  # measured: ~300 B against ~1,590 B
