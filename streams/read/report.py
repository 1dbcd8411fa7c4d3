"""Results for a person: a rich table per region list."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_results(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    choices = sorted({c for r in data["regions"] for c in r["votes"]})
    if len(choices) > 12:  # legislative ballots: too many columns; show the leading ones
        totals = {c: sum(r["votes"].get(c, 0) for r in data["regions"]) for c in choices}
        choices = sorted(sorted(choices, key=lambda c: -totals[c])[:12])
    table = Table(title=f"{data['ballot']} by {data['level']}")
    for column in ("code", "name", "TPS"):
        table.add_column(column)
    for choice in choices:
        table.add_column(choice, justify="right")
    table.add_column("invalid", justify="right")
    for region in data["regions"]:
        valid = sum(region["votes"].values()) or 1
        cells = [f"{region['votes'].get(c, 0):,} ({100 * region['votes'].get(c, 0) / valid:.1f}%)" for c in choices]
        table.add_row(
            region["code"],
            region["name"],
            f"{region['tps_reported']:,}/{region['tps_total']:,}",
            *cells,
            f"{region['invalid']:,}",
        )
    console.print(table)
