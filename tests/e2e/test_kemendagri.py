"""The official region list: import, errors that name the line, and simulating onto real
villages."""

from __future__ import annotations

import orjson
import pytest

from streams.core.contract import decode_tally
from streams.core.registry import Registry
from streams.core.validate import validate_tally
from streams.gateways.kemendagri import KemendagriError, parse_regions
from streams.gateways.shape import build_shape_on, registry_records
from streams.gateways.simulate import Plan, generate
from tests.conftest import tally

LIST = """11,ACEH
11.01,KAB. ACEH SELATAN
11.01.01,Bakongan
11.01.01.2001,Keude Bakongan
11.01.01.2002,Ujong Mangki
31,DKI JAKARTA
31.71,KOTA ADM. JAKARTA PUSAT
31.71.01,Gambir
31.71.01.1001,Gambir
31.71.01.1002,"Kebon Kelapa, Gambir"
"""


def test_dotted_codes_become_registry_regions():
    regions = list(parse_regions(LIST.splitlines()))
    assert regions[0]["code"] == "ID" and len(regions) == 11
    assert {
        "type": "region",
        "code": "1101012001",
        "name": "Keude Bakongan",
        "level": "village",
        "parent": "110101",
    } in regions
    assert next(r for r in regions if r["code"] == "3171011002")["name"] == "Kebon Kelapa, Gambir"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("11.1,X", "not a dotted region code"),
        ("11.01,Orphan", "before its parent"),
        ("11,A\n11,A", "appears twice"),
        ("11", "expected 'code,name'"),
    ],
)
def test_bad_lines_are_named(text, message):
    with pytest.raises(KemendagriError, match=rf"list.csv:\d+: .*{message}"):
        list(parse_regions(text.splitlines(), "list.csv"))


def test_simulating_onto_real_villages_gives_valid_tallies():
    shape = build_shape_on(list(parse_regions(LIST.splitlines())), 40, 1)
    assert {t[:10] for t in shape.tps} == {"1101012001", "1101012002", "3171011001", "3171011002"}
    assert not any(
        c["ballot"] == "DPRD_KAB" and c["regions"][0].startswith("31") for c in shape.contests
    )
    _, events, _ = generate(Plan(40, 1, ("PPWP", "DPR", "DPRD_KAB")), shape)
    registry = Registry.from_records(registry_records(shape))
    for raw in events:
        assert validate_tally(decode_tally(raw).tally, registry).accepted


def test_cli_import_and_simulate_with_regions(pipeline, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text(LIST)
    out = tally(
        pipeline,
        "registry",
        "import-kemendagri",
        str(csv),
        "--out",
        str(tmp_path / "regions.jsonl"),
    )
    assert b"wrote 11 regions" in out.stdout
    assert orjson.loads((tmp_path / "regions.jsonl").read_bytes().splitlines()[1])["name"] == "ACEH"
    tally(
        pipeline,
        "simulate",
        "--tps",
        "20",
        "--regions",
        str(csv),
        "--out",
        str(tmp_path / "d"),
        "--dry-run",
    )
    registry = [
        orjson.loads(line) for line in (tmp_path / "d" / "registry.jsonl").read_bytes().splitlines()
    ]
    assert {r["name"] for r in registry if r["type"] == "region" and r["level"] == "village"} <= {
        "Keude Bakongan",
        "Ujong Mangki",
        "Gambir",
        "Kebon Kelapa, Gambir",
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("11.01,Orphan\n")
    failed = tally(pipeline, "registry", "import-kemendagri", str(bad), check=False)
    assert failed.returncode == 2 and b"before its parent" in failed.stderr
