"""The results page in real headless Chromium: the numbers on screen equal `tally results
--json`."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import orjson
import pytest

from tests.browser import render
from tests.conftest import get, tally
from tests.e2e import test_api, test_seats_end_to_end

# The fixtures: a pipeline with data and `tally serve`; five ballots through it, and `tally serve`.
api = test_api.api
five_ballots = test_seats_end_to_end.five_ballots
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screen(port: int, route: str, tmp_path, width: int = 1400) -> str:
    """The page's DOM after its scripts ran, as Chromium renders it in a window `width` px wide
    (dumped, then parsed)."""
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
        f"--window-size={width},900",
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


def test_drill_down_from_the_nation_to_one_tps_matches_the_cli(api, pipeline, tmp_path):
    port, truth, _ = api
    national = screen(port, "#/PPWP", tmp_path)
    cli = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)
    for region in cli["regions"]:
        assert votes_on_screen(national, region["code"]) == {
            c: n for c, n in region["votes"].items()
        }
    reported = re.search(r'id="progress-text" data-reported="(\d+)" data-total="(\d+)"', national)
    cli_national = orjson.loads(tally(pipeline, "results", "--json").stdout)["regions"][0]
    assert (int(reported[1]), int(reported[2])) == (
        cli_national["tps_reported"],
        cli_national["tps_total"],
    )

    # Drill down by the links the page itself renders: province -> ... -> village -> TPS.
    code = ""
    dom = national
    while len(code) < 10:
        code = re.search(r'<tr data-code="(\d+)"><td[^>]*><a href="#/PPWP/(\d+)">', dom)[2]
        dom = screen(port, f"#/PPWP/{code}", tmp_path)
    children = orjson.loads(tally(pipeline, "results", "--region", code, "--json").stdout)
    tps = children["regions"][0]
    assert votes_on_screen(dom, tps["code"]) == tps["votes"]

    detail = screen(port, f"#/PPWP/{tps['code']}", tmp_path)
    assert f'id="tps" data-code="{tps["code"]}"' in detail
    shown = dict(
        re.findall(r'<table class="tally" data-ballot="PPWP">.*?</table>', detail, re.S)
        and re.findall(
            r'data-choice="([^"]+)" data-votes="(\d+)"',
            re.search(r'<table class="tally".*?</table>', detail, re.S)[0],
        )
    )
    assert {c: int(n) for c, n in shown.items()} == tps["votes"]
    assert 'data-decision="applied"' in detail
    # the device key that signed it, for everyone to see
    assert f'data-key-id="{tps["code"]}.1"' in detail


def test_legislative_pages_show_party_totals_seats_and_a_dapil_that_match_the_api(
    five_ballots,
    pipeline,
    tmp_path,
):
    port, _ = five_ballots
    seats = orjson.loads(tally(pipeline, "seats", "--ballot", "DPR", "--json").stdout)
    national = orjson.loads(tally(pipeline, "results", "--ballot", "DPR", "--json").stdout)[
        "regions"
    ][0]
    dom = screen(port, "#/DPR", tmp_path)
    shares = {
        c: int(n)
        for c, n in re.findall(r'class="share[^"]*" data-choice="([^"]+)" data-votes="(\d+)"', dom)
    }
    # every party, none dropped
    assert shares == national["votes"] and all("." not in c for c in shares)
    # the rest fold into "others"
    shown = re.findall(r'class="share(?: below)?" data-choice="([^"]+)"', dom)
    assert (
        shown
        == [c for c, _ in sorted(national["votes"].items(), key=lambda kv: (-kv[1], kv[0]))][:12]
    )
    assert 'data-threshold="0.04"' in dom  # the threshold line on the party bars
    below = set(re.findall(r'class="share below(?: other)?" data-choice="([^"]+)"', dom))
    assert below == {p["party"] for p in seats["national"] if not p["passes"]} & set(shares)
    # The hemicycle: one dot a seat, each party's dots as many as its seats.
    dots = re.findall(
        r'<circle [^>]*data-party="([^"]+)"',
        re.search(r'<svg id="hemicycle".*?</svg>', dom, re.S)[0],
    )
    assert len(dots) == sum(p["seats"] for p in seats["national"]) > 0
    assert {p: dots.count(p) for p in set(dots)} == {
        p["party"]: p["seats"] for p in seats["national"] if p["seats"]
    }

    # A dapil from the picker the page renders, then its page against the API's numbers.
    dapil = re.search(r'<select id="dapil-picker">.*?<option value="([^"]+)"', dom, re.S)[1]
    one = orjson.loads(
        tally(pipeline, "results", "--ballot", "DPR", "--dapil", dapil, "--json").stdout
    )
    page = screen(port, f"#/DPR/dapil/{dapil}", tmp_path)
    assert f'id="dapil" data-code="{dapil}" data-seats="{one["seats"]}"' in page
    on_screen = {
        p: (int(v), int(k))
        for p, v, k in re.findall(
            r'<tr data-party="([^"]+)" data-votes="(\d+)" data-seats="(\d+)"', page
        )
    }
    assert on_screen == {p["party"]: (p["votes"], p["seats"]) for p in one["parties"]}
    elected = set(re.findall(r'data-code="([^"]+)" data-votes="\d+" data-elected="1"', page))
    assert (
        elected == {c["code"] for c in one["candidates"] if c["elected"]}
        and len(elected) == one["seats"]
    )
    # how many more votes the runner-up needs
    assert "perlu" in re.search(r'<p id="margin">(.*?)</p>', page, re.S)[1]

    # DPRD kab/kota: the picker of a regency lists its dapils only.
    regency = next(
        r["code"]
        for r in orjson.loads(
            tally(
                pipeline, "results", "--ballot", "DPRD_KAB", "--level", "regency", "--json"
            ).stdout
        )["regions"]
        if r["tps_reported"]
    )
    listed = re.findall(
        r'<option value="(DPRDK-[^"]+)"', screen(port, f"#/DPRD_KAB/{regency}", tmp_path)
    )
    assert listed and all(code.startswith(f"DPRDK-{regency}-") for code in listed)


def test_the_slider_replays_the_night_and_each_region_says_what_changed(five_ballots, tmp_path):
    port, _ = five_ballots
    feed = get(port, "/api/changes?ballot=PPWP&limit=10000")[1]["changes"]
    moments = sorted({c["decided_at"] for c in feed})
    assert len(feed) > 100
    # As of the first moment anything was counted: the page shows what the API says for that moment.
    first = moments[0]
    # (A microsecond after it: a float of epoch seconds holds microseconds only to a quarter of
    # one.)
    seconds = (
        datetime.fromisoformat(first.replace("Z", "+00:00")) - datetime(1970, 1, 1, tzinfo=UTC)
    ).total_seconds() + 1e-6
    dom = screen(port, f"#/PPWP@{seconds:.6f}", tmp_path)
    then = get(port, f"/api/results?ballot=PPWP&level=national&as_of={seconds:.6f}")[1]["regions"][
        0
    ]
    reported = re.search(r'id="progress-text" data-reported="(\d+)"', dom)
    assert 0 < int(reported[1]) == then["tps_reported"]
    assert f'data-as-of="{seconds:.6f}"' in dom and 'class="moment past"' in dom
    # Before the first count: nothing counted yet.
    dom = screen(port, "#/PPWP@1000000000", tmp_path)
    assert re.search(r'id="progress-text" data-reported="0"', dom)
    # Every region row links to what changed there; the nation's changes, newest first, as the feed
    # says.
    assert (
        len(
            re.findall(
                r'class="changes-link" href="#/PPWP/changes/\d{2}"',
                screen(port, "#/PPWP", tmp_path),
            )
        )
        >= 30
    )
    dom = screen(port, "#/PPWP/changes/ID", tmp_path)
    rows = re.findall(
        r'<tr data-kind="([^"]+)" data-tps="(\d+)" data-old="(\d+)" data-new="(\d+)"', dom
    )
    newest = get(port, "/api/changes?ballot=PPWP&order=desc&limit=100")[1]["changes"]
    assert rows == [
        (c["kind"], c["tps"], str(c["revision"]["old"]), str(c["revision"]["new"])) for c in newest
    ]
    assert any(c["kind"] == "correction" and c["revision"]["old"] >= 1 for c in feed)


def test_a_province_page_leads_with_the_province_not_the_nation(api, pipeline, tmp_path):
    """A journalist on #/PPWP/<province> quotes the headline: it is the province's own name,
    progress and votes (as `tally results` gives them), and the breadcrumb names it."""
    port, _, _ = api
    provinces = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)[
        "regions"
    ]
    province = max(provinces, key=lambda r: r["tps_reported"])
    dom = screen(port, f"#/PPWP/{province['code']}", tmp_path)
    assert re.search(
        rf'<h2 id="scope-name" data-code="{province["code"]}">{re.escape(province["name"])}</h2>',
        dom,
    )
    shown = re.search(r'id="progress-text" data-reported="(\d+)" data-total="(\d+)"', dom)
    assert (int(shown[1]), int(shown[2])) == (province["tps_reported"], province["tps_total"])
    head = re.search(r'<section id="shares-box">.*?</section>', dom, re.S)[0]
    assert {
        c: int(n) for c, n in re.findall(r'data-choice="([^"]+)" data-votes="(\d+)"', head)
    } == province["votes"]
    assert f"<b>{province['name']}</b>" in re.search(r'<nav id="crumbs">.*?</nav>', dom, re.S)[0]
    # 33,93%: one Indonesian locale
    assert re.search(r"\d,\d\d%", head) and not re.search(r"\d\.\d\d%", head)


def test_a_phone_reads_every_view_without_sideways_scroll(five_ballots, pipeline, tmp_path):
    """At 390 px (a phone, emulated over DevTools: tests.browser), Chromium lays out the national, a
    province, a dapil, a TPS and a changes page: the document is as wide as the viewport and every
    control lies on screen."""
    port, _ = five_ballots
    province = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)[
        "regions"
    ][0]["code"]
    tps = orjson.loads(
        tally(pipeline, "results", "--region", province, "--level", "tps", "--json").stdout
    )["regions"][0]
    dapil = orjson.loads(tally(pipeline, "seats", "--ballot", "DPR", "--json").stdout)["dapils"][0][
        "dapil"
    ]
    for route in (
        "#/PPWP",
        f"#/DPR/{province}",
        f"#/DPR/dapil/{dapil}",
        f"#/DPR/{tps['code']}",
        "#/DPR/changes/ID",
    ):
        body = re.search(
            r"<body([^>]*)>", render(f"http://127.0.0.1:{port}/{route}", 390, 844).dom
        )[1]
        viewport, width = (
            re.search(r'data-viewport="(\d+)"', body)[1],
            re.search(r'data-document-width="(\d+)"', body)[1],
        )
        assert viewport == width == "390", (route, body)
        assert 'data-offscreen=""' in body, (route, body)


def test_a_tps_page_puts_the_ballot_asked_first_in_names_and_words(
    five_ballots,
    pipeline,
    tmp_path,
):
    """A witness on #/DPR/<tps>: the DPR count first with party names, the other ballots folded, a
    history with the ballot, decisions in words and times in the TPS's own zone."""
    port, _ = five_ballots
    province = orjson.loads(tally(pipeline, "results", "--level", "province", "--json").stdout)[
        "regions"
    ][0]["code"]
    code = orjson.loads(
        tally(pipeline, "results", "--region", province, "--level", "tps", "--json").stdout
    )["regions"][0]["code"]
    dom = screen(port, f"#/DPR/{code}", tmp_path)
    first = re.search(r'<section class="route-ballot">.*?</section>', dom, re.S)[0]
    assert 'data-ballot="DPR"' in first
    assert '<details class="ballot"><summary>PPWP' in dom  # the others, folded
    parties = dict(
        re.findall(r'<td class="text">([^<]+) <span class="muted">(P\d\d)</span>', first)
    )
    assert parties and all(name.strip() != code for name, code in parties.items())
    history = re.search(r'<table id="history".*?</table>', dom, re.S)[0]
    assert (
        re.search(r'data-decision="applied" data-ballot="DPR"', history) and "diterapkan" in history
    )
    assert re.search(r"\d\d\.\d\d\.\d\d (WIB|WITA|WIT)<", history)


def test_every_decision_flag_and_reason_has_words_in_both_languages():
    """The page's dictionary names every code the pipeline can show (streams/core/reasons.py)."""
    from streams.core.reasons import Decision, Flag, Reason
    from streams.read.api import PAGE

    page = PAGE.read_text()
    terms = re.search(r"const TERMS = \{(.*?)\n\};", page, re.S)[1]
    codes = {str(c) for c in (*Decision, *Flag, *Reason)}
    for language in ("id", "en"):
        block = re.search(rf"\n  {language}: \{{(.*?)\n  \}},", terms, re.S)[1]
        named = set(re.findall(r"\b([A-Za-z_]+): \"", block))
        assert codes <= named, (language, codes - named)
