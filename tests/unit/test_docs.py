"""The front door and docs/ stay true: the CLI reference is the code's, every relative link resolves
(files and the headings they point at), README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)|<img src=\"([^\"]+)\"")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    found, fence = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return found


def test_the_cli_reference_is_generated_from_the_code_and_current():
    from scripts.cli_reference import OUT, reference

    assert OUT.read_text() == reference(), (
        "docs/cli.md is stale: .venv/bin/python -m scripts.cli_reference --write"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    broken = []
    for match in LINK.finditer(page.read_text()):
        target = match[1] or match[2]
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing_anchor = (
            bool(anchor) and file.suffix == ".md" and file.exists() and anchor not in anchors(file)
        )
        if not file.exists() or missing_anchor:
            broken.append(target)
    assert not broken, broken


def test_the_readme_is_a_front_door():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for must in (
        "make demo",
        "make test",
        ".venv/bin/tally",
        "docs/img/page-",
        "docs/cli.md",
        "CHANGELOG.md",
    ):
        assert must in text, must


def test_the_results_hold_what_the_latest_reports_say():
    from benchmarks.results_table import current, written

    assert written() == current(), (
        "benchmarks/RESULTS.md is stale: .venv/bin/python -m benchmarks.results_table --write"
    )
