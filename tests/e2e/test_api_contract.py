"""The read API against its own OpenAPI document, by schemathesis as a new user would run it: every
endpoint, valid and invalid requests; no server error, no status or shape the document does not
state, nothing outside the document accepted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.ops.demo import wait_caught_up
from streams.read.openapi import OPENAPI
from tests.conftest import api_server, tally

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def schemathesis(location: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            location,
            "--seed",
            "16",
            "--no-color",
            "--generation-database",
            "none",
            *args,
        ],
        capture_output=True,
        timeout=900,
        cwd=cwd,
    )


@pytest.fixture
def served(pipeline, workers, tmp_path):
    """`tally serve` over a small counted night of three ballots (with corrections and
    rejections)."""
    workers.start()
    out = tmp_path / "sim"
    tally(
        pipeline, "simulate", "--tps", "60", "--seed", "4", "--ballots", "PPWP,DPR,DPD",
        "--corrections", "0.1", "--invalid", "0.05", "--out", str(out),
    )  # fmt: skip
    wait_caught_up(pipeline, len((out / "events.jsonl").read_bytes().splitlines()), timeout_s=120)
    with api_server(pipeline) as port:
        yield port


def test_schemathesis_finds_no_contract_failure(served, tmp_path):
    run = schemathesis(
        f"http://127.0.0.1:{served}/api/openapi.json", "--max-examples", "25", cwd=tmp_path
    )
    report = run.stdout.decode(errors="replace")
    assert run.returncode == 0, report[-20000:]
    selected, total = map(int, re.search(r"Selected: (\d+)/(\d+)", report).groups())
    tested = int(re.search(r"Tested: (\d+)", report)[1])
    assert selected == total == tested >= 8  # every endpoint of the document was tried


def test_a_document_that_leaves_out_a_status_fails_the_run(served, tmp_path):
    # The check can fail: the same API against a document without /api/results' 400.
    broken = orjson.loads(orjson.dumps(OPENAPI))
    del broken["paths"]["/api/results"]["get"]["responses"]["400"]
    (tmp_path / "broken.json").write_bytes(orjson.dumps(broken))
    run = schemathesis(
        str(tmp_path / "broken.json"), "--url", f"http://127.0.0.1:{served}", "--include-path",
        "/api/results", "--max-examples", "25", cwd=tmp_path,
    )  # fmt: skip
    report = run.stdout.decode(errors="replace")
    assert run.returncode != 0 and "400" in report, report[-3000:]
