"""Stage 1: the wire contract tally.v1 (MALFORMED and SCHEMA), and its agreement with the JSON
Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.contract import check_structure, conforms, decode_tally
from streams.core.reasons import Reason
from tests.factories import tally_dict, valid_tallies

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "tally.v1.schema.json").read_text()
)
# tally.v1 counts are JSON integers written as such: 1.0 is refused, though JSON Schema's "integer"
# admits a float with no fraction. The schema's own description says so; the test validator agrees.
_STRICT_INTEGERS = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
)
VALIDATOR = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, type_checker=_STRICT_INTEGERS
)(SCHEMA)


def paths(payload: bytes) -> list[tuple[str, str]]:
    return [(f.reason.value, f.path) for f in decode_tally(payload).findings]


def test_the_issue_example_decodes():
    decoded = decode_tally(orjson.dumps(tally_dict()))
    assert decoded.findings == () and decoded.tally is not None
    assert decoded.tally.valid == 230 and decoded.tally.voters == 235


@pytest.mark.parametrize(
    "payload", [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}", b'{"a": 1']
)
def test_malformed_when_not_a_utf8_json_object(payload):
    assert [r for r, _ in paths(payload)] == ["MALFORMED"]


def test_malformed_when_larger_than_64_kib():
    big = tally_dict(gateway="g" * 70_000)
    assert paths(orjson.dumps(big)) == [("MALFORMED", "$")]


def test_schema_names_every_missing_unknown_and_mistyped_field():
    event = tally_dict(revision=0, extra=1)
    del event["gateway"]
    event["votes"]["02"] = "80"
    event["voters"]["voted"]["dpk"] = 2.0
    event["ballots"]["used"] = True
    found = set(paths(orjson.dumps(event)))
    assert found == {
        ("SCHEMA", "$.gateway"),
        ("SCHEMA", "$.extra"),
        ("SCHEMA", "$.revision"),
        ("SCHEMA", "$.votes.02"),
        ("SCHEMA", "$.voters.voted.dpk"),
        ("SCHEMA", "$.ballots.used"),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tps", "317101000100"),
        ("tps", "31710100010011"),
        ("ballot", "DPRD"),
        ("event_id", ""),
        ("event_id", "a" * 65),
        ("event_id", "has space"),
        ("schema", "tally.v2"),
        ("invalid", 1_000_001),
        ("invalid", -1),
    ],
)
def test_schema_rejects_out_of_range_values(field, value):
    event = tally_dict()
    event[field] = value
    assert paths(orjson.dumps(event)) == [("SCHEMA", f"$.{field}")]


def test_decode_keeps_what_it_could_read_of_a_bad_event():
    decoded = decode_tally(orjson.dumps(tally_dict(revision="1")))
    assert decoded.tally is None
    assert (decoded.event_id, decoded.tps, decoded.ballot, decoded.gateway) == (
        "gw-31-01:000123",
        "3171010001001",
        "PPWP",
        "gw-31-01",
    )


@settings(max_examples=200, deadline=None)
@given(valid_tallies())
def test_every_valid_tally_passes_the_published_json_schema_too(event):
    assert decode_tally(orjson.dumps(event)).findings == ()
    VALIDATOR.validate(event)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2_000_000)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    valid_tallies(),
    st.sampled_from(
        [
            "event_id",
            "tps",
            "ballot",
            "revision",
            "gateway",
            "invalid",
            "votes",
            "voters",
            "ballots",
            "schema",
            "unknown",
        ]
    ),
    JSON_VALUES,
)
def test_hand_written_checks_agree_with_the_json_schema(event, field, value):
    event[field] = value
    schema_ok = VALIDATOR.is_valid(event)
    decoded = decode_tally(orjson.dumps(event))
    assert (decoded.findings == ()) == schema_ok, (field, value, decoded.findings)
    assert all(f.reason is Reason.SCHEMA for f in decoded.findings)


NESTED = [
    "voters",
    "voters.registered",
    "voters.voted.dpk",
    "ballots.used",
    "votes",
    "votes.01",
    "votes.a b",
]


@settings(max_examples=400, deadline=None)
@given(
    valid_tallies(),
    st.sampled_from(NESTED + ["tps", "revision", "sig", "key_id", "gateway", "event_id"]),
    JSON_VALUES,
)
def test_the_fast_path_agrees_with_the_hand_written_checks(event, path, value):
    """`conforms` (msgspec) decides alone for conforming events: it must say yes exactly when the
    hand-written checks find nothing, at any depth, and then both give the same tally."""
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name] if isinstance(target.get(name), dict) else target.setdefault(name, {})
    target[last] = value
    slow = check_structure(event)
    assert conforms(event) == (slow.findings == ()), (path, value, slow.findings)
    assert conforms(event) == VALIDATOR.is_valid(event)
    if slow.tally is not None:
        assert decode_tally(orjson.dumps(event)) == slow


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("votes.a b", 5),
        ("votes." + "x" * 33, 5),
        ("votes.ok", 1_000_001),
        ("votes.ok", True),
        ("voters.voted.dpk", 2.0),
        ("voters.voted.extra", 1),
        ("ballots.used", -1),
        ("revision", 2**31),
        ("gateway", "g" * 65),
        ("sig", None),
        ("event_id", "x\n"),
    ],
)
def test_the_fast_path_refuses_what_the_hand_written_checks_find(path, value):
    event = tally_dict()
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name]
    target[last] = value
    assert check_structure(event).findings != ()
    assert not conforms(event)


def test_a_tps_of_other_scripts_digits_is_refused_by_both_paths():
    event = tally_dict(tps="\u0663\u0661\u0667\u0661010001001")  # Arabic-Indic 3, 1, 7, 1
    assert not conforms(event)
    assert paths(orjson.dumps(event)) == [("SCHEMA", "$.tps")]
