"""Valid tallies for tests: built from counts so every C1 equation holds."""

from __future__ import annotations

from hypothesis import strategies as st

from streams.core.registry import Contest, Registry


def tally_dict(
    votes: dict[str, int] | None = None,
    invalid: int = 5,
    dpt: int = 281,
    dptb: int = 3,
    dpk: int = 2,
    voted_dptb: int = 3,
    voted_dpk: int = 2,
    returned: int = 1,
    spare: int = 51,
    **fields: object,
) -> dict:
    votes = {"01": 120, "02": 80, "03": 30} if votes is None else votes
    used = sum(votes.values()) + invalid
    voted_dpt = used - voted_dptb - voted_dpk
    base = {
        "schema": "tally.v1",
        "event_id": "gw-31-01:000123",
        "tps": "3171010001001",
        "ballot": "PPWP",
        "revision": 1,
        "submitted_at": "2024-02-14T15:02:11+07:00",
        "gateway": "gw-31-01",
        "voters": {
            "registered": {"dpt": dpt, "dptb": dptb, "dpk": dpk},
            "voted": {"dpt": voted_dpt, "dptb": voted_dptb, "dpk": voted_dpk},
        },
        "ballots": {
            "received": used + returned + spare,
            "returned": returned,
            "unused": spare,
            "used": used,
        },
        "votes": votes,
        "invalid": invalid,
    }
    base.update(fields)
    return base


def small_registry(dpt: int = 281) -> Registry:
    registry = Registry(dpt={"3171010001001": dpt, "1101010001001": 250})
    registry.add_contest(Contest("PPWP", "PPWP", "Presiden", ("ID",), ("01", "02", "03")))
    registry.add_contest(Contest("DPR", "DPR-31-01", "DKI I", ("3171",), ("P01", "P01.01", "P02")))
    registry.add_contest(
        Contest("DPRD_KAB", "DPRDK-1101", "Aceh Selatan", ("1101",), ("P01", "P19"))
    )
    return registry


@st.composite
def valid_tallies(draw: st.DrawFn) -> dict:
    """Any tally whose counts satisfy every C1 equation for the PPWP contest of small_registry()."""
    votes = {c: draw(st.integers(0, 300)) for c in ("01", "02", "03")}
    invalid = draw(st.integers(0, 30))
    used = sum(votes.values()) + invalid
    voted_dptb = draw(st.integers(0, min(used, 5)))
    voted_dpk = draw(st.integers(0, min(used - voted_dptb, 5)))
    voted_dpt = used - voted_dptb - voted_dpk
    returned, spare = draw(st.integers(0, 5)), draw(st.integers(0, 20))
    # A TPS receives at most its DPT plus 2% (OVER_ALLOCATION): the smallest DPT that allows these
    # ballots.
    least = max(voted_dpt, (used + returned + spare) * 100 // 102 - 1)
    while least + (least * 2 + 99) // 100 < used + returned + spare:
        least += 1
    dpt = draw(st.integers(least, least + 200))
    return tally_dict(
        votes,
        invalid,
        dpt=dpt,
        dptb=voted_dptb + draw(st.integers(0, 3)),
        dpk=voted_dpk,
        voted_dptb=voted_dptb,
        voted_dpk=voted_dpk,
        returned=returned,
        spare=spare,
        revision=draw(st.integers(1, 9)),
    )


def device_key(tps: str = "3171010001001") -> bytes:
    """The test device key of a TPS (the simulator's derivation, seed 0)."""
    from streams.gateways.shape import device_secret_key

    return device_secret_key(0, tps)


def key_record(tps: str = "3171010001001", **fields: object) -> dict:
    """The registry record of `device_key(tps)`."""
    import base64

    from streams.gateways.shape import KEYS_VALID_FROM, KEYS_VALID_UNTIL, key_id_of

    record = {
        "type": "key",
        "key_id": key_id_of(tps),
        "tps": tps,
        "public_key": base64.b64encode(device_key(tps)[32:]).decode(),
        "valid_from": KEYS_VALID_FROM,
        "valid_until": KEYS_VALID_UNTIL,
    }
    record.update(fields)
    return record


def signed(tally: dict, by: str | None = None) -> dict:
    """The tally as its own TPS's device (or TPS `by`'s device) signs it."""
    from streams.gateways.shape import key_id_of
    from streams.gateways.tallies import sign

    signer = by or tally["tps"]
    return sign(
        {k: v for k, v in tally.items() if k not in ("sig", "key_id")},
        device_key(signer),
        key_id_of(signer),
    )
