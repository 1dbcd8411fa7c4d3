"""The registry's compact tables (sorted int arrays, not dicts) answer exactly as a dict would.

Every worker holds the whole registry (823k TPS and keys), so it is kept as sorted arrays under int
keys; these tests hold that layout to the plainest reference, a dict, over ids of every kind: device
ids `<13 digits>.<n>`, ids that only look like them (leading zeros, big n, other digits), and any
text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.packed import IntIndex
from streams.core.registry import DptTable, Registry
from streams.core.signatures import DeviceKey, KeyRing

CODES = st.one_of(
    st.integers(0, 10**13 - 1).map(lambda n: f"{n:013d}"),
    st.sampled_from(["3510112006026", "0000000000000", "9999999999999"]),
    st.text(max_size=15),  # not a TPS code: kept aside, still exact
    st.sampled_from(["351011200602", "35101120060261", "٣٥١٠١١٢٠٠٦٠٢٦", "+510112006026"]),
)
N = st.one_of(
    st.integers(0, 1100).map(str),
    st.sampled_from(["01", "00", "", "1.1", "١", "1024", "1023", "99999"]),
)
KEY_IDS = st.one_of(st.tuples(CODES, N).map(lambda p: f"{p[0]}.{p[1]}"), st.text(max_size=20))
WINDOWS = st.sampled_from([(None, None, None), (1.7e9, None, None), (1.7e9, 1.71e9, 1.705e9)])
KEYS = st.builds(
    lambda tps, pk, w: DeviceKey(tps, pk, *w), CODES, st.binary(min_size=32, max_size=32), WINDOWS
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1)), max_size=60),
    st.data(),
)
def test_the_int_index_is_a_dict_whose_last_write_wins(pairs, data):
    index, reference = IntIndex(), {}
    half = len(pairs) // 2
    for key, row in pairs[:half]:
        index.add(key, row)
        reference[key] = row
    probes = [k for k, _ in pairs] + data.draw(
        st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)
    )
    assert all(index.find(k) == reference.get(k, -1) for k in probes)  # sealed once
    for key, row in pairs[half:]:  # and added to after sealing
        index.add(key, row)
        reference[key] = row
    assert all(index.find(k) == reference.get(k, -1) for k in probes)
    assert index.items() == sorted(reference.items()) and len(index) == len(reference)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEY_IDS, KEYS), max_size=40), st.lists(KEY_IDS, max_size=10))
def test_the_key_ring_answers_as_a_dict_of_device_keys(keys, strangers):
    ring, reference = KeyRing(keys), dict(keys)
    for key_id in [k for k, _ in keys] + strangers:
        key = reference.get(key_id)
        assert ring.get(key_id) == key
        found = ring.lookup(key_id)
        assert found == (
            None
            if key is None
            else (key.tps, key.public_key, (key.valid_from, key.valid_until, key.revoked_at))
        )
    assert len(ring) == len(reference) and ring.as_dict() == reference


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(CODES, st.integers(0, 300)), max_size=40), st.lists(CODES, max_size=10))
def test_the_dpt_table_answers_as_a_dict(pairs, strangers):
    table, reference = DptTable(pairs), dict(pairs)
    for code in [c for c, _ in pairs] + strangers:
        assert table.get(code) == reference.get(code)
        assert (code in table) == (code in reference)
    assert (
        len(table) == len(reference) and sorted(table) == sorted(reference) and table == reference
    )


def test_a_registry_read_from_records_holds_its_tables_compactly():
    records = [{"type": "tps", "code": f"35101120060{i:02d}", "dpt": 200 + i} for i in range(50)]
    # given twice: the last counts
    records.append({"type": "tps", "code": "3510112006000", "dpt": 7})
    registry = Registry.from_records(records)
    assert isinstance(registry.dpt, DptTable) and len(registry.dpt) == 50
    assert registry.dpt.get("3510112006000") == 7 and registry.dpt.get("3510112006049") == 249
    assert registry.dpt.get("3510112006050") is None


def test_a_registry_comes_sealed_from_records_and_from_clickhouse(ch):
    """Sorted when loaded, not at the first lookup: otherwise the first event after every load pays
    for sorting 823k keys (and the bench's `verify_us` once counted 0.5 s of it as lookups)."""
    from streams.clickhouse.registry_store import load_registry, read_registry
    from streams.gateways.shape import build_shape, registry_records

    records = list(registry_records(build_shape(300, 1)))
    for registry in (
        Registry.from_records(records),
        (load_registry(ch, records), read_registry(ch))[1],
    ):
        assert registry.dpt.sealed and registry.keys.sealed
        assert len(registry.dpt) == len(registry.keys) == 300
    ring = KeyRing()
    ring.add("3510112006026.1", DeviceKey("3510112006026", bytes(32)))
    # a lookup seals it
    assert not ring.sealed and ring.get("3510112006026.1") is not None and ring.sealed
