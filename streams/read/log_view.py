"""Reading the transparency log: checkpoints, inclusion proofs of a TPS's tally, consistency proofs
between two checkpoints (RFC 9162 2.1.3 and 2.1.4), as JSON anyone can check without trusting us."""

from __future__ import annotations

import base64

from clickhouse_connect.driver.client import Client

from streams.clickhouse.log_store import proof_nodes, subtree_reader
from streams.core import merkle
from streams.core.moments import moment_text
from streams.read.scopes import ScopeError

COLUMNS = "size, root, decided_at, signed_at, note, verifier_key"


def _checkpoint_json(size: int, root: bytes, decided_at, signed_at, note: str, key: str) -> dict:
    return {
        "tree_size": int(size),
        "root_hash": bytes(root).hex(),
        "decided_at": moment_text(decided_at),
        "signed_at": moment_text(signed_at),
        "note": note,
        "verifier_key": key,
    }


def checkpoints(client: Client, limit: int = 1000) -> dict:
    rows = client.query(
        f"SELECT {COLUMNS} FROM log_checkpoints FINAL ORDER BY size DESC LIMIT {{n:UInt32}}",
        parameters={"n": limit},
    ).result_rows
    return {"checkpoints": [_checkpoint_json(*row) for row in rows]}


def checkpoint(client: Client, size: int | None = None) -> dict:
    """The checkpoint of `size` leaves, or the latest; a ScopeError (404) if there is none."""
    rows = client.query(
        f"SELECT {COLUMNS} FROM log_checkpoints FINAL WHERE {{s:UInt64}} = 0 OR size = "
        f"{{s:UInt64}} ORDER BY size DESC LIMIT 1",
        parameters={"s": size or 0},
    ).result_rows
    if not rows:
        raise ScopeError(
            f"no checkpoint of size {size}" if size else "no checkpoint yet: the log is empty", 404
        )
    return _checkpoint_json(*rows[0])


def inclusion(client: Client, tps: str, ballot: str, size: int | None = None) -> dict:
    """The latest leaf of this TPS and ballot in the checkpoint's tree, with its audit path."""
    signed = checkpoint(client, size)
    n = signed["tree_size"]
    rows = client.query(
        "SELECT idx, leaf FROM log_leaves FINAL WHERE tps = {t:String} AND ballot = {b:String} AND "
        "idx < {n:UInt64} "
        "ORDER BY idx DESC LIMIT 1",
        parameters={"t": tps, "b": ballot, "n": n},
    ).result_rows
    if not rows:
        raise ScopeError(f"no {ballot} tally of TPS {tps} in the log's first {n} leaves", 404)
    index, leaf = int(rows[0][0]), rows[0][1]
    leaf = leaf.encode() if isinstance(leaf, str) else bytes(leaf)
    path = proof_nodes(
        lambda subtree: merkle.inclusion_path(index, n, subtree), subtree_reader(client)
    )
    return {
        "leaf": base64.b64encode(leaf).decode(),
        "leaf_index": index,
        "tree_size": n,
        "audit_path": [h.hex() for h in path],
        "root_hash": signed["root_hash"],
        "checkpoint": signed,
    }


def consistency(client: Client, old: int, new: int) -> dict:
    """The consistency proof between the checkpoints of `old` and `new` leaves."""
    if not 0 < old <= new:  # no such proof: the older tree must come first
        raise ScopeError(
            f"no consistency proof from {old} to {new}: from must not be after to", 404
        )
    first, second = checkpoint(client, old), checkpoint(client, new)
    path = proof_nodes(
        lambda subtree: merkle.consistency_path(old, new, subtree), subtree_reader(client)
    )
    return {"from": first, "to": second, "consistency_path": [h.hex() for h in path]}


MAX_LEAVES = 10_000


def leaves(client: Client, start: int, end: int) -> dict:
    """Leaves [start, end) of the log, as anyone downloads them to recount: at most MAX_LEAVES, so a
    page may end before `end` (its own `end` says where: ask again from there)."""
    end = max(start, min(end, start + MAX_LEAVES))
    rows = client.query(
        "SELECT idx, leaf FROM log_leaves FINAL WHERE idx >= {a:UInt64} AND idx < {b:UInt64} ORDER "
        "BY idx",
        parameters={"a": start, "b": end},
    ).result_rows
    return {
        "start": start,
        "end": start + len(rows),  # the leaves are contiguous from start: where this page ends
        "leaves": [
            {
                "index": int(i),
                "leaf": base64.b64encode(x.encode() if isinstance(x, str) else bytes(x)).decode(),
            }
            for i, x in rows
        ],
    }


def checkpoint_differences(client: Client) -> list[str]:
    """The latest checkpoint's national totals against the results as of its last leaf's moment
    (empty: they agree, or there is no checkpoint). `tally verify` runs it; `tally log audit` also
    recounts the leaves themselves."""
    from streams.core.checkpoint import Checkpoint
    from streams.core.moments import parse_moment
    from streams.core.seats import reported_votes
    from streams.read.results import results

    try:
        signed = checkpoint(client)
    except ScopeError:
        return []
    text = signed["note"].partition("\n\n")[0] + "\n"
    moment = parse_moment(signed["decided_at"])
    differences = []
    for ballot, totals in Checkpoint.parse(text).totals.items():
        national = results(client, ballot, "national", None, moment)["regions"][0]
        held = (
            national["tps_reported"],
            national["invalid"],
            national["voters"],
            _nonzero(national["votes"]),
        )
        said = (
            totals.tps,
            totals.invalid,
            totals.voters,
            _nonzero(reported_votes(ballot, "national", totals.votes)),
        )
        if held != said:
            differences.append(
                f"log checkpoint {signed['tree_size']} {ballot}: says (tps, invalid, voters, "
                f"votes) {said}, "
                f"the results as of {signed['decided_at']} {held}"
            )
    return differences


def _nonzero(votes: dict[str, int]) -> dict[str, int]:
    return {c: n for c, n in votes.items() if n}
