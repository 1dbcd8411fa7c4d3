"""Stage 2, validate: the C1 form's equations and the registry, as pure functions.

`validate_tally` returns every finding (each with its reason code and field path) and every
review flag; a tally with any finding is rejected, a flagged one is accepted and marked.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.core.contract import CATEGORIES, Tally
from streams.core.reasons import Finding, Flag, Reason, reason_codes
from streams.core.registry import Registry


@dataclass(frozen=True, slots=True)
class Verdict:
    findings: tuple[Finding, ...]
    flags: tuple[Flag, ...]

    @property
    def accepted(self) -> bool:
        return not self.findings

    @property
    def reasons(self) -> list[str]:
        """Distinct reason codes, in catalogue order."""
        return reason_codes(self.findings)


def check_equations(t: Tally) -> list[Finding]:
    findings: list[Finding] = []
    for x in CATEGORIES:
        if t.voted[x] > t.registered[x]:
            findings.append(
                Finding(
                    Reason.VOTED_EXCEEDS_REGISTERED,
                    f"$.voters.voted.{x}",
                    f"voted {t.voted[x]} > registered {t.registered[x]}",
                )
            )
    b = t.ballots
    if b["received"] != b["returned"] + b["unused"] + b["used"]:
        findings.append(
            Finding(
                Reason.BALLOTS_MISMATCH,
                "$.ballots.received",
                f"received {b['received']} != returned {b['returned']} + unused {b['unused']}"
                f" + used {b['used']} = {b['returned'] + b['unused'] + b['used']}",
            )
        )
    if t.valid + t.invalid != b["used"]:
        findings.append(
            Finding(
                Reason.VOTES_MISMATCH,
                "$.votes",
                f"sum(votes) {t.valid} + invalid {t.invalid} = {t.valid + t.invalid} != "
                f"ballots.used {b['used']}",
            )
        )
    if t.voters != b["used"]:
        findings.append(
            Finding(
                Reason.TURNOUT_MISMATCH,
                "$.voters.voted",
                f"dpt {t.voted['dpt']} + dptb {t.voted['dptb']} + dpk {t.voted['dpk']} = "
                f"{t.voters} != ballots.used {b['used']}",
            )
        )
    return findings


def check_registry(t: Tally, registry: Registry) -> list[Finding]:
    dpt = registry.dpt.get(t.tps)
    if dpt is None:
        return [Finding(Reason.UNKNOWN_TPS, "$.tps", f"{t.tps} is not in the registry")]
    findings: list[Finding] = []
    contest = registry.contest_for(t.ballot, t.tps)
    if contest is None:
        findings.append(
            Finding(Reason.BALLOT_NOT_HELD, "$.ballot", f"no {t.ballot} contest covers TPS {t.tps}")
        )
    elif t.votes.keys() != contest.choice_set:  # name each choice only when they differ
        expected = contest.choice_set
        for choice in t.votes:
            if choice not in expected:
                findings.append(
                    Finding(
                        Reason.UNKNOWN_CHOICE,
                        f"$.votes.{choice}",
                        f"not a choice of {contest.dapil}",
                    )
                )
        for choice in contest.choices:
            if choice not in t.votes:
                findings.append(
                    Finding(
                        Reason.MISSING_CHOICE,
                        f"$.votes.{choice}",
                        f"choice of {contest.dapil} is missing",
                    )
                )
    allocated = registry.allocation(t.tps, dpt)
    if t.ballots["received"] > allocated:
        basis = "the registry's allocation" if t.tps in registry.allocations else f"DPT {dpt} + 2%"
        findings.append(
            Finding(
                Reason.OVER_ALLOCATION,
                "$.ballots.received",
                f"received {t.ballots['received']} > {allocated} ({basis})",
            )
        )
    if t.registered["dpt"] != dpt:
        findings.append(
            Finding(
                Reason.REGISTERED_MISMATCH,
                "$.voters.registered.dpt",
                f"{t.registered['dpt']} != registry DPT {dpt}",
            )
        )
    return findings


def review_flags(t: Tally, dpt: int | None = None) -> list[Flag]:
    flags: list[Flag] = []
    registered = sum(t.registered.values())
    if registered and t.voters >= 0.99 * registered:
        flags.append(Flag.HIGH_TURNOUT)
    valid = t.valid
    if valid and max(t.votes.values()) >= 0.95 * valid:
        flags.append(Flag.LANDSLIDE)
    used = t.ballots["used"]
    if used and t.invalid >= 0.10 * used:
        flags.append(Flag.HIGH_INVALID)
    base = t.registered["dpt"] if dpt is None else dpt
    if used > base * 1.02:
        flags.append(Flag.OVER_DPT)
    return flags


def validate_tally(t: Tally, registry: Registry | None = None) -> Verdict:
    findings = check_equations(t)
    if registry is not None:
        findings += check_registry(t, registry)
    dpt = registry.dpt.get(t.tps) if registry is not None else None
    return Verdict(tuple(findings), tuple(review_flags(t, dpt)))


def cross_ballot_flag(ballot: str, voters: int, ppwp_voters: int | None) -> bool:
    """C1 check 7: more voters on a legislative ballot than on PPWP at the same TPS."""
    return ballot != "PPWP" and ppwp_voters is not None and voters > ppwp_voters
