"""Signed submissions: every rejection code, tampering that keeps a valid structure, and
the canonical form. Pure: no Kafka, no ClickHouse (the end-to-end test is test_trust_end_to_end)."""

from __future__ import annotations

import copy

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.core.contract import decode_tally
from streams.core.reasons import Reason
from streams.core.registry import Registry
from streams.core.signatures import canonical, check_signature, epoch
from streams.core.validate import validate_tally
from tests.factories import key_record, signed, small_registry, tally_dict

TPS = "3171010001001"
OTHER = "1101010001001"
RECEIVED = epoch("2024-02-14T16:00:00+07:00")


def registry(*records: dict) -> Registry:
    known = small_registry()
    known.keys = Registry.from_records(records or (key_record(TPS), key_record(OTHER))).keys
    return known


def verdict(
    event: dict, keys: Registry | None = None, required: bool = True, received: float = RECEIVED
):
    decoded = decode_tally(orjson.dumps(event))
    assert decoded.tally is not None, decoded.findings
    return check_signature(decoded.tally, (keys or registry()).keys, required, received)


def test_a_tally_signed_by_its_own_device_is_accepted():
    assert verdict(signed(tally_dict())) is None


def test_unsigned_is_rejected_only_where_signatures_are_required():
    assert verdict(tally_dict()).reason is Reason.UNSIGNED
    assert verdict(tally_dict(), required=False) is None


def test_a_signature_without_its_key_id_or_the_reverse_is_unsigned():
    event = signed(tally_dict())
    for dropped in ("sig", "key_id"):
        partial = {k: v for k, v in event.items() if k != dropped}
        found = verdict(partial, required=False)
        assert (found.reason, found.path) == (Reason.UNSIGNED, f"$.{dropped}")


def test_a_key_the_registry_does_not_know_is_unknown():
    found = verdict({**signed(tally_dict()), "key_id": "nobody.1"})
    assert found.reason is Reason.UNKNOWN_KEY


def test_a_tally_signed_with_another_tps_key_is_wrong_tps_key():
    # a valid signature, by the device of another TPS
    found = verdict(signed(tally_dict(), by=OTHER))
    assert (found.reason, found.path) == (Reason.WRONG_TPS_KEY, "$.key_id")
    assert OTHER in found.detail


def test_a_revoked_key_refuses_events_received_after_the_revocation_only():
    revoked_at = "2024-02-14T15:30:00+07:00"
    keys = registry(key_record(TPS, revoked_at=revoked_at))
    event = signed(tally_dict())
    assert verdict(event, keys, received=epoch(revoked_at) - 1) is None
    assert verdict(event, keys, received=epoch(revoked_at)).reason is Reason.REVOKED_KEY
    # A thief cannot backdate around it: submitted_at is the device's claim, receipt is the
    # gateway's.
    backdated = signed(tally_dict(submitted_at="2024-02-14T13:00:00+07:00"))
    assert verdict(backdated, keys, received=epoch(revoked_at) + 60).reason is Reason.REVOKED_KEY


def test_a_submission_outside_the_key_validity_is_expired():
    for moment in ("2024-02-13T23:59:59+07:00", "2024-03-21T00:00:00+07:00"):
        assert verdict(signed(tally_dict(submitted_at=moment))).reason is Reason.EXPIRED_KEY
    assert verdict(signed(tally_dict(submitted_at="yesterday"))).reason is Reason.EXPIRED_KEY


def test_a_signature_that_is_not_base64_or_not_64_bytes_is_bad():
    event = signed(tally_dict())
    assert verdict({**event, "sig": "%%%"}).reason is Reason.BAD_SIGNATURE
    assert verdict({**event, "sig": "AAAA"}).reason is Reason.BAD_SIGNATURE


def move_votes(event: dict, donor: str, taker: str, n: int) -> dict:
    forged = copy.deepcopy(event)
    forged["votes"][donor] -= n
    forged["votes"][taker] += n
    return forged


@given(
    donor=st.sampled_from(["01", "02", "03"]),
    taker=st.sampled_from(["01", "02", "03"]),
    n=st.integers(1, 30),
)
def test_tampering_that_keeps_every_c1_equation_is_caught_by_the_signature(donor, taker, n):
    if donor == taker:
        return
    forged = move_votes(signed(tally_dict()), donor, taker, n)
    decoded = decode_tally(orjson.dumps(forged))
    assert validate_tally(
        decoded.tally, small_registry()
    ).accepted  # it looks like a perfectly good C1 form
    assert verdict(forged).reason is Reason.BAD_SIGNATURE


@given(
    field=st.sampled_from(
        ["revision", "submitted_at", "gateway", "event_id", "invalid_and_votes", "key_id"]
    )
)
def test_any_signed_field_changed_breaks_the_signature(field):
    event = signed(tally_dict())
    forged = copy.deepcopy(event)
    if field == "revision":
        forged["revision"] = 2  # a replayed tally dressed up as a correction
    elif field == "submitted_at":
        forged["submitted_at"] = "2024-02-14T15:02:12+07:00"
    elif field == "gateway":
        forged["gateway"] = "gw-evil"
    elif field == "event_id":
        forged["event_id"] = "gw-31-01:999999"
    elif field == "key_id":
        forged["key_id"] = "3171010001001.2"
        keys = registry(key_record(TPS), key_record(TPS, key_id="3171010001001.2"))
        assert verdict(forged, keys).reason is Reason.BAD_SIGNATURE
        return
    else:
        forged["invalid"] += 1
        forged["votes"]["01"] -= 1
    assert verdict(forged).reason is Reason.BAD_SIGNATURE


def test_the_canonical_form_ignores_key_order_and_whitespace():
    event = signed(tally_dict())
    shuffled = dict(reversed(list(event.items())))
    shuffled["votes"] = dict(reversed(list(event["votes"].items())))
    assert canonical(shuffled) == canonical(event)
    # a gateway may re-indent: still the same event
    pretty = orjson.dumps(shuffled, option=orjson.OPT_INDENT_2)
    assert verdict(orjson.loads(pretty)) is None
    assert b" " not in canonical(event) and b'"sig"' not in canonical(event)
    # sorted at every level
    assert canonical(event).startswith(b'{"ballot":"PPWP","ballots":{"received":')


def test_forged_events_of_the_simulator_are_each_rejected_and_the_real_ones_accepted():
    from streams.core.pipeline import Message, Processor
    from streams.gateways.shape import registry_records
    from streams.gateways.simulate import Plan, generate

    shape, stream, truth = generate(
        Plan(400, 3, ("PPWP",), forged=0.3, duplicates=0.05, corrections=0.05)
    )
    known = Registry.from_records(registry_records(shape))
    processor = Processor(lambda: known)
    processor.preload(0, {}, {})
    messages = [
        Message(i, raw, RECEIVED, orjson.loads(raw)["tps"].encode()) for i, raw in enumerate(stream)
    ]
    batch = processor.process("t", 0, messages)
    reasons = [tuple(row.reasons) for row in batch.rejections]
    assert set(reasons) == {("UNSIGNED",), ("BAD_SIGNATURE",), ("WRONG_TPS_KEY",)}
    assert len(reasons) > 60  # about 30% of 400
    # (ballot, tps) -> event_id, last wins
    applied = {(row.ballot, row.tps): row.event_id for row in batch.current}
    assert {k: e for k, e in applied.items()} == {k: v.event_id for k, v in truth.current.items()}


def test_the_key_ring_gives_back_what_it_was_given():
    keys = Registry.from_records(
        [key_record(TPS), key_record(OTHER, revoked_at="2024-02-15T00:00:00+07:00")]
    ).keys
    assert len(keys) == 2 and keys.get("nobody.1") is None
    first, second = keys.get(f"{TPS}.1"), keys.get(f"{OTHER}.1")
    assert (first.tps, first.revoked_at, len(first.public_key)) == (TPS, None, 32)
    assert (second.tps, second.revoked_at) == (OTHER, epoch("2024-02-15T00:00:00+07:00"))
    assert first.valid_from == second.valid_from == epoch("2024-02-14T00:00:00+07:00")


def test_device_keys_survive_the_round_trip_through_clickhouse_and_revocation(ch):
    from streams.clickhouse.registry_store import load_registry, read_registry, revoke_key

    records = [key_record(TPS), key_record(OTHER, valid_from=None, valid_until=None)]
    records[1] = {k: v for k, v in records[1].items() if v is not None}
    load_registry(ch, records)
    assert read_registry(ch).keys == Registry.from_records(records).keys
    assert revoke_key(ch, records[0]["key_id"], RECEIVED)
    assert not revoke_key(ch, "nobody.1", RECEIVED)
    keys = read_registry(ch).keys
    assert (
        keys.get(records[0]["key_id"]).revoked_at == RECEIVED
        and keys.get(records[1]["key_id"]).revoked_at is None
    )
    event = signed(tally_dict())
    assert (
        check_signature(decode_tally(orjson.dumps(event)).tally, keys, True, RECEIVED).reason
        is Reason.REVOKED_KEY
    )


def test_an_unsigned_night_counts_only_where_signatures_are_not_required():
    from streams.core.pipeline import Message, Processor
    from streams.gateways.shape import registry_records
    from streams.gateways.simulate import Plan, generate

    shape, stream, truth = generate(Plan(50, 2, ("PPWP",), signed=False))
    events = list(stream)
    assert not any(b'"sig"' in e for e in events)
    known = Registry.from_records(registry_records(shape))
    for required, applied in ((True, 0), (False, 50)):
        processor = Processor(lambda: known, require_signatures=required)
        processor.preload(0, {}, {})
        batch = processor.process("t", 0, [Message(i, e, RECEIVED) for i, e in enumerate(events)])
        assert len(batch.current) == applied
        assert {tuple(r.reasons) for r in batch.rejections} == (
            {("UNSIGNED",)} if required else set()
        )
