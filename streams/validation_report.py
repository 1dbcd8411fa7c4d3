"""`tally validate`: one decision line per input line, the same function the worker applies."""

from __future__ import annotations

from streams.contract import decode_tally
from streams.reasons import reason_codes
from streams.registry import Registry
from streams.validate import validate_tally


def judge_line(line: bytes, registry: Registry | None) -> dict:
    decoded = decode_tally(line)
    if decoded.tally is None:
        findings, flags = decoded.findings, ()
    else:
        verdict = validate_tally(decoded.tally, registry)
        findings, flags = verdict.findings, verdict.flags
    reasons = reason_codes(findings)
    return {
        "event_id": decoded.event_id,
        "decision": "rejected" if findings else "accepted",
        "reasons": reasons,
        "flags": [f.value for f in flags],
        "findings": [f.as_text() for f in findings],
    }
