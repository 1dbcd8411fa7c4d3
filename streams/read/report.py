"""Results for a person: rich tables that fit in 80 columns.

Presidential results list the pairs as columns. Legislative ballots have up to 24 parties (and
candidates only within a dapil), so parties are rows: a region's parties, a dapil's parties with
their seats and its candidates, and the seats per party.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from streams.core.seats import LEGISLATIVE


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def print_results(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    if data["ballot"] in LEGISLATIVE:
        _print_legislative(data, console)
        return
    choices = sorted({c for r in data["regions"] for c in r["votes"]})
    regions = data["regions"]
    national = data["level"] == "national" and regions
    title = (
        f"{data['ballot']}: {regions[0]['name']}"
        if national
        else f"{data['ballot']} per {data['level']}"
    )
    # One line a region, within 80 columns for the three pairs: every number whole, the names cut.
    rows = []
    for region in regions:
        valid = sum(region["votes"].values()) or 1
        votes = region["votes"]
        cells = [f"{votes.get(c, 0):,} {100 * votes.get(c, 0) / valid:.1f}%" for c in choices]
        tps = f"{region['tps_reported']:,}/{region['tps_total']:,}"
        rows.append([region["name"] or region["code"], tps, *cells, f"{region['invalid']:,}"])
    heads = ["region", "TPS", *choices, "invalid"]
    table = Table(
        title=title, box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False
    )
    for i, head in enumerate(heads):
        if i == 0:
            table.add_column(head, no_wrap=True, overflow="ellipsis", max_width=18)
        else:
            table.add_column(head, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    names = data.get("names") or {}
    for choice in choices:  # who the columns are
        if choice in names:
            console.print(f"  {choice} {names[choice]}", highlight=False)


def _print_legislative(data: dict, console: Console) -> None:
    """One region: its parties (or DPD candidates) as rows. Several: a row each, with the two
    leaders."""
    regions = data["regions"]
    if len(regions) == 1:
        region = regions[0]
        valid = sum(region["votes"].values())
        name = region["name"] or region["code"]
        reported = f"{region['tps_reported']:,}/{region['tps_total']:,}"
        table = Table(title=f"{data['ballot']} {name}: {reported} TPS")
        table.add_column("party" if data["ballot"] != "DPD" else "candidate")
        table.add_column("votes", justify="right")
        table.add_column("share", justify="right")
        for choice, votes in sorted(region["votes"].items(), key=lambda kv: -kv[1]):
            table.add_row(choice, f"{votes:,}", _pct(votes, valid))
        console.print(table)
        return
    table = Table(title=f"{data['ballot']} by {data['level']} (party totals)")
    for column, justify in (
        ("code", "left"),
        ("name", "left"),
        ("TPS", "right"),
        ("first", "left"),
        ("second", "left"),
    ):
        table.add_column(column, justify=justify)
    for region in regions:
        valid = sum(region["votes"].values())
        leaders = sorted(region["votes"].items(), key=lambda kv: -kv[1])[:2]
        cells = [f"{c} {_pct(n, valid)}" for c, n in leaders] + [""] * (2 - len(leaders))
        table.add_row(
            region["code"],
            region["name"][:24],
            f"{region['tps_reported']:,}/{region['tps_total']:,}",
            *cells,
        )
    console.print(table)


def print_dapil(data: dict, console: Console | None = None) -> None:
    """A dapil: its parties with votes and seats, then its candidates with the elected marked."""
    console = console or Console()
    console.print(
        f"[bold]{data['ballot']} {data['dapil']} {data['name']}[/]: {data['seats']} seats, "
        f"{data['tps_reported']:,}/{data['tps_total']:,} TPS, {data['valid']:,} valid, "
        f"{data['invalid']:,} invalid"
    )
    if data["parties"]:
        table = Table(title="parties")
        for column, justify in (
            ("party", "left"),
            ("name", "left"),
            ("votes", "right"),
            ("share", "right"),
            ("seats", "right"),
        ):
            table.add_column(column, justify=justify)
        for party in sorted(data["parties"], key=lambda p: -p["votes"]):
            table.add_row(
                party["party"],
                party["name"][:24],
                f"{party['votes']:,}",
                _pct(party["votes"], data["valid"]),
                str(party["seats"] or ""),
            )
        console.print(table)
    table = Table(title="candidates (* elected)")
    for column, justify in (("", "left"), ("code", "left"), ("name", "left"), ("votes", "right")):
        table.add_column(column, justify=justify)
    for candidate in sorted(
        data["candidates"],
        key=lambda c: (c["code"][:3] if c["code"].startswith("P") else "", -c["votes"]),
    ):
        table.add_row(
            "*" if candidate["elected"] else "",
            candidate["code"],
            candidate["name"][:30],
            f"{candidate['votes']:,}",
        )
    console.print(table)
    _print_margin(data.get("margin"), console)


def _print_margin(margin: dict | None, console: Console) -> None:
    if not margin:
        return
    if "candidate" in margin:  # DPD
        console.print(
            f"last seat: {margin['candidate']} ({margin['votes']:,}); runner-up "
            f"{margin['runner_up']} "
            f"needs {margin['votes_needed']:,} more votes"
        )
    elif margin.get("runner_up"):
        console.print(
            f"last seat: {margin['party']} (quotient {margin['quotient']:,}); runner-up "
            f"{margin['runner_up']} "
            f"(quotient {margin['runner_up_quotient']:,}) needs {margin['votes_needed']:,} more "
            "votes"
        )


def print_seats(data: dict, console: Console | None = None) -> None:
    """Seats per party (DPR: nationally, with the threshold; DPRD: summed over the bodies), or one
    dapil's."""
    console = console or Console()
    if len(data["dapils"]) == 1:
        dapil = data["dapils"][0]
        console.print(
            f"[bold]{data['ballot']} {dapil['dapil']}[/]: {dapil['seats']} seats, elected "
            f"{', '.join(dapil['elected'])}"
        )
        for row in dapil["parties"]:
            if row["seats"]:
                console.print(f"  {row['party']}: {row['seats']} ({row['votes']:,} votes)")
        _print_margin(dapil["margin"], console)
        for tie in dapil["ties"]:
            console.print(f"  tie: {tie}")
        return
    threshold = f", threshold {100 * data['threshold']:g}%" if data["threshold"] is not None else ""
    seats = sum(d["seats"] for d in data["dapils"])
    table = Table(
        title=f"{data['ballot']} seats: {seats:,} in {len(data['dapils']):,} dapils{threshold}"
    )
    for column, justify in (
        ("party", "left"),
        ("votes", "right"),
        ("share", "right"),
        ("passes", "left"),
        ("seats", "right"),
    ):
        table.add_column(column, justify=justify)
    for row in sorted(data["national"], key=lambda r: (-r["seats"], -r["votes"])):
        table.add_row(
            row["party"],
            f"{row['votes']:,}",
            f"{100 * row['share']:.2f}%",
            "yes" if row["passes"] else "no",
            str(row["seats"]),
        )
    console.print(table)
    if data["ballot"] == "DPD":
        for dapil in data["dapils"]:
            console.print(f"{dapil['dapil']}: {', '.join(dapil['elected'])}")


def print_changes(data: dict, console: Console | None = None) -> None:
    """`tally changes`: one line per change, what it moved and why, then the cursor to go on
    from."""
    console = console or Console()
    scope = data.get("dapil") or data.get("region") or "national"
    table = Table(title=f"{data['ballot']} changes in {scope} ({data['order']})")
    for column, justify in (
        ("decided", "left"),
        ("tps", "left"),
        ("what", "left"),
        ("revision", "left"),
        ("votes", "left"),
        ("invalid", "right"),
        ("voters", "right"),
        ("event", "left"),
    ):
        table.add_column(column, justify=justify)
    for change in data["changes"]:
        moved = change.get("parties") or change["votes"]
        table.add_row(
            change["decided_at"],
            change["tps"],
            change["kind"],
            f"{change['revision']['old']} -> {change['revision']['new']}",
            ", ".join(f"{c} {n:+,}" for c, n in moved.items()) or "-",
            f"{change['invalid']:+,}",
            f"{change['voters']:+,}",
            f"{change['event_id']} ({change['gateway']})",
        )
    console.print(table)
    console.print(f"next: {data['next']}" if data["next"] else "no changes yet")
