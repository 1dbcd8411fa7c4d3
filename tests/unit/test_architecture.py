"""The layering of the package (pyproject's [tool.importlinter] contracts) holds, and its check can
fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_layering() -> None:
    checked = lint_imports(REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 broken" in checked.stdout


@pytest.mark.parametrize(
    ("module", "violation", "contract"),
    [
        ("core/pipeline.py", "from streams.clickhouse.sink import Fenced", "The core is pure"),
        ("core/validate.py", "from streams.settings import Settings", "The core is pure"),
        (
            "read/results.py",
            "from streams.kafka.produce import consumer_lag",
            "The read side never imports Kafka",
        ),
        (
            "kafka/worker.py",
            "from streams.read.results import results",
            "The worker never imports the read side",
        ),
        (
            "gateways/gateway.py",
            "from streams.read.report import print_results",
            "Gateways reach the core and Kafka",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_check(
    tmp_path: Path, module: str, violation: str, contract: str
) -> None:
    shutil.copytree(
        REPO / "streams", tmp_path / "streams", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with (tmp_path / "streams" / module).open("a") as fh:
        fh.write(f"\n{violation}  # noqa: E402\n")
    checked = lint_imports(tmp_path)
    assert checked.returncode != 0
    assert f"{contract}" in checked.stdout and "BROKEN" in checked.stdout, checked.stdout


LONGEST = 66  # lines of a function, as ruff formats it at 100 columns: "about 60"
WHY = "Long because"


def long_functions(root: Path) -> list[str]:
    """Functions of `root` over LONGEST lines whose body does not say why they are long."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = lines[node.lineno - 1 : node.end_lineno]
                if len(body) > LONGEST and not any(WHY in line for line in body):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} {len(body)}")
    return found


def test_no_function_in_streams_is_long_without_saying_why():
    assert long_functions(REPO / "streams") == []


def test_the_length_check_finds_a_long_function(tmp_path: Path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LONGEST))
    (tmp_path / "m.py").write_text(
        f"def f():\n{body}\n\n\ndef g():\n    # {WHY} it must be.\n{body}\n"
    )
    assert long_functions(tmp_path) == [f"m.py:1 f {LONGEST + 1}"]
