"""`tally validate`: one decision line per input line, the same function the worker applies."""

from __future__ import annotations

import time

from streams.core.contract import decode_tally
from streams.core.reasons import reason_codes
from streams.core.registry import Registry
from streams.core.signatures import check_signature
from streams.core.validate import validate_tally


def judge_line(line: bytes, registry: Registry | None, require_signatures: bool = True) -> dict:
    """With a registry, signatures are checked as the worker checks them (received now); without
    one, only the structure and the C1 equations apply."""
    decoded = decode_tally(line)
    if decoded.tally is None:
        findings, flags = decoded.findings, ()
    else:
        verdict = validate_tally(decoded.tally, registry)
        findings, flags = verdict.findings, verdict.flags
        if registry is not None:
            forged = check_signature(decoded.tally, registry.keys, require_signatures, time.time())
            findings = ((forged,) if forged else ()) + findings
    reasons = reason_codes(findings)
    return {
        "event_id": decoded.event_id,
        "decision": "rejected" if findings else "accepted",
        "reasons": reasons,
        "flags": [f.value for f in flags],
        "findings": [f.as_text() for f in findings],
    }
