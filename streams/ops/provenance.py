"""Where a measurement comes from: the commit it measured (and whether the tree held changes beside
it), the machine, the Python and the command, so that a benchmark report can be read, compared and
run again (benchmarks/RESULTS.md is made from such reports)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {memory:.0f} GiB, Python "
        f"{platform.python_version()}"
    )


def provenance(command: str | None = None) -> dict:
    """The commit (None outside a git checkout), dirty (changes beside it, untracked files
    included), the machine, the command (this process's, unless given) and when."""
    status = _git("status", "--porcelain")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "machine": machine(),
        "command": command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
