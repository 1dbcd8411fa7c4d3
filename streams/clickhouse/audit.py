"""The audit trail of one TPS, as `tally audit` prints it and /api/tps/{code} shows it: every event
received for it or under its code as Kafka key, in arrival order, with its decision, reasons and
findings, flags, gateway, device key, times and where it was received (streams.clickhouse.pages
reads it, with the page's tallies, for many TPS at once)."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from streams.clickhouse.pages import read_pages


def of_ballot(events: list[dict], ballot: str | None) -> list[dict]:
    """The trail narrowed to one ballot's decisions (all, if None); a forward names no ballot (the
    record is decided at home) and always stays."""
    if not ballot:
        return events
    return [e for e in events if e["ballot"] == ballot or e["decision"] == "forwarded"]


def history(client: Client, tps: str, ballot: str | None = None) -> list[dict]:
    page = read_pages(client, [tps]).get(tps)
    return of_ballot(page.events() if page else [], ballot)
