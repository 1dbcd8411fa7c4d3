"""What the simulated TPS devices send: C1 tallies consistent with every equation, signed; the
broken and forged submissions a night also sees; and when they arrive (the 2024 upload curve)."""

from __future__ import annotations

import base64
import itertools
import random
from dataclasses import dataclass
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
    """Hours after polls closed by which `share` of all TPS had arrived (the inverse of
    NIGHT_CURVE)."""
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
    tally["sig"] = base64.b64encode(
        crypto_sign(canonical(tally), secret_key)[:crypto_sign_BYTES]
    ).decode()
    return tally


VoterSheet = tuple[dict[str, int], dict[str, int]]  # registered and voted: dpt, dptb, dpk


def allocation(dpt: int) -> int:
    """The ballots a TPS receives: its DPT plus 2%, rounded up (the law's allocation)."""
    return dpt + (dpt * 2 + 99) // 100


def voter_sheet(rng: random.Random, dpt: int, turnout: float | None = None) -> VoterSheet:
    """Who is registered at a TPS and who came: DPTb and DPK voters vote from what the DPT left
    unused of the allocation."""
    dptb, dpk = rng.randint(0, 4), rng.randint(0, 3)
    turnout = turnout if turnout is not None else rng.uniform(0.65, 0.92)
    received = allocation(dpt)
    voted = {"dpt": int(dpt * turnout), "dptb": rng.randint(0, dptb), "dpk": rng.randint(0, dpk)}
    voted["dptb"] = min(voted["dptb"], received - voted["dpt"])
    voted["dpk"] = min(voted["dpk"], received - voted["dpt"] - voted["dptb"])
    return {"dpt": dpt, "dptb": dptb, "dpk": dpk}, voted


def tps_sheet(seed: int, index: int, dpt: int) -> VoterSheet:
    """The voter sheet of TPS `index` on the night `seed`: the same for each of its ballots and each
    revision, drawn from a hash of the two (splitmix64), not from a Random kept per TPS (820k of
    them)."""
    x = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    dptb, dpk = x % 5, (x >> 3) % 4
    received = allocation(dpt)
    voted = {
        "dpt": int(dpt * (0.65 + 0.27 * ((x >> 8) & 0xFFFF) / 0xFFFF)),
        "dptb": (x >> 24) % (dptb + 1),
    }
    voted["dptb"] = min(voted["dptb"], received - voted["dpt"])
    voted["dpk"] = min((x >> 28) % (dpk + 1), received - voted["dpt"] - voted["dptb"])
    return {"dpt": dpt, "dptb": dptb, "dpk": dpk}, voted


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
    model: VoteModel | None = None,
    sheet: VoterSheet | None = None,
) -> dict:
    """A tally consistent with every C1 equation; legislative votes split by the contest's `model`.
    With the TPS's `sheet` (who is registered and who came), every ballot of the TPS has the same
    registered voters, and a legislative ballot no more voters than PPWP: voters moved in (DPTb)
    from another dapil get the presidential ballot only (some of them, here)."""
    sheet = sheet or voter_sheet(rng, dpt, turnout)
    registered, voted = sheet
    if ballot != "PPWP":
        voted = {**voted, "dptb": rng.randint(0, voted["dptb"])}
    dptb, dpk = registered["dptb"], registered["dpk"]
    received = allocation(dpt)
    used = sum(voted.values())
    invalid = min(used, int(used * rng.uniform(0.0, 0.04)))
    if model is None:
        votes = dict(
            zip(
                choices,
                shares(rng, used - invalid, [rng.random() ** 2 + 0.01 for _ in choices]),
                strict=True,
            )
        )
    else:
        votes = dict(zip(choices, model.votes(rng, used - invalid), strict=True))
    returned = rng.randint(0, min(2, received - used))
    return {
        "schema": SCHEMA_V1,
        "event_id": event_id,
        "tps": tps,
        "ballot": ballot,
        "revision": revision,
        "submitted_at": clock,
        "gateway": gateway,
        "voters": {"registered": {"dpt": dpt, "dptb": dptb, "dpk": dpk}, "voted": dict(voted)},
        "ballots": {
            "received": received,
            "returned": returned,
            "unused": received - used - returned,
            "used": used,
        },
        "votes": votes,
        "invalid": invalid,
    }


def forge(
    rng: random.Random, tally: dict, new_event_id: str, other_key: bytes, other_key_id: str
) -> bytes | None:
    """An attack on a signed tally, with counts moved between choices so every C1 equation still
    holds: the same event under its old signature (BAD_SIGNATURE), a 'correction' signed with
    another TPS's device key (WRONG_TPS_KEY), or one with no signature at all (UNSIGNED). None if
    there is nothing to move."""
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
    """A realistic bad submission: OCR-inflated digits, sum errors, unknown TPS, missing choices,
    malformed JSON. The device signs what it read, so a signed tally stays signed: its rejection is
    for its counts."""
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


# The 2024 DPR national result (reference file) by party number, in percent: eight parties above 4%,
# PPP (17) just under it, so the threshold matters.
PARTY_SHARES_2024 = {
    1: 10.62, 2: 13.22, 3: 16.72, 4: 15.29, 5: 9.66, 6: 0.64, 7: 0.84, 8: 8.42, 9: 0.22, 10: 0.72,
    11: 0.27, 12: 7.24, 13: 0.32, 14: 7.43, 15: 2.81, 16: 1.29, 17: 3.87, 24: 0.42,
}  # fmt: skip
LOCAL_PARTY_SHARE = 1.5  # each of Aceh's six local parties (P18..P23), where they stand
PARTY_ONLY = 0.3  # the part of a party's votes cast for the party alone, not one of its candidates


@dataclass(frozen=True)
class VoteModel:
    """How the valid votes of one legislative contest split: a weight per party (its 2024 national
    share times a factor of the province), and each choice's part of its party's votes (the party
    column `PARTY_ONLY`, its candidates skewed: a few take most). DPD candidates are parties of
    one."""

    # (first, end, weight): a party's slice of the choices
    parties: tuple[tuple[int, int, float], ...]
    within: tuple[float, ...]  # per choice, its part of its party's votes

    def votes(self, rng: random.Random, valid: int) -> list[int]:
        """One TPS's votes per choice, `valid` in all; each party's weight varies by TPS. Rounded
        along the running sum (each count within one of its exact share, the total exact), not
        sorted: a national five-ballot night draws 3.4M of these."""
        weights = [weight * rng.lognormvariate(0, 0.3) for _, _, weight in self.parties]
        per_weight = valid / (sum(weights) or 1.0)
        within = self.within
        counts: list[int] = []
        running, rounded = 0.0, 0
        for (first, end, _), weight in zip(self.parties, weights, strict=True):
            party = weight * per_weight
            for i in range(first, end):
                running += party * within[i]
                now = int(running + 0.5)
                counts.append(now - rounded)
                rounded = now
        counts[-1] += valid - rounded  # what floating point rounding left over
        return counts


def vote_model(contest: dict, seed: int, province: str) -> VoteModel | None:
    """The vote model of a legislative contest in a province (None for PPWP: pairs keep their draw).
    Deterministic from the seed: a province's party factors are shared by its contests."""
    if contest["ballot"] == "PPWP":
        return None
    regional = random.Random(f"tally-parties:{seed}:{province}")
    factors = [regional.lognormvariate(0, 0.35) for _ in range(30)]
    skew = random.Random(f"tally-candidates:{seed}:{contest['ballot']}:{contest['dapil']}")
    codes = [c["code"] for c in contest["choices"]]
    if contest["ballot"] == "DPD":
        within = _skewed(skew, len(codes))
        return VoteModel(
            tuple((i, i + 1, within[i]) for i in range(len(codes))), (1.0,) * len(codes)
        )
    parties: list[tuple[int, int, float]] = []
    within_party: list[float] = []
    first = 0
    for end in range(1, len(codes) + 1):
        # the next party's own column starts a new party
        if end == len(codes) or "." not in codes[end]:
            number = int(codes[first][1:3])
            share = PARTY_SHARES_2024.get(number, LOCAL_PARTY_SHARE)
            parties.append((first, end, share * factors[number - 1]))
            candidates = _skewed(skew, end - first - 1)
            within_party += [PARTY_ONLY if candidates else 1.0] + [
                (1 - PARTY_ONLY) * c for c in candidates
            ]
            first = end
    return VoteModel(tuple(parties), tuple(within_party))


def _skewed(rng: random.Random, n: int) -> list[float]:
    """`n` parts summing to 1, a few large and many small (rank^-1.5), the ranks in a random
    order."""
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    weights = [rank**-1.5 for rank in ranks]
    scale = sum(weights) or 1.0
    return [w / scale for w in weights]
