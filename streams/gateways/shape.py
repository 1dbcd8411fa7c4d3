"""The registry's shape for a simulated night: regions, TPS with their DPT, contests (dapils and
their choices) and the device keys, deterministic from a seed.

The shape follows Pemilu 2024 (KPU's published figures): at 820,161 TPS exactly 2024's 38
provinces, 514 regencies, 7,277 districts, 83,731 villages and its dapils; a smaller night is scaled
down. DPT <= 300, 3 presidential pairs, 18 national parties (+6 local ones in Aceh on DPRD ballots),
no DPRD_KAB in DKI Jakarta. Everything derives from `random.Random(seed)`: the same arguments give
the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from nacl.bindings import crypto_sign_seed_keypair

from streams.core.contract import BALLOTS
from streams.core.regions import NATIONAL, REGION_LEVELS, region_of

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
# The 2024 parties by their ballot numbers (KPU): 18 national ones, and Aceh's six local ones
# (18-23), which stand for the DPRD there only.
NATIONAL_PARTIES = (
    (1, "Partai Kebangkitan Bangsa"), (2, "Partai Gerakan Indonesia Raya"), (3, "PDI Perjuangan"),
    (4, "Partai Golongan Karya"), (5, "Partai NasDem"), (6, "Partai Buruh"),
    (7, "Partai Gelombang Rakyat Indonesia"), (8, "Partai Keadilan Sejahtera"),
    (9, "Partai Kebangkitan Nusantara"), (10, "Partai Hati Nurani Rakyat"),
    (11, "Partai Garda Republik Indonesia"), (12, "Partai Amanat Nasional"),
    (13, "Partai Bulan Bintang"), (14, "Partai Demokrat"), (15, "Partai Solidaritas Indonesia"),
    (16, "Partai Perindo"), (17, "Partai Persatuan Pembangunan"), (24, "Partai Ummat"),
)  # fmt: skip
ACEH_LOCAL_PARTIES = (
    (18, "Partai Nanggroe Aceh"), (19, "Partai Generasi Atjeh Beusaboh Thaat dan Taqwa"),
    (20, "Partai Darul Aceh"), (21, "Partai Aceh"), (22, "Partai Adil Sejahtera Aceh"),
    (23, "Partai Soliditas Independen Rakyat Aceh"),
)  # fmt: skip
DKI = "31"

# Device keys are issued for the count: from election day to the end of the national recap (20
# March).
KEYS_VALID_FROM = "2024-02-14T00:00:00+07:00"
KEYS_VALID_UNTIL = "2024-03-21T00:00:00+07:00"


ACEH = "11"


def split(total: int, weights: list[float]) -> list[int]:
    """`total` split in proportion to `weights`, each part >= 1 (largest remainders get the
    rest)."""
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


@dataclass
class Shape:
    """The registry being built: regions (code -> (name, level, parent)), TPS codes and DPT."""

    # code, name, level, parent
    regions: list[tuple[str, str, str, str]] = field(default_factory=list)
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
    """The Ed25519 key of a simulated TPS device, derived from the seed: the same run, the same
    keys."""
    return crypto_sign_seed_keypair(
        hashlib.blake2b(f"tally-device:{seed}:{tps}".encode(), digest_size=32).digest()
    )[1]


def key_id_of(tps: str) -> str:
    return f"{tps}.1"


# The 2024 registry (pemilu-2024.md): what a night of this many TPS is built to, exactly; a smaller
# night scales every count down in proportion (each parent keeps at least one child).
TPS_2024 = 820_161
REGIONS_2024 = {"regency": 514, "district": 7_277, "village": 83_731}
# DKI Jakarta holds no DPRD_KAB dapil
DAPILS_2024 = {
    "DPR": 84,
    "DPRD_PROV": 301,
    "DPRD_KAB": 2_325,
}
# Seats (UU 7/2017 as applied in 2024): in all, and the fewest and most a dapil holds. DPD: 4 a
# province.
SEATS_2024 = {"DPR": 580, "DPRD_PROV": 2_372, "DPRD_KAB": 17_510}
SEATS_PER_DAPIL = {"DPR": (3, 10), "DPRD_PROV": (3, 12), "DPRD_KAB": (3, 12)}
DPD_SEATS = 4
# Abroad (reference file): 3,059 TPS at 128 missions, shown under region code 99 on the KPU site.
# Here 99 is a province-level region, its regencies parts of the world, its districts the missions
# and its villages the three ways to vote there; they hold PPWP and DPR only, DPR in DKI Jakarta II.
ABROAD = "99"
ABROAD_TPS_2024 = 3_059
MISSIONS_2024 = 128
WORLD = (
    "Asia Tenggara",
    "Asia Timur dan Selatan",
    "Timur Tengah dan Afrika",
    "Eropa",
    "Amerika",
    "Oseania",
)
VOTING_ABROAD = (
    ("2001", "TPSLN", 0.6),
    ("2002", "KSK (kotak suara keliling)", 0.25),
    ("2003", "Pos", 0.15),
)


def abroad_tps(n_tps: int, abroad: bool | None = None) -> int:
    """TPS abroad on a night of `n_tps` in Indonesia: 2024's 3,059 at this scale, by default only on
    a national night (`abroad` None), with at least one when asked for."""
    if abroad is None:
        abroad = n_tps >= TPS_2024
    return max(1, round(ABROAD_TPS_2024 * n_tps / TPS_2024)) if abroad else 0


CODE_DIGITS = {"regency": (2, 1), "district": (2, 1), "village": (4, 2001)}  # digits, first number


def _scaled(count_2024: int, n_tps: int, floor: int) -> int:
    return max(floor, round(count_2024 * n_tps / TPS_2024))


def _allot(total: int, sizes: list[int], caps: list[int]) -> list[int]:
    """`total` children shared among parents in proportion to their `sizes`, each at least one and
    at most its cap; what a cap cut off goes to the others (largest remainders, so the sum is exact
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


def _level(
    rng: random.Random, parents: list[tuple[str, int]], level: str, n_tps: int
) -> list[list[tuple[str, int]]]:
    """The children of each (code, TPS count) parent: as many in all as 2024 had at this scale,
    shared by TPS, and the parent's TPS split among them with skewed (lognormal) weights."""
    digits, first = CODE_DIGITS[level]
    caps = [min(tps, 10**digits - first) for _, tps in parents]
    counts = _allot(
        _scaled(REGIONS_2024[level], n_tps, len(parents)), [tps for _, tps in parents], caps
    )
    children = []
    for (code, tps), count in zip(parents, counts, strict=True):
        weights = [rng.lognormvariate(0, 0.5) for _ in range(count)]
        children.append(
            [(f"{code}{first + i:0{digits}d}", n) for i, n in enumerate(split(tps, weights))]
        )
    return children


def build_shape(
    n_tps: int, seed: int, ballots: tuple[str, ...] = BALLOTS, n_abroad: int = 0
) -> Shape:
    """The registry of a night of `n_tps` TPS in Indonesia: at 820,161 exactly 2024's 38 provinces,
    514 regencies, 7,277 districts and 83,731 villages, and its dapils (`_dapil_counts`); plus
    `n_abroad` TPS abroad (`_abroad`)."""
    rng = random.Random(seed)
    shape = Shape(seed=seed)
    shape.regions.append((NATIONAL, "Indonesia", "national", ""))
    provinces = PROVINCES[: min(len(PROVINCES), n_tps)]
    province_tps = list(
        zip(
            (code for code, _, _ in provinces),
            split(n_tps, [w for _, _, w in provinces]),
            strict=True,
        )
    )
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
        shape.contests += _contests(pcode, pname, codes, district_codes, ballots, dapils)
    if n_abroad:
        _abroad(rng, shape, n_abroad)
    _seat_contests(rng, shape)
    if "PPWP" in ballots:
        shape.contests.insert(0, _ppwp_contest())
    return shape


def _abroad(rng: random.Random, shape: Shape, n_abroad: int) -> None:
    """TPS abroad: region 99, its parts of the world, missions and ways of voting; their DPR votes
    count in DKI Jakarta II (DKI's first dapil on a night too small to have a second)."""
    missions = split(
        max(len(WORLD), round(MISSIONS_2024 * n_abroad / ABROAD_TPS_2024)), [1.0] * len(WORLD)
    )
    shape.regions.append((ABROAD, "Luar Negeri", "province", NATIONAL))
    places = []
    for w, (name, count) in enumerate(zip(WORLD, missions, strict=True), 1):
        code = f"{ABROAD}{w:02d}"
        shape.regions.append((code, name, "regency", ABROAD))
        for m in range(1, count + 1):
            shape.regions.append((f"{code}{m:02d}", f"PPLN {code}{m:02d}", "district", code))
            places.append(f"{code}{m:02d}")
    ways = [
        (f"{mission}{suffix}", name, weight)
        for mission in places
        for suffix, name, weight in VOTING_ABROAD
    ]
    counts = split(
        max(n_abroad, len(ways)), [weight * rng.lognormvariate(0, 0.5) for _, _, weight in ways]
    )
    left = n_abroad
    for (village, name, _), count in zip(ways, counts, strict=True):
        count = min(count, left, 999)
        if count <= 0:
            continue
        shape.regions.append((village, name, "village", village[:6]))
        for t in range(1, count + 1):
            shape.tps.append(f"{village}{t:03d}")
            shape.dpt.append(max(50, 300 - int(abs(rng.gauss(0, 60)))))
        left -= count
    dki = sorted(
        (
            c
            for c in shape.contests
            if c["ballot"] == "DPR" and c["dapil"].startswith(f"DPR-{DKI}-")
        ),
        key=lambda c: c["dapil"],
    )
    if dki:
        dki[min(1, len(dki) - 1)]["regions"].append(ABROAD)


def _dapil_counts(
    province_tps: list[tuple[str, int]],
    regencies: list[list[tuple[str, int]]],
    districts: dict[str, list[str]],
    n_tps: int,
) -> dict[str, int]:
    """How many dapils each province (DPR, DPRD_PROV) or regency (DPRD_KAB) holds: 2024's totals at
    this scale, shared by TPS. A dapil is a set of regencies (of districts for DPRD_KAB), so a
    province holds at most as many as it has regencies."""
    counts: dict[str, int] = {}
    sizes = [tps for _, tps in province_tps]
    caps = [len(rs) for rs in regencies]
    for ballot in ("DPR", "DPRD_PROV"):
        total = _scaled(DAPILS_2024[ballot], n_tps, len(sizes))
        for (pcode, _), n in zip(province_tps, _allot(total, sizes, caps), strict=True):
            counts[f"{ballot}-{pcode}"] = n
    outside_dki = [
        (r, tps)
        for (pcode, _), rs in zip(province_tps, regencies, strict=True)
        if pcode != DKI
        for r, tps in rs
    ]
    if outside_dki:
        total = _scaled(DAPILS_2024["DPRD_KAB"], n_tps, len(outside_dki))
        allotted = _allot(
            total, [tps for _, tps in outside_dki], [len(districts[r]) for r, _ in outside_dki]
        )
        for (rcode, _), n in zip(outside_dki, allotted, strict=True):
            counts[f"DPRD_KAB-{rcode}"] = n
    return counts


def build_shape_on(
    regions: list[dict], n_tps: int, seed: int, ballots: tuple[str, ...] = BALLOTS
) -> Shape:
    """TPS and contests synthesized onto real regions (from `tally registry import-kemendagri`)."""
    rng = random.Random(seed)
    shape = Shape(seed=seed)
    villages = [r for r in regions if r["level"] == "village"]
    if not villages:
        raise ValueError("the region list has no villages (10-digit codes) to put TPS in")
    chosen = (
        villages
        if n_tps >= len(villages)
        else sorted(rng.sample(villages, n_tps), key=lambda r: r["code"])
    )
    keep = {r["code"] for r in chosen}
    for village in chosen:  # keep only the regions that hold a chosen village
        code = village["code"]
        keep.update({NATIONAL, code[:2], code[:4], code[:6]})
    shape.regions = [
        (r["code"], r["name"], r["level"], r["parent"]) for r in regions if r["code"] in keep
    ]
    for village, count in zip(
        chosen, split(n_tps, [rng.lognormvariate(0, 0.5) for _ in chosen]), strict=True
    ):
        for t in range(1, min(count, 999) + 1):
            shape.tps.append(f"{village['code']}{t:03d}")
            shape.dpt.append(max(50, 300 - int(abs(rng.gauss(0, 60)))))
    for pcode, pname, _, _ in (r for r in shape.regions if r[2] == "province"):
        regencies = [r[0] for r in shape.regions if r[2] == "regency" and r[3] == pcode]
        districts = {
            r: [d[0] for d in shape.regions if d[2] == "district" and d[3] == r] for r in regencies
        }
        shape.contests += _contests(pcode, pname, regencies, districts, ballots)
    _seat_contests(rng, shape)
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


def _party_choices(
    rng: random.Random, parties: tuple[tuple[int, str], ...], seats: int
) -> list[dict]:
    """Each party's own column (its ballot number, its name) and its list: most parties field a full
    list (as many candidates as the dapil has seats, the most the law allows), some a shorter
    one."""
    choices = []
    for p, name in sorted(parties):
        listed = seats if rng.random() < 0.85 else rng.randint(1, seats)
        choices.append({"code": f"P{p:02d}", "name": name})
        choices += [
            {"code": f"P{p:02d}.{c:02d}", "name": f"Calon {p:02d}.{c:02d}"}
            for c in range(1, listed + 1)
        ]
    return choices


def seat_counts(total: int, weights: list[int], low: int, high: int) -> list[int]:
    """`total` seats shared in proportion to `weights` (TPS), each part between `low` and `high`:
    floors first, then the largest remainders; exact unless every part is at a bound."""
    n = len(weights)
    total = min(max(total, low * n), high * n)
    scale = sum(weights) or 1
    targets = [total * w / scale for w in weights]
    counts = [min(high, max(low, int(t))) for t in targets]
    while (short := total - sum(counts)) != 0:
        step = 1 if short > 0 else -1
        movable = [i for i in range(n) if low <= counts[i] + step <= high]
        movable.sort(key=lambda i: (targets[i] - counts[i]) * step, reverse=True)
        for i in movable[: abs(short)]:
            counts[i] += step
    return counts


def _seat_contests(rng: random.Random, shape: Shape) -> None:
    """Give every legislative contest its seats and its choices. Seats follow the dapil's TPS, and
    the totals are 2024's at this scale (exactly 2024's at 820,161 TPS: as many dapils as then): DPR
    580 in 84 dapils, DPRD provinsi 2,372 in 301, DPRD kab/kota 17,510 in 2,325; DPD 4 a
    province."""
    by_prefix: dict[str, int] = {}
    for tps in shape.tps:
        for prefix in (tps[:2], tps[:4], tps[:6], tps[:10]):
            by_prefix[prefix] = by_prefix.get(prefix, 0) + 1
    for ballot, (low, high) in SEATS_PER_DAPIL.items():
        contests = [c for c in shape.contests if c["ballot"] == ballot]
        if contests:
            total = round(SEATS_2024[ballot] * len(contests) / DAPILS_2024[ballot])
            weights = [sum(by_prefix.get(r, 0) for r in c["regions"]) for c in contests]
            for contest, seats in zip(
                contests, seat_counts(total, weights, low, high), strict=True
            ):
                contest["seats"] = seats
    for contest in shape.contests:
        parties = contest.pop("parties", ())
        if contest["ballot"] == "DPD":
            contest["seats"] = DPD_SEATS
            candidates = rng.randint(10, 25)
            contest["choices"] = [
                {"code": f"D{c:02d}", "name": f"Calon DPD {c:02d}"}
                for c in range(1, candidates + 1)
            ]
        elif parties:
            contest["choices"] = _party_choices(rng, parties, contest["seats"])


def _dapils(regions: list[str], count: int) -> list[list[str]]:
    count = max(1, min(count, len(regions)))
    size = len(regions) / count
    return [regions[int(i * size) : int((i + 1) * size)] for i in range(count)]


def _contests(
    pcode: str,
    pname: str,
    regencies: list[str],
    districts: dict[str, list[str]],
    ballots: tuple[str, ...],
    dapils: dict[str, int] | None = None,
) -> list[dict]:
    """Contests of one province, without seats and choices yet (`_seat_contests` adds them: seats
    follow every dapil's TPS). `dapils` says how many each province or regency holds
    (`_dapil_counts`); without it (real regions, `build_shape_on`) the counts follow 2024's ratios
    to regencies and districts."""
    dapils = dapils or {}
    contests: list[dict] = []
    local = ACEH_LOCAL_PARTIES if pcode == ACEH else ()
    if "DPR" in ballots:
        count = dapils.get(f"DPR-{pcode}", len(regencies) // 6)
        for i, regions in enumerate(_dapils(regencies, count), 1):
            contests.append(
                _contest("DPR", f"DPR-{pcode}-{i:02d}", f"{pname} {i}", regions, NATIONAL_PARTIES)
            )
    if "DPD" in ballots:
        contests.append(_contest("DPD", f"DPD-{pcode}", pname, [pcode]))
    if "DPRD_PROV" in ballots:
        count = dapils.get(f"DPRD_PROV-{pcode}", round(len(regencies) * 301 / 514))
        for i, regions in enumerate(_dapils(regencies, count), 1):
            dapil, name = f"DPRDP-{pcode}-{i:02d}", f"{pname} {i}"
            contests.append(_contest("DPRD_PROV", dapil, name, regions, NATIONAL_PARTIES + local))
    if "DPRD_KAB" in ballots and pcode != DKI:  # DKI Jakarta elects no DPRD kab/kota
        for rcode in regencies:
            own = districts.get(rcode) or [rcode]
            count = dapils.get(f"DPRD_KAB-{rcode}", round(len(own) * 2325 / 7277))
            for i, regions in enumerate(_dapils(own, count), 1):
                dapil, name = f"DPRDK-{rcode}-{i:02d}", f"Kab/Kota {rcode} {i}"
                contests.append(
                    _contest("DPRD_KAB", dapil, name, regions, NATIONAL_PARTIES + local)
                )
    return contests


def _contest(
    ballot: str, dapil: str, name: str, regions: list[str], parties: tuple | None = None
) -> dict:
    """A contest record before its seats and choices; DPD's has no parties."""
    contest = {
        "type": "contest",
        "ballot": ballot,
        "dapil": dapil,
        "name": name,
        "regions": regions,
    }
    if parties is not None:
        contest["parties"] = parties
    return contest


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


def tps_totals(shape: Shape, ballots: tuple[str, ...]) -> dict[tuple[str, str, str], int]:
    """How many TPS hold each ballot in each region, and in each dapil (level "dapil"): a TPS holds
    a ballot if a contest covers one of its regions, and is in that contest's dapil."""
    dapil_of: dict[str, dict[str, str]] = {b: {} for b in ballots}  # ballot -> region -> dapil
    for contest in shape.contests:
        if contest["ballot"] in dapil_of:
            dapil_of[contest["ballot"]].update(dict.fromkeys(contest["regions"], contest["dapil"]))
    totals: dict[tuple[str, str, str], int] = {}
    for tps in shape.tps:
        prefixes = (NATIONAL, tps[:2], tps[:4], tps[:6], tps[:10], tps)
        for ballot in ballots:
            dapil = next((dapil_of[ballot][p] for p in prefixes if p in dapil_of[ballot]), None)
            if dapil is not None:
                for key in [(ballot, level, region_of(tps, level)) for level in REGION_LEVELS] + [
                    (ballot, "dapil", dapil)
                ]:
                    totals[key] = totals.get(key, 0) + 1
    return totals
