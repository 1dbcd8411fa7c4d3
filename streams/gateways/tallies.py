"""What the simulated TPS devices send: C1 tallies consistent with every equation, signed; the
broken and forged submissions a night also sees; and when they arrive (the 2024 upload curve)."""

from __future__ import annotations

import base64
import itertools
import random
from datetime import datetime, timedelta, timezone

import orjson
from nacl.bindings import crypto_sign, crypto_sign_BYTES

from streams.core.contract import SCHEMA_V1
from streams.core.signatures import canonical

# Cumulative share of TPS uploaded (Sirekap 2024, presidential) by hours after polls closed at 13:00
# WIB on 14 February: 7.27% by 19:00, 42.5% by 12:00 next day, 54.9% day 3, 72.0% day 6; the rest
# is spread to day 15 here so that every TPS arrives.
NIGHT_CURVE = ((0.0, 0.0), (6.0, 0.0727), (23.0, 0.425), (47.0, 0.549), (119.0, 0.72), (336.0, 1.0))
POLLS_CLOSE = datetime(2024, 2, 14, 13, 0, tzinfo=timezone(timedelta(hours=7)))


def arrival_hours(share: float) -> float:
    """Hours after polls closed by which `share` of all TPS had arrived (the inverse of NIGHT_CURVE)."""
    for (h0, s0), (h1, s1) in itertools.pairwise(NIGHT_CURVE):
        if share <= s1:
            return h0 + (h1 - h0) * (share - s0) / (s1 - s0)
    return NIGHT_CURVE[-1][0]


def shares(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """`total` votes split by weights, parts may be 0; exact sum."""
    scale = sum(weights) or 1.0
    parts = [int(total * w / scale) for w in weights]
    parts[rng.randrange(len(parts))] += total - sum(parts)
    return parts


def sign(tally: dict, secret_key: bytes, key_id: str) -> dict:
    """What a TPS device does before sending: name its key and sign the canonical form."""
    tally["key_id"] = key_id
    tally["sig"] = base64.b64encode(crypto_sign(canonical(tally), secret_key)[:crypto_sign_BYTES]).decode()
    return tally


def make_tally(
    rng: random.Random,
    tps: str,
    ballot: str,
    dpt: int,
    choices: list[str],
    revision: int,
    event_id: str,
    gateway: str,
    clock: str,
    turnout: float | None = None,
) -> dict:
    """A tally consistent with every C1 equation."""
    dptb, dpk = rng.randint(0, 4), rng.randint(0, 3)
    turnout = turnout if turnout is not None else rng.uniform(0.65, 0.92)
    voted = {"dpt": int(dpt * turnout), "dptb": rng.randint(0, dptb), "dpk": rng.randint(0, dpk)}
    used = sum(voted.values())
    invalid = min(used, int(used * rng.uniform(0.0, 0.04)))
    votes = dict(zip(choices, shares(rng, used - invalid, [rng.random() ** 2 + 0.01 for _ in choices]), strict=True))
    received = dpt + dptb + dpk + (dpt * 2 + 99) // 100
    returned = rng.randint(0, min(2, received - used))
    return {
        "schema": SCHEMA_V1,
        "event_id": event_id,
        "tps": tps,
        "ballot": ballot,
        "revision": revision,
        "submitted_at": clock,
        "gateway": gateway,
        "voters": {"registered": {"dpt": dpt, "dptb": dptb, "dpk": dpk}, "voted": voted},
        "ballots": {"received": received, "returned": returned, "unused": received - used - returned, "used": used},
        "votes": votes,
        "invalid": invalid,
    }


def forge(rng: random.Random, tally: dict, new_event_id: str, other_key: bytes, other_key_id: str) -> bytes | None:
    """An attack on a signed tally, with counts moved between choices so every C1 equation still holds:
    the same event under its old signature (BAD_SIGNATURE), a 'correction' signed with another TPS's
    device key (WRONG_TPS_KEY), or one with no signature at all (UNSIGNED). None if there is nothing
    to move."""
    forged = orjson.loads(orjson.dumps(tally))
    votes = forged["votes"]
    donors = [c for c, n in votes.items() if n > 0]
    if not donors or len(votes) < 2:
        return None
    donor = rng.choice(donors)
    taker = rng.choice([c for c in votes if c != donor])
    moved = max(1, votes[donor] // 3)
    votes[donor] -= moved
    votes[taker] += moved
    kind = rng.randrange(3)
    if kind == 0:
        return orjson.dumps(forged)  # tampered after signing: the old signature no longer verifies
    forged["event_id"], forged["revision"] = new_event_id, tally["revision"] + 1
    forged.pop("sig", None)
    forged.pop("key_id", None)
    if kind == 1:
        sign(forged, other_key, other_key_id)  # a valid signature, by the wrong TPS's device
    return orjson.dumps(forged)


def break_tally(rng: random.Random, tally: dict, secret_key: bytes | None = None) -> bytes:
    """A realistic bad submission: OCR-inflated digits, sum errors, unknown TPS, missing choices, malformed JSON.
    The device signs what it read, so a signed tally stays signed: its rejection is for its counts."""
    kind = rng.randrange(6)
    broken = orjson.loads(orjson.dumps(tally))
    choice = next(iter(broken["votes"]))
    if kind == 0:  # OCR read a leading 1 as 6: 152 -> 652
        broken["votes"][choice] += 500
    elif kind == 1:  # a digit dropped from the invalid count
        broken["invalid"] += 7
    elif kind == 2:
        broken["tps"] = broken["tps"][:10] + "999"
    elif kind == 3:
        del broken["votes"][choice]
    elif kind == 4:
        broken["ballots"]["used"] += 3
    else:
        return orjson.dumps(broken)[:-17]  # cut off in transit: not JSON
    if secret_key is not None and "key_id" in broken:
        broken.pop("sig")
        sign(broken, secret_key, broken.pop("key_id"))
    return orjson.dumps(broken)
