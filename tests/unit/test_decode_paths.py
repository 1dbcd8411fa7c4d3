"""The fast decoding path (msgspec from bytes, canonical forms from typed values) decides
exactly what the reference path (orjson's dicts, each form dumped whole) decides: the same tally,
the same findings, the same bytes signed, logged and digested, and so the same batches."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import contract
from streams.core.contract import decode_object, decode_tally, forms_of
from streams.core.pipeline import Message, Processor
from streams.core.registry import Registry
from streams.core.signatures import canonical
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from tests.factories import signed, tally_dict, valid_tallies
from tests.unit.test_contract import JSON_VALUES, NESTED

# Every code point a free string may hold, control characters, quotes, backslashes and astral ones
# included.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
CHOICE = st.text(st.sampled_from("AZaz09_.-"), min_size=1, max_size=32)


def same(payload: bytes) -> None:
    fast, reference = decode_tally(payload), decode_object(payload)
    assert fast == reference
    if fast.tally is not None:
        assert fast.tally.forms == reference.tally.forms


@st.composite
def conforming(draw: st.DrawFn) -> dict:
    """Any event of tally.v1's shape: free strings of any text, choices of any valid code, keys in
    any order."""
    event = draw(valid_tallies())
    event["votes"] = draw(
        st.dictionaries(CHOICE, st.integers(0, 1_000_000), min_size=1, max_size=40)
    )
    event["gateway"] = draw(ANY_TEXT.filter(lambda s: 1 <= len(s) <= 64))
    event["submitted_at"] = draw(ANY_TEXT)
    for name in ("sig", "key_id"):
        if draw(st.booleans()):
            event[name] = draw(ANY_TEXT)
    names = list(event)
    random.Random(draw(st.integers(0, 2**32))).shuffle(names)
    return {name: event[name] for name in names}


@settings(max_examples=500, deadline=None)
@given(conforming())
def test_a_conforming_event_has_the_same_tally_and_the_same_bytes_on_both_paths(event):
    payload = orjson.dumps(event)
    decoded = decode_tally(payload)
    assert decoded.tally is not None, decoded.findings
    same(payload)
    forms = decoded.tally.forms
    assert forms.signed == canonical(event)  # what a device signs (core.signatures), byte for byte
    assert forms.event == orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    assert forms == forms_of(event)


@settings(max_examples=400, deadline=None)
@given(
    valid_tallies(),
    st.sampled_from(NESTED + ["tps", "revision", "sig", "key_id", "gateway", "event_id", "x"]),
    JSON_VALUES,
)
def test_a_changed_event_gets_the_same_answer_on_both_paths(event, path, value):
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name] if isinstance(target.get(name), dict) else target.setdefault(name, {})
    target[last] = value
    same(orjson.dumps(event))


BODY = orjson.dumps(tally_dict())[1:-1]


@pytest.mark.parametrize(
    "payload",
    [
        b"{" + BODY + b',"revision":2}',  # a key twice: the last one counts, on both paths
        b'{"revision":"x",' + BODY + b"}",  # a bad value overwritten by a good one
        b"{" + BODY + b',"revision":-1}',  # a good value overwritten by a bad one
        b"{" + BODY.replace(b'"gw-31-01"', b'"gw-\\u00e9\\"\\\\"', 1) + b"}",  # escapes
        b"{" + BODY.replace(b'"gw-31-01"', b'"gw-\\ud800"', 1) + b"}",  # a lone surrogate
        b"{" + BODY.replace(b'"gw-31-01"', b'"gw-\xff"', 1) + b"}",  # not UTF-8
        b"\xef\xbb\xbf{" + BODY + b"}",  # a byte order mark
        b' \n{ "schema" : "tally.v1" ,'
        + BODY[len(b'"schema":"tally.v1",') :]
        + b"}\n",  # whitespace
        b"{" + BODY + b"} x",  # trailing text
        b"{" + BODY.replace(b'"invalid":5', b'"invalid":5.0') + b"}",
        b"{" + BODY.replace(b'"invalid":5', b'"invalid":1e400') + b"}",
        b"{" + BODY.replace(b'"invalid":5', b'"invalid":99999999999999999999999') + b"}",
        b"{" + BODY.replace(b'"01":120', b'"0 1":120') + b"}",
    ],
)
def test_edge_bytes_get_the_same_answer_on_both_paths(payload):
    same(payload)


@pytest.mark.parametrize("bound", [100_000, 0])
def test_choice_codes_seen_before_do_not_let_a_bad_one_through(monkeypatch, bound):
    """The fast path remembers codes that matched (up to a bound): an event of known codes and one
    bad one, or one bad one alone, gets the reference's answer, remembered or not."""
    monkeypatch.setattr(contract, "_MATCHED", set())
    monkeypatch.setattr(contract, "_MATCHED_LIMIT", bound)
    good = {"01": 1, "P02-1": 2, "A.b_c": 3}
    remembered = set(good) if bound else set()
    same(orjson.dumps(tally_dict(votes=good)))
    assert remembered == contract._MATCHED
    for bad in ("0 1", "", "x" * 33, "01\x00", "\u00e9"):
        same(orjson.dumps(tally_dict(votes={**good, bad: 4})))
        assert decode_tally(orjson.dumps(tally_dict(votes={**good, bad: 4}))).tally is None
        same(orjson.dumps(tally_dict(votes={bad: 4})))
    assert remembered == contract._MATCHED


def test_a_signed_event_verifies_from_the_fast_paths_bytes():
    event = signed(tally_dict(gateway="gw-\u00e9-\U0001f5f3"))
    forms = decode_tally(orjson.dumps(event)).tally.forms
    assert forms.signed == canonical(event) and forms.event == orjson.dumps(
        event, option=orjson.OPT_SORT_KEYS
    )


def test_a_night_is_decided_alike_on_both_paths():
    """Every decision, flag, rejection, applied state and totals row of a five-ballot night with
    duplicates, corrections, broken and forged events: the fast path against the reference."""
    ballots = ("PPWP", "DPR", "DPD", "DPRD_PROV", "DPRD_KAB")
    plan = Plan(300, 5, ballots, duplicates=0.05, corrections=0.05, invalid=0.03, forged=0.03)
    shape, stream, _ = generate(plan)
    events = list(stream)
    registry = Registry.from_records(registry_records(shape))
    messages = [Message(offset, raw, 1_707_900_000.0) for offset, raw in enumerate(events)]
    batches = {}
    for decoder in (decode_tally, decode_object):
        processor = Processor(lambda: registry, decoder=decoder)
        processor.preload(0, [], {})
        out = [
            processor.process("t", 0, messages[i : i + 500]) for i in range(0, len(messages), 500)
        ]
        batches[decoder] = [
            (b.decisions, b.rejections, b.current, b.totals.as_rows(0)) for b in out
        ]
        counts = processor.counts
    assert batches[decode_tally] == batches[decode_object]
    assert counts["rejected"] > 0 and counts["applied"] > 0 and counts["duplicate"] > 0
