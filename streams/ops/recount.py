"""The auditor's recount: every leaf of the log up to a tree size, read a page at a time, hashed
into the root (a compact range: O(log n) hashes held) and summed into national totals per ballot
(the latest tally of each TPS: memory grows with the TPS counted, never with the leaves)."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from clickhouse_connect.driver.client import Client

from streams.core import merkle
from streams.core.checkpoint import BallotTotals

PAGE = 50_000


Pages = Callable[[int, int], list[tuple[int, bytes]]]  # (start, end) -> [(index, leaf bytes)]


def from_clickhouse(client: Client) -> Pages:
    def page(start: int, end: int) -> list[tuple[int, bytes]]:
        rows = client.query(
            "SELECT idx, leaf FROM log_leaves FINAL WHERE idx >= {a:UInt64} AND idx < {b:UInt64} "
            "ORDER BY idx",
            parameters={"a": start, "b": end},
        ).result_rows
        return [
            (int(i), leaf.encode() if isinstance(leaf, str) else bytes(leaf)) for i, leaf in rows
        ]

    return page


def from_api(url: str) -> Pages:
    """Leaves as anyone downloads them: `GET /api/log/leaves?start=..&end=..` of a `tally serve`."""
    import base64
    import urllib.request

    def page(start: int, end: int) -> list[tuple[int, bytes]]:
        with urllib.request.urlopen(
            f"{url.rstrip('/')}/api/log/leaves?start={start}&end={end}", timeout=120
        ) as response:
            body = orjson.loads(response.read())
        return [(int(x["index"]), base64.b64decode(x["leaf"])) for x in body["leaves"]]

    return page


def recount(
    pages: Pages,
    size: int,
    progress: Callable[[int], object] = lambda n: None,
    page_size: int = PAGE,
) -> tuple[bytes, dict[str, BallotTotals]]:
    frontier: merkle.Frontier = []
    latest: dict[tuple[str, str], tuple[int, dict, int, int]] = {}
    done = 0
    while done < size:
        rows = pages(done, min(size, done + page_size))
        for idx, data in rows:
            if idx != done:
                raise ValueError(f"the log has no leaf {done} (next is {idx})")
            merkle.push(frontier, merkle.leaf_hash(data))
            event = orjson.loads(data)["event"]
            key = (event["ballot"], event["tps"])
            if event["revision"] >= latest.get(key, (0,))[0]:
                # tally.v1: voters who used a ballot, by category
                voters = sum(event["voters"]["voted"].values())
                latest[key] = (event["revision"], event["votes"], event["invalid"], voters)
            done += 1
        if not rows:
            raise ValueError(f"the log has no leaf {done}")
        progress(done)
    root = merkle.frontier_root(frontier)
    totals: dict[str, BallotTotals] = {}
    for (ballot, _), (_, votes, invalid, voters) in latest.items():
        totals.setdefault(ballot, BallotTotals()).add(1, invalid, voters, votes)
    return root, totals
