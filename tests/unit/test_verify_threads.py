"""Signatures checked on threads decide exactly what the serial path decides: the same
decisions, reasons, flags, state and rows, over a night with duplicates, corrections, broken events,
forgeries under another TPS's key, and events altered after signing that only the Ed25519 arithmetic
catches. Pure: no Kafka, no ClickHouse."""

from __future__ import annotations

import orjson
import pytest

from streams.core.pipeline import Message, Processor
from streams.core.registry import Registry
from streams.core.signatures import epoch
from streams.gateways.shape import registry_records
from streams.gateways.simulate import Plan, generate
from streams.kafka.verify_threads import MIN_SHARED, ThreadVerifier

RECEIVED = epoch("2024-02-15T12:00:00+07:00")


def altered(line: bytes) -> bytes:
    """The event with its gateway changed after signing: structure and equations still hold."""
    event = orjson.loads(line)
    event["gateway"] = "gw-altered"
    return orjson.dumps(event)


@pytest.fixture(scope="module")
def night() -> tuple[Registry, list[Message]]:
    plan = Plan(
        400, 5, ("PPWP", "DPR"), duplicates=0.1, corrections=0.05, invalid=0.02, forged=0.05
    )
    shape, stream, _ = generate(plan)
    events = list(stream)
    events = [altered(e) if i % 11 == 0 and b'"sig"' in e else e for i, e in enumerate(events)]
    return Registry.from_records(registry_records(shape)), [
        Message(i, e, RECEIVED, None) for i, e in enumerate(events)
    ]


def decided(
    registry: Registry, messages: list[Message], verifier: object
) -> tuple[list, list, dict]:
    processor = (
        Processor(lambda: registry, True, True, verifier)
        if verifier
        else Processor(lambda: registry, True, True)
    )
    processor.preload(0, [], {})
    batches = [
        processor.process("t", 0, messages[i : i + 300]) for i in range(0, len(messages), 300)
    ]
    rows = [
        (b.decisions, b.rejections, b.current, sorted(b.totals.as_rows(0), key=repr))
        for b in batches
    ]
    state = {key: processor.state.get(key) for key in processor.state}
    return rows, sorted(state.items()), processor.counts


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_decide_what_the_serial_path_decides(night, threads):
    registry, messages = night
    serial = decided(registry, messages, None)
    verifier = ThreadVerifier(threads)
    try:
        shared = decided(registry, messages, verifier)
    finally:
        verifier.close()
    assert shared == serial
    reasons = [reason for batch in serial[0] for row in batch[1] for reason in row.reasons]
    # The night has forgeries of every kind this test is about, so the comparison can fail.
    assert reasons.count("BAD_SIGNATURE") >= 10 and "WRONG_TPS_KEY" in reasons
    assert serial[2]["applied"] > 500 and MIN_SHARED <= 300  # a batch goes to the threads


def test_a_small_batch_stays_on_the_deciding_thread():
    verifier = ThreadVerifier(2)
    try:
        assert verifier([])() == []
    finally:
        verifier.close()
