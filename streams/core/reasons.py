"""The one catalogue of reason codes (rejections), review flags and decisions.

Kept apart, as in Kiesraad Abacus: a data error (the input cannot be read as a tally), a rule
that says no (a C1 equation or the registry), and a flag that accepts but asks for review.
Each member's docstring is the rule it stands for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a tally is rejected. A rejected event lists every code that applies."""

    MALFORMED = "MALFORMED"
    """Data error: the message is not a UTF-8 JSON object, or is larger than 64 KiB."""
    SCHEMA = "SCHEMA"
    """Data error: a field is missing, unknown, of the wrong type, or out of range (tally.v1)."""
    KEY_MISMATCH = "KEY_MISMATCH"
    """Data error: the Kafka message key is not the event's `tps`. The key names the partition where
    an event is decided, its TPS's home (`core.placement`); a tally keyed otherwise would be decided
    beside another TPS's state, not its own, and could be counted twice."""
    UNSIGNED = "UNSIGNED"
    """Authenticity: no `sig` and `key_id` while the deployment requires signatures
    (TALLY_REQUIRE_SIGNATURES), or only one of the two."""
    UNKNOWN_KEY = "UNKNOWN_KEY"
    """Authenticity: `key_id` is not a device key of the registry."""
    WRONG_TPS_KEY = "WRONG_TPS_KEY"
    """Authenticity: `key_id` is the key of another TPS: one device may only speak for its own
    TPS."""
    REVOKED_KEY = "REVOKED_KEY"
    """Authenticity: the key was revoked (registry `revoked_at`) before the gateway received the
    event."""
    EXPIRED_KEY = "EXPIRED_KEY"
    """Authenticity: the signed `submitted_at` lies outside the key's validity (`valid_from`,
    `valid_until`)."""
    BAD_SIGNATURE = "BAD_SIGNATURE"
    """Authenticity: `sig` does not verify over the canonical form of the event under its key: the
    event was altered after signing (or signed wrongly)."""
    UNKNOWN_TPS = "UNKNOWN_TPS"
    """Registry: `tps` is not a TPS of the registry."""
    BALLOT_NOT_HELD = "BALLOT_NOT_HELD"
    """Registry: no contest of this ballot covers this TPS (e.g. DPRD_KAB in DKI Jakarta)."""
    UNKNOWN_CHOICE = "UNKNOWN_CHOICE"
    """Registry: a key of `votes` is not a choice of the TPS's contest."""
    MISSING_CHOICE = "MISSING_CHOICE"
    """Registry: a choice of the TPS's contest is absent from `votes`."""
    OVER_ALLOCATION = "OVER_ALLOCATION"
    """Registry: ballots.received exceeds the ballots the TPS was allocated: its DPT plus 2%,
    rounded up (UU 7/2017 Pasal 350(3)), or the registry's `ballots` where KPU allocated more. No
    TPS can count more voters than it had ballots, whoever signed the form: this bounds what one
    stolen device key can add to the totals."""
    REGISTERED_MISMATCH = "REGISTERED_MISMATCH"
    """Registry: voters.registered.dpt != the registry's DPT for this TPS."""
    VOTED_EXCEEDS_REGISTERED = "VOTED_EXCEEDS_REGISTERED"
    """C1 eq. 2: voters.voted.x <= voters.registered.x for x in dpt, dptb, dpk."""
    BALLOTS_MISMATCH = "BALLOTS_MISMATCH"
    """C1 eq. 5: ballots.received = ballots.returned + ballots.unused + ballots.used."""
    VOTES_MISMATCH = "VOTES_MISMATCH"
    """C1 eqs. 3-4: sum(votes) + invalid = ballots.used."""
    TURNOUT_MISMATCH = "TURNOUT_MISMATCH"
    """C1 eqs. 1, 4: voted.dpt + voted.dptb + voted.dpk = ballots.used."""


class Flag(StrEnum):
    """Accepted, counted, but marked for review (stored with the decision and shown)."""

    HIGH_TURNOUT = "HIGH_TURNOUT"
    """Turnout >= 99%: sum(voted) >= 0.99 * sum(registered)."""
    LANDSLIDE = "LANDSLIDE"
    """One choice has >= 95% of the valid votes (and valid > 0)."""
    HIGH_INVALID = "HIGH_INVALID"
    """invalid >= 10% of ballots.used (and used > 0)."""
    OVER_DPT = "OVER_DPT"
    """KawalPemilu's rule: total votes (ballots.used) > registered DPT x 1.02."""
    MORE_THAN_PPWP = "MORE_THAN_PPWP"
    """C1 check 7: a legislative ballot has more voters than the PPWP ballot at the same TPS."""


class Decision(StrEnum):
    """What happened to one event, per (TPS, ballot); see the state diagram in
    docs/wire-format.md."""

    APPLIED = "applied"
    """A first count, or a higher revision: totals move by (new - old)."""
    DUPLICATE = "duplicate"
    """The same event_id as one already decided for this TPS and ballot: dropped, counted."""
    STALE = "stale"
    """A revision lower than the applied one: dropped, stored for audit."""
    CONFLICT = "conflict"
    """The same revision as the applied one with different counts: rejected; totals keep the
    first."""
    REJECTED = "rejected"
    """A reason code applies: never counted; stored with the raw payload."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: which code, which field, and the values a person needs to fix it."""

    reason: Reason
    path: str
    detail: str

    def as_text(self) -> str:
        return f"{self.reason}: {self.path}: {self.detail}"


def reason_codes(findings: Iterable[Finding]) -> list[str]:
    """The distinct reason codes of these findings, in catalogue order."""
    found = {f.reason for f in findings}
    return [r.value for r in Reason if r in found]
