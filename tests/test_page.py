"""The results page in real headless Chromium: the numbers on screen equal `tally results --json`."""

from __future__ import annotations

import re
import shutil
import subprocess

import orjson
import pytest

from tests.conftest import tally
from tests.test_api import api  # noqa: F401 - the fixture: a pipeline with data and `tally serve`

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screen(port: int, route: str, tmp_path) -> str:
    """The page's DOM after its scripts ran, as Chromium renders it (dumped, then parsed)."""
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is missing: `make browser` installs it")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=6000",
        "--dump-dom",
        f"http://127.0.0.1:{port}/{route}",
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert 'data-ready="1"' in dom, dom[-2000:]
    return dom


def votes_on_screen(dom: str, code: str) -> dict[str, int]:
    row = re.search(rf'<tr data-code="{code}">(.*?)</tr>', dom, re.S).group(1)
    return {c: int(n) for c, n in re.findall(r'data-choice="([^"]+)" data-votes="(\d+)"', row)}


def test_drill_down_from_the_nation_to_one_tps_matches_the_cli(api, pipeline, tmp_path):  # noqa: F811
    port, truth, _ = api
    national = screen(port, "#/PPWP", tmp_path)
    cli = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)
    for region in cli["regions"]:
        assert votes_on_screen(national, region["code"]) == {c: n for c, n in region["votes"].items()}
    reported = re.search(r'id="progress-text" data-reported="(\d+)" data-total="(\d+)"', national)
    cli_national = orjson.loads(tally(pipeline, "results", "--json").stdout)["regions"][0]
    assert (int(reported[1]), int(reported[2])) == (cli_national["tps_reported"], cli_national["tps_total"])

    # Drill down by the links the page itself renders: province -> ... -> village -> TPS.
    code = ""
    dom = national
    while len(code) < 10:
        code = re.search(r'<tr data-code="(\d+)"><td><a href="#/PPWP/(\d+)">', dom)[2]
        dom = screen(port, f"#/PPWP/{code}", tmp_path)
    children = orjson.loads(tally(pipeline, "results", "--region", code, "--json").stdout)
    tps = children["regions"][0]
    assert votes_on_screen(dom, tps["code"]) == tps["votes"]

    detail = screen(port, f"#/PPWP/{tps['code']}", tmp_path)
    assert f'id="tps" data-code="{tps["code"]}"' in detail
    shown = dict(
        re.findall(r'<table class="tally" data-ballot="PPWP">.*?</table>', detail, re.S)
        and re.findall(
            r'data-choice="([^"]+)" data-votes="(\d+)"', re.search(r'<table class="tally".*?</table>', detail, re.S)[0]
        )
    )
    assert {c: int(n) for c, n in shown.items()} == tps["votes"]
    assert 'data-decision="applied"' in detail
    assert f'data-key-id="{tps["code"]}.1"' in detail  # the device key that signed it, for everyone to see
