"""The yardstick a bench's CPU figures are set against: one Ed25519 verification, alone.

`tally bench` measures it before and after its run (the same library the workers use, libsodium
through PyNaCl, on a message the size of the night's signed forms) and keeps the smallest of its
rounds: a yardstick measured while the box is loaded, or inside the workers' own timing, rises with
the load and flatters every "x verify".
"""

from __future__ import annotations

import time

from nacl.bindings import crypto_sign_open
from nacl.signing import SigningKey

ROUNDS = 7
PER_ROUND = 2000


def verification_us(size: int, rounds: int = ROUNDS, per_round: int = PER_ROUND) -> float:
    """Microseconds one verification of a signed `size`-byte message takes (best round, mean)."""
    key = SigningKey.generate()
    signed = bytes(key.sign(b"x" * size))
    public = bytes(key.verify_key)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(per_round):
            crypto_sign_open(signed, public)
        best = min(best, (time.perf_counter() - started) / per_round)
    return round(1e6 * best, 1)
