"""The gateways' side, simulated: a deterministic registry of N TPS, one C1 tally per (TPS, ballot),
and the exact truth those tallies must add up to.

The shape follows Pemilu 2024 (../shared/reference/pemilu-2024.md): 38 provinces weighted by their
real TPS counts (approximate), ~1,596 TPS per regency, ~113 per district, ~9.8 per village, DPT <= 300,
3 presidential pairs, 18 national parties (+6 local ones in Aceh on DPRD ballots), no DPRD_KAB in
DKI Jakarta. Everything derives from `random.Random(seed)`: the same arguments give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import io
import itertools
import random
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, NamedTuple

import orjson
from nacl.bindings import crypto_sign, crypto_sign_BYTES, crypto_sign_seed_keypair

from streams.contract import BALLOTS, SCHEMA_V1
from streams.regions import NATIONAL, REGION_LEVELS, region_of
from streams.signatures import canonical

# (code, name, approximate TPS in 2024): the weights of the provinces.
PROVINCES = [
    ("11", "Aceh", 16046),
    ("12", "Sumatera Utara", 45875),
    ("13", "Sumatera Barat", 17569),
    ("14", "Riau", 19366),
    ("15", "Jambi", 11160),
    ("16", "Sumatera Selatan", 25462),
    ("17", "Bengkulu", 6108),
    ("18", "Lampung", 25825),
    ("19", "Kepulauan Bangka Belitung", 4418),
    ("21", "Kepulauan Riau", 7812),
    ("31", "DKI Jakarta", 29565),
    ("32", "Jawa Barat", 140457),
    ("33", "Jawa Tengah", 117299),
    ("34", "DI Yogyakarta", 11895),
    ("35", "Jawa Timur", 120666),
    ("36", "Banten", 33324),
    ("51", "Bali", 12404),
    ("52", "Nusa Tenggara Barat", 16222),
    ("53", "Nusa Tenggara Timur", 16824),
    ("61", "Kalimantan Barat", 15899),
    ("62", "Kalimantan Tengah", 8314),
    ("63", "Kalimantan Selatan", 11617),
    ("64", "Kalimantan Timur", 11323),
    ("65", "Kalimantan Utara", 2339),
    ("71", "Sulawesi Utara", 7126),
    ("72", "Sulawesi Tengah", 9182),
    ("73", "Sulawesi Selatan", 26043),
    ("74", "Sulawesi Tenggara", 7928),
    ("75", "Gorontalo", 3393),
    ("76", "Sulawesi Barat", 4080),
    ("81", "Maluku", 5829),
    ("82", "Maluku Utara", 4131),
    ("91", "Papua", 3825),
    ("92", "Papua Barat", 2815),
    ("93", "Papua Selatan", 1770),
    ("94", "Papua Tengah", 5537),
    ("95", "Papua Pegunungan", 5613),
    ("96", "Papua Barat Daya", 2500),
]
PAIRS = [
    ("01", "Anies Baswedan - Muhaimin Iskandar"),
    ("02", "Prabowo Subianto - Gibran Rakabuming Raka"),
    ("03", "Ganjar Pranowo - Mahfud MD"),
]
NATIONAL_PARTIES = 18
ACEH_LOCAL_PARTIES = 6
DKI = "31"
# Cumulative share of TPS uploaded (Sirekap 2024, presidential) by hours after polls closed at 13:00
# WIB on 14 February: 7.27% by 19:00, 42.5% by 12:00 next day, 54.9% day 3, 72.0% day 6; the rest
# is spread to day 15 here so that every TPS arrives.
NIGHT_CURVE = ((0.0, 0.0), (6.0, 0.0727), (23.0, 0.425), (47.0, 0.549), (119.0, 0.72), (336.0, 1.0))
POLLS_CLOSE = datetime(2024, 2, 14, 13, 0, tzinfo=timezone(timedelta(hours=7)))
# Device keys are issued for the count: from election day to the end of the national recap (20 March).
KEYS_VALID_FROM = "2024-02-14T00:00:00+07:00"
KEYS_VALID_UNTIL = "2024-03-21T00:00:00+07:00"


def arrival_hours(share: float) -> float:
    """Hours after polls closed by which `share` of all TPS had arrived (the inverse of NIGHT_CURVE)."""
    for (h0, s0), (h1, s1) in itertools.pairwise(NIGHT_CURVE):
        if share <= s1:
            return h0 + (h1 - h0) * (share - s0) / (s1 - s0)
    return NIGHT_CURVE[-1][0]


ACEH = "11"


def split(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, each part >= 1 (largest remainders get the rest)."""
    k = len(weights)
    if total < k:
        raise ValueError(f"cannot split {total} into {k} non-empty parts")
    spare = total - k
    scale = sum(weights)
    raw = [spare * w / scale for w in weights]
    parts = [int(r) for r in raw]
    order = sorted(range(k), key=lambda i: raw[i] - parts[i], reverse=True)
    for i in order[: spare - sum(parts)]:
        parts[i] += 1
    return [p + 1 for p in parts]


def shares(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """`total` votes split by weights, parts may be 0; exact sum."""
    scale = sum(weights) or 1.0
    parts = [int(total * w / scale) for w in weights]
    parts[rng.randrange(len(parts))] += total - sum(parts)
    return parts


@dataclass
class Shape:
    """The registry being built: regions (code -> (name, level, parent)), TPS codes and DPT."""

    regions: list[tuple[str, str, str, str]] = field(default_factory=list)  # code, name, level, parent
    tps: list[str] = field(default_factory=list)
    dpt: list[int] = field(default_factory=list)
    contests: list[dict] = field(default_factory=list)
    seed: int = 0
    # Device secret keys (libsodium's 64 bytes: seed + public key), made on first use, by TPS index.
    _secret_keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    def secret_key(self, index: int) -> bytes:
        found = self._secret_keys.get(index)
        if found is None:
            found = self._secret_keys[index] = device_secret_key(self.seed, self.tps[index])
        return found


def device_secret_key(seed: int, tps: str) -> bytes:
    """The Ed25519 key of a simulated TPS device, derived from the seed: the same run, the same keys."""
    return crypto_sign_seed_keypair(hashlib.blake2b(f"tally-device:{seed}:{tps}".encode(), digest_size=32).digest())[1]


def key_id_of(tps: str) -> str:
    return f"{tps}.1"


def sign(tally: dict, secret_key: bytes, key_id: str) -> dict:
    """What a TPS device does before sending: name its key and sign the canonical form."""
    tally["key_id"] = key_id
    tally["sig"] = base64.b64encode(crypto_sign(canonical(tally), secret_key)[:crypto_sign_BYTES]).decode()
    return tally


# The 2024 registry (pemilu-2024.md): what a night of this many TPS is built to, exactly; a smaller
# night scales every count down in proportion (each parent keeps at least one child).
TPS_2024 = 820_161
REGIONS_2024 = {"regency": 514, "district": 7_277, "village": 83_731}
DAPILS_2024 = {"DPR": 84, "DPRD_PROV": 301, "DPRD_KAB": 2_325}  # DKI Jakarta holds no DPRD_KAB dapil
CODE_DIGITS = {"regency": (2, 1), "district": (2, 1), "village": (4, 2001)}  # digits, first number


def _scaled(count_2024: int, n_tps: int, floor: int) -> int:
    return max(floor, round(count_2024 * n_tps / TPS_2024))


def _allot(total: int, sizes: list[int], caps: list[int]) -> list[int]:
    """`total` children shared among parents in proportion to their `sizes`, each at least one and at
    most its cap; what a cap cut off goes to the others (largest remainders, so the sum is exact
    unless every parent is full)."""
    counts = split(max(total, len(sizes)), [float(s) for s in sizes])
    counts = [min(c, cap) for c, cap in zip(counts, caps, strict=True)]
    spare = total - sum(counts)
    for i in sorted(range(len(sizes)), key=lambda i: sizes[i] / counts[i], reverse=True):
        if spare <= 0:
            break
        more = min(spare, caps[i] - counts[i])
        counts[i] += more
        spare -= more
    return counts


def _level(rng: random.Random, parents: list[tuple[str, int]], level: str, n_tps: int) -> list[list[tuple[str, int]]]:
    """The children of each (code, TPS count) parent: as many in all as 2024 had at this scale,
    shared by TPS, and the parent's TPS split among them with skewed (lognormal) weights."""
    digits, first = CODE_DIGITS[level]
    caps = [min(tps, 10**digits - first) for _, tps in parents]
    counts = _allot(_scaled(REGIONS_2024[level], n_tps, len(parents)), [tps for _, tps in parents], caps)
    children = []
    for (code, tps), count in zip(parents, counts, strict=True):
        weights = [rng.lognormvariate(0, 0.5) for _ in range(count)]
        children.append([(f"{code}{first + i:0{digits}d}", n) for i, n in enumerate(split(tps, weights))])
    return children


def build_shape(n_tps: int, seed: int, ballots: tuple[str, ...] = BALLOTS) -> Shape:
    """The registry of a night of `n_tps` TPS: at 820,161 exactly 2024's 38 provinces, 514 regencies,
    7,277 districts and 83,731 villages, and its dapils (`_dapil_counts`)."""
    rng = random.Random(seed)
    shape = Shape(seed=seed)
    shape.regions.append((NATIONAL, "Indonesia", "national", ""))
    provinces = PROVINCES[: min(len(PROVINCES), n_tps)]
    province_tps = list(zip((code for code, _, _ in provinces), split(n_tps, [w for _, _, w in provinces]), strict=True))
    regencies = _level(rng, province_tps, "regency", n_tps)
    districts = _level(rng, [r for rs in regencies for r in rs], "district", n_tps)
    villages = iter(_level(rng, [d for ds in districts for d in ds], "village", n_tps))
    by_regency = iter(districts)
    district_codes: dict[str, list[str]] = {}
    for (pcode, pname, _), province_regencies in zip(provinces, regencies, strict=True):
        shape.regions.append((pcode, pname, "province", NATIONAL))
        for rcode, _ in province_regencies:
            shape.regions.append((rcode, f"Kabupaten/Kota {rcode}", "regency", pcode))
            district_codes[rcode] = []
            for dcode, _ in next(by_regency):
                shape.regions.append((dcode, f"Kecamatan {dcode}", "district", rcode))
                district_codes[rcode].append(dcode)
                for vcode, vtps in next(villages):
                    shape.regions.append((vcode, f"Desa {vcode}", "village", dcode))
                    for t in range(1, min(vtps, 999) + 1):
                        shape.tps.append(f"{vcode}{t:03d}")
                        shape.dpt.append(max(50, 300 - int(abs(rng.gauss(0, 60)))))
    dapils = _dapil_counts(province_tps, regencies, district_codes, n_tps)
    for (pcode, pname, _), province_regencies in zip(provinces, regencies, strict=True):
        codes = [r for r, _ in province_regencies]
        shape.contests += _contests(rng, pcode, pname, codes, district_codes, ballots, dapils)
    if "PPWP" in ballots:
        shape.contests.insert(0, _ppwp_contest())
    return shape


def _dapil_counts(
    province_tps: list[tuple[str, int]], regencies: list[list[tuple[str, int]]], districts: dict[str, list[str]], n_tps: int
) -> dict[str, int]:
    """How many dapils each province (DPR, DPRD_PROV) or regency (DPRD_KAB) holds: 2024's totals at this
    scale, shared by TPS. A dapil is a set of regencies (of districts for DPRD_KAB), so a province holds
    at most as many as it has regencies."""
    counts: dict[str, int] = {}
    sizes = [tps for _, tps in province_tps]
    caps = [len(rs) for rs in regencies]
    for ballot in ("DPR", "DPRD_PROV"):
        total = _scaled(DAPILS_2024[ballot], n_tps, len(sizes))
        for (pcode, _), n in zip(province_tps, _allot(total, sizes, caps), strict=True):
            counts[f"{ballot}-{pcode}"] = n
    outside_dki = [(r, tps) for (pcode, _), rs in zip(province_tps, regencies, strict=True) if pcode != DKI for r, tps in rs]
    if outside_dki:
        total = _scaled(DAPILS_2024["DPRD_KAB"], n_tps, len(outside_dki))
        allotted = _allot(total, [tps for _, tps in outside_dki], [len(districts[r]) for r, _ in outside_dki])
        for (rcode, _), n in zip(outside_dki, allotted, strict=True):
            counts[f"DPRD_KAB-{rcode}"] = n
    return counts


def build_shape_on(regions: list[dict], n_tps: int, seed: int, ballots: tuple[str, ...] = BALLOTS) -> Shape:
    """TPS and contests synthesized onto real regions (from `tally registry import-kemendagri`)."""
    rng = random.Random(seed)
    shape = Shape(seed=seed)
    villages = [r for r in regions if r["level"] == "village"]
    if not villages:
        raise ValueError("the region list has no villages (10-digit codes) to put TPS in")
    chosen = villages if n_tps >= len(villages) else sorted(rng.sample(villages, n_tps), key=lambda r: r["code"])
    keep = {r["code"] for r in chosen}
    for village in chosen:  # keep only the regions that hold a chosen village
        code = village["code"]
        keep.update({NATIONAL, code[:2], code[:4], code[:6]})
    shape.regions = [(r["code"], r["name"], r["level"], r["parent"]) for r in regions if r["code"] in keep]
    for village, count in zip(chosen, split(n_tps, [rng.lognormvariate(0, 0.5) for _ in chosen]), strict=True):
        for t in range(1, min(count, 999) + 1):
            shape.tps.append(f"{village['code']}{t:03d}")
            shape.dpt.append(max(50, 300 - int(abs(rng.gauss(0, 60)))))
    for pcode, pname, _, _ in (r for r in shape.regions if r[2] == "province"):
        regencies = [r[0] for r in shape.regions if r[2] == "regency" and r[3] == pcode]
        districts = {r: [d[0] for d in shape.regions if d[2] == "district" and d[3] == r] for r in regencies}
        shape.contests += _contests(rng, pcode, pname, regencies, districts, ballots)
    if "PPWP" in ballots:
        shape.contests.insert(0, _ppwp_contest())
    return shape


def _ppwp_contest() -> dict:
    return {
        "type": "contest",
        "ballot": "PPWP",
        "dapil": "PPWP",
        "name": "Presiden dan Wakil Presiden",
        "regions": [NATIONAL],
        "choices": [{"code": c, "name": n} for c, n in PAIRS],
    }


def _party_choices(rng: random.Random, parties: int, seats: int) -> list[dict]:
    choices = []
    for p in range(1, parties + 1):
        choices.append({"code": f"P{p:02d}", "name": f"Partai {p:02d}"})
        choices += [{"code": f"P{p:02d}.{c:02d}", "name": f"Calon {p:02d}.{c:02d}"} for c in range(1, seats + 1)]
    return choices


def _dapils(regions: list[str], count: int) -> list[list[str]]:
    count = max(1, min(count, len(regions)))
    size = len(regions) / count
    return [regions[int(i * size) : int((i + 1) * size)] for i in range(count)]


def _contests(
    rng: random.Random,
    pcode: str,
    pname: str,
    regencies: list[str],
    districts: dict[str, list[str]],
    ballots: tuple[str, ...],
    dapils: dict[str, int] | None = None,
) -> list[dict]:
    """Contests of one province. `dapils` says how many each province or regency holds (`_dapil_counts`);
    without it (real regions, `build_shape_on`) the counts follow 2024's ratios to regencies and districts."""
    dapils = dapils or {}
    contests: list[dict] = []
    local = ACEH_LOCAL_PARTIES if pcode == ACEH else 0
    if "DPR" in ballots:
        for i, regions in enumerate(_dapils(regencies, dapils.get(f"DPR-{pcode}", len(regencies) // 6)), 1):
            contests.append(
                {
                    "type": "contest",
                    "ballot": "DPR",
                    "dapil": f"DPR-{pcode}-{i:02d}",
                    "name": f"{pname} {i}",
                    "regions": regions,
                    "choices": _party_choices(rng, NATIONAL_PARTIES, rng.randint(3, 10)),
                }
            )
    if "DPD" in ballots:
        contests.append(
            {
                "type": "contest",
                "ballot": "DPD",
                "dapil": f"DPD-{pcode}",
                "name": pname,
                "regions": [pcode],
                "choices": [{"code": f"D{c:02d}", "name": f"Calon DPD {c:02d}"} for c in range(1, rng.randint(10, 25) + 1)],
            }
        )
    if "DPRD_PROV" in ballots:
        for i, regions in enumerate(_dapils(regencies, dapils.get(f"DPRD_PROV-{pcode}", round(len(regencies) * 301 / 514))), 1):
            contests.append(
                {
                    "type": "contest",
                    "ballot": "DPRD_PROV",
                    "dapil": f"DPRDP-{pcode}-{i:02d}",
                    "name": f"{pname} {i}",
                    "regions": regions,
                    "choices": _party_choices(rng, NATIONAL_PARTIES + local, rng.randint(3, 12)),
                }
            )
    if "DPRD_KAB" in ballots and pcode != DKI:  # DKI Jakarta elects no DPRD kab/kota
        for rcode in regencies:
            own = districts.get(rcode) or [rcode]
            for i, regions in enumerate(_dapils(own, dapils.get(f"DPRD_KAB-{rcode}", round(len(own) * 2325 / 7277))), 1):
                contests.append(
                    {
                        "type": "contest",
                        "ballot": "DPRD_KAB",
                        "dapil": f"DPRDK-{rcode}-{i:02d}",
                        "name": f"Kab/Kota {rcode} {i}",
                        "regions": regions,
                        "choices": _party_choices(rng, NATIONAL_PARTIES + local, rng.randint(3, 12)),
                    }
                )
    return contests


def registry_records(shape: Shape) -> Iterator[dict]:
    for code, name, level, parent in shape.regions:
        yield {"type": "region", "code": code, "name": name, "level": level, "parent": parent}
    for code, dpt in zip(shape.tps, shape.dpt, strict=True):
        yield {"type": "tps", "code": code, "dpt": dpt}
    yield from shape.contests
    for index, code in enumerate(shape.tps):
        yield {
            "type": "key",
            "key_id": key_id_of(code),
            "tps": code,
            "public_key": base64.b64encode(shape.secret_key(index)[32:]).decode(),
            "valid_from": KEYS_VALID_FROM,
            "valid_until": KEYS_VALID_UNTIL,
        }


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


WHOLE_LEVELS = ("national", "province", "regency")  # a truth line each; finer levels a line per province


class TruthEntry(NamedTuple):
    """The last applied tally of one (ballot, TPS), kept small: five ballots are 4.1M of them."""

    event_id: str
    choices: tuple[str, ...]  # shared by every TPS of a contest
    counts: array  # 'H': a count is at most a TPS's DPT (<= 300); 2 bytes, not a Python int each
    invalid: int


def _add(into: dict, votes: Iterable[tuple[str, int]], invalid: int, reported: int) -> None:
    summed = into["votes"]
    for choice, n in votes:
        summed[choice] = summed.get(choice, 0) + n
    into["invalid"] += invalid
    into["tps_reported"] += reported


@dataclass
class Truth:
    """Exact expected results: per ballot and level, region -> votes, invalid, tps_reported, tps_total."""

    current: dict[tuple[str, str], TruthEntry] = field(default_factory=dict)
    tps_total: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def record(self, tally: dict, choices: tuple[str, ...]) -> None:
        votes = tally["votes"]
        self.current[(tally["ballot"], tally["tps"])] = TruthEntry(
            tally["event_id"], choices, array("H", [votes[c] for c in choices]), tally["invalid"]
        )

    def write_lines(self, fh: IO[bytes]) -> None:
        """The truth as JSON lines, one group of regions a line: {"ballot", "level", "scope", "regions":
        {code: {votes, invalid, tps_reported[, tps_total]}}}. National, province and regency come whole
        (scope ""); district, village and TPS one province at a time (scope = its code), so that
        `verify` never holds more than a province of TPS (five ballots are 4.1M of them).

        Summed a province at a time too (`_province`), and its districts into the whole levels, which
        are all that outlives a province (~550 regions)."""
        for ballot in sorted({ballot for ballot, _ in self.current}):
            whole: dict[str, dict[str, dict]] = {level: {} for level in WHOLE_LEVELS}
            codes = sorted(tps for b, tps in self.current if b == ballot)
            for province, in_province in itertools.groupby(codes, key=lambda tps: tps[:2]):
                tps_regions, fine = self._province(ballot, in_province)
                for code, district in fine["district"].items():
                    for level in WHOLE_LEVELS:
                        into = self._region(whole[level], ballot, level, region_of(code, level))
                        _add(into, district["votes"].items(), district["invalid"], district["tps_reported"])
                for level in ("district", "village"):
                    regions = dict(sorted(fine[level].items()))
                    fh.write(orjson.dumps({"ballot": ballot, "level": level, "scope": province, "regions": regions}) + b"\n")
                fh.write(orjson.dumps({"ballot": ballot, "level": "tps", "scope": province, "regions": tps_regions}) + b"\n")
            for level in WHOLE_LEVELS:
                regions = dict(sorted(whole[level].items()))
                fh.write(orjson.dumps({"ballot": ballot, "level": level, "scope": "", "regions": regions}) + b"\n")

    def _region(self, regions: dict[str, dict], ballot: str, level: str, code: str) -> dict:
        """The running sum of one region in `regions`, started empty with its TPS total."""
        if code not in regions:
            total = self.tps_total.get((ballot, level, code), 0)
            regions[code] = {"votes": {}, "invalid": 0, "tps_reported": 0, "tps_total": total}
        return regions[code]

    def _province(self, ballot: str, codes: Iterable[str]) -> tuple[dict[str, dict], dict[str, dict[str, dict]]]:
        """One province's TPS, villages and districts of a ballot. TPS are summed into villages as
        count vectors (a village lies in one dapil, so its TPS share one choice tuple)."""
        tps_regions: dict[str, dict] = {}
        villages: dict[tuple[str, tuple[str, ...]], list] = {}  # (village, choices) -> [counts, invalid, reported]
        for tps in codes:
            entry = self.current[(ballot, tps)]
            votes = dict(zip(entry.choices, entry.counts, strict=True))
            tps_regions[tps] = {"votes": votes, "invalid": entry.invalid, "tps_reported": 1}
            summed = villages.get((tps[:10], entry.choices))
            if summed is None:
                villages[(tps[:10], entry.choices)] = [list(entry.counts), entry.invalid, 1]
            else:
                summed[0] = [a + b for a, b in zip(summed[0], entry.counts, strict=True)]
                summed[1] += entry.invalid
                summed[2] += 1
        fine: dict[str, dict[str, dict]] = {"district": {}, "village": {}}
        for (village, choices), (counts, invalid, reported) in villages.items():
            for level in ("village", "district"):
                into = self._region(fine[level], ballot, level, region_of(village, level))
                _add(into, zip(choices, counts, strict=True), invalid, reported)
        return tps_regions, fine

    def groups(self) -> list[dict]:
        """The lines of `write_lines`, decoded (for tests and small runs)."""
        buffer = io.BytesIO()
        self.write_lines(buffer)
        return [orjson.loads(line) for line in buffer.getvalue().splitlines()]

    def as_json(self) -> dict:
        return merge_truth(self.groups())


def merge_truth(groups: Iterable[dict]) -> dict:
    """{"ballots": {ballot: {level: {region: ...}}}}: truth groups merged (for tests and small runs)."""
    merged: dict = {"ballots": {}}
    for group in groups:
        merged["ballots"].setdefault(group["ballot"], {}).setdefault(group["level"], {}).update(group["regions"])
    return merged


def tps_totals(shape: Shape, ballots: tuple[str, ...]) -> dict[tuple[str, str, str], int]:
    """How many TPS hold each ballot in each region (a TPS holds a ballot if a contest covers it)."""
    covered: dict[str, set[str]] = {b: set() for b in ballots}
    for contest in shape.contests:
        if contest["ballot"] in covered:
            covered[contest["ballot"]].update(contest["regions"])
    totals: dict[tuple[str, str, str], int] = {}
    for tps in shape.tps:
        prefixes = (NATIONAL, tps[:2], tps[:4], tps[:6], tps[:10], tps)
        for ballot in ballots:
            if not covered[ballot].isdisjoint(prefixes):
                for level in REGION_LEVELS:
                    key = (ballot, level, region_of(tps, level))
                    totals[key] = totals.get(key, 0) + 1
    return totals


@dataclass(frozen=True)
class Plan:
    n_tps: int
    seed: int
    ballots: tuple[str, ...] = ("PPWP",)
    duplicates: float = 0.0
    corrections: float = 0.0
    invalid: float = 0.0
    forged: float = 0.0  # share of (TPS, ballot) that also get a forged event (never counted)
    signed: bool = True  # devices sign their tallies


def generate(plan: Plan, shape: Shape | None = None) -> tuple[Shape, Iterator[bytes], Truth]:
    """The registry, the event stream (JSON bytes, in arrival order), and the truth (complete once the stream is drained)."""
    shape = shape or build_shape(plan.n_tps, plan.seed, plan.ballots)
    truth = Truth(tps_total=tps_totals(shape, plan.ballots))

    def events() -> Iterator[bytes]:
        rng = random.Random(plan.seed * 7919 + 1)
        choices_of: dict[tuple[str, str], tuple[str, ...]] = {}
        by_region = {(c["ballot"], r): tuple(x["code"] for x in c["choices"]) for c in shape.contests for r in c["regions"]}

        def choices(ballot: str, tps: str) -> tuple[str, ...] | None:
            key = (ballot, tps[:6])  # a DPRD kab/kota dapil is a set of districts
            if key not in choices_of:
                for prefix in (NATIONAL, tps[:2], tps[:4], tps[:6]):
                    if (ballot, prefix) in by_region:
                        choices_of[key] = by_region[(ballot, prefix)]
                        break
                else:
                    choices_of[key] = None  # type: ignore[assignment]
            return choices_of[key]

        order = [(i, b) for i in range(len(shape.tps)) for b in plan.ballots if choices(b, shape.tps[i]) is not None]
        rng.shuffle(order)
        later: list[tuple[int, int, bytes]] = []  # heap of (release position, seq, event): late resends and corrections
        seq = 0
        for position, (i, ballot) in enumerate(order):
            while later and later[0][0] <= position:
                yield heapq.heappop(later)[2]
            tps = shape.tps[i]
            contest_choices = choices(ballot, tps)
            seq += 1
            gateway = f"gw-{tps[:2]}-{int(tps[2:4]) % 4 + 1:02d}"
            arrived = POLLS_CLOSE + timedelta(hours=arrival_hours(position / max(1, len(order))))
            clock = arrived.isoformat(timespec="seconds")
            tally = make_tally(rng, tps, ballot, shape.dpt[i], contest_choices, 1, f"{gateway}:{seq:08d}", gateway, clock)
            if plan.signed:
                sign(tally, shape.secret_key(i), key_id_of(tps))
            if plan.invalid and rng.random() < plan.invalid:
                yield break_tally(rng, tally, shape.secret_key(i) if plan.signed else None)  # never counted
                continue
            if plan.forged and rng.random() < plan.forged:
                seq += 1
                other = (i + 1 + rng.randrange(len(shape.tps) - 1)) % len(shape.tps) if len(shape.tps) > 1 else i
                forgery = forge(rng, tally, f"{gateway}:{seq:08d}", shape.secret_key(other), key_id_of(shape.tps[other]))
                if forgery is not None:
                    # Before the real one: had it counted, the real tally would be a mere duplicate.
                    yield forgery
            raw = orjson.dumps(tally)
            truth.record(tally, contest_choices)
            yield raw
            if plan.duplicates and rng.random() < plan.duplicates:
                heapq.heappush(later, (position + rng.choice((1, 50, len(order) // 3 + 1)), seq, raw))
            if plan.corrections and rng.random() < plan.corrections:
                seq += 1
                fixed = make_tally(rng, tps, ballot, shape.dpt[i], contest_choices, 2, f"{gateway}:{seq:08d}", gateway, clock)
                if plan.signed:
                    sign(fixed, shape.secret_key(i), key_id_of(tps))
                truth.record(fixed, contest_choices)
                heapq.heappush(later, (position + rng.randint(1, 200), seq, orjson.dumps(fixed)))
        while later:
            yield heapq.heappop(later)[2]

    return shape, events(), truth


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
