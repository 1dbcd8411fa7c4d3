"""`tally status`: one screen for the operator. Is the broker reachable, is ClickHouse; which worker
holds which partition (the leases every write is fenced by), how far behind each partition is, which
partition waits on a batch it cannot read, how many records arrived off their home and were sent
there, how fast events are decided, what was decided so far, which registry is loaded, the log's
last checkpoint. Every part says what it could not read instead of failing the whole screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table

from streams.clickhouse.client import connect
from streams.embedded.servers import kafka_bootstrap
from streams.kafka.auth import kafka_options
from streams.kafka.produce import partition_lag
from streams.settings import SUBMISSIONS, Settings


def _part(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - a dependency down is what this screen is for
        return {
            "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        }


def status(settings: Settings) -> dict:
    """Everything `tally status` shows, as JSON."""
    topic = settings.topic(SUBMISSIONS)
    return {
        "broker": _part(lambda: _lag(settings, topic)),
        "clickhouse": _part(lambda: _clickhouse(settings, topic)),
    }


def _lag(settings: Settings, topic: str) -> dict:
    auth = kafka_options(settings)
    offsets = asyncio.run(
        asyncio.wait_for(
            partition_lag(kafka_bootstrap(settings), settings.group_id, topic, auth), 10
        )
    )
    partitions = {
        str(p): {"end": end, "committed": done, "lag": max(0, end - done)}
        for p, (end, done) in offsets.items()
    }
    return {
        "topic": topic,
        "partitions": partitions,
        "lag": sum(p["lag"] for p in partitions.values()),
    }


def _clickhouse(settings: Settings, topic: str) -> dict:
    client = connect(settings, read_only=True)
    leases, stalls = _leases_and_stalls(client, topic)
    decided = dict(
        client.query(
            "SELECT decision, count() FROM tally_decisions FINAL GROUP BY decision"
        ).result_rows
    )
    forwarded = {
        str(p): n
        for p, n in client.query(
            "SELECT src_partition, count() FROM tally_forwards FINAL GROUP BY src_partition"
        ).result_rows
    }
    last_minute = client.command(
        "SELECT count() FROM tally_decisions WHERE decided_at > now64(3) - INTERVAL 60 SECOND"
    )
    loads, loaded_at, tps = client.query(
        "SELECT count(), max(loaded_at), argMax(tps, loaded_at) FROM registry_loads"
    ).result_rows[0]
    epochs = client.query(
        "SELECT epoch, reason, detected_at FROM topic_epochs FINAL WHERE topic = {t:String} "
        "ORDER BY epoch",
        parameters={"t": topic},
    ).result_rows
    return {
        "reachable": True,
        "leases": leases,
        # "": a lease released by a worker that stopped cleanly
        "workers": sorted(set(leases.values()) - {""}),
        "decisions": decided,
        # partition -> records that arrived there off their home and were sent home
        "forwarded": forwarded,
        "stalled": stalls,
        "events_per_s_last_minute": round(last_minute / 60, 1),
        "registry": {
            "loads": loads,
            "loaded_at": str(loaded_at) if loads else None,
            "tps": tps,
        },
        "broker_restarts": [
            {"epoch": e, "reason": r, "detected_at": str(at)} for e, r, at in epochs
        ],
        "log_checkpoint": _checkpoint(client),
    }


def _leases_and_stalls(client: Client, topic: str) -> tuple[dict[str, str], dict[str, dict]]:
    """Who holds each partition, and the partitions that wait on a batch they cannot read: a
    partition waits if the worker that holds its lease said so last (a new owner finds out anew)."""
    leases = {
        str(p): owner
        for p, owner in client.query(
            "SELECT partition, argMax(owner, generation) FROM partition_leases WHERE topic = "
            "{t:String} GROUP BY partition ORDER BY partition",
            parameters={"t": topic},
        ).result_rows
    }
    stalls = {
        str(p): {"offset": offset, "reason": reason, "worker": worker, "noted_at": str(at)}
        for p, offset, reason, worker, at in client.query(
            "SELECT partition, offset, reason, worker, noted_at FROM partition_stalls FINAL "
            "WHERE topic = {t:String}",
            parameters={"t": topic},
        ).result_rows
        if offset >= 0 and leases.get(str(p), "").startswith(f"{worker}#")
    }
    return leases, stalls


def _checkpoint(client: Client) -> dict | None:
    """The log's newest checkpoint: its size, root and moment."""
    rows = client.query(
        "SELECT size, hex(root), decided_at FROM log_checkpoints FINAL ORDER BY size DESC LIMIT 1"
    ).result_rows
    if not rows:
        return None
    size, root, at = rows[0]
    return {"tree_size": size, "root_hash": root.lower(), "decided_at": str(at)}


def print_status(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    broker, ch = data["broker"], data["clickhouse"]
    if "error" in broker:
        console.print(f"[red]broker: unreachable[/] ({broker['error']})")
    else:
        console.print(
            f"[green]broker: reachable[/]; {broker['topic']}: lag {broker['lag']:,} events"
        )
    if "error" in ch:
        console.print(f"[red]ClickHouse: unreachable[/] ({ch['error']})")
        return
    console.print(
        f"[green]ClickHouse: reachable[/]; {len(ch['workers'])} worker(s) hold leases; "
        f"{ch['events_per_s_last_minute']:,} events/s over the last minute; decided so far "
        f"{ch['decisions']}"
    )
    for restart in ch["broker_restarts"]:
        console.print(
            f"[bold red]the broker restarted empty[/] (found {restart['detected_at']}; epoch "
            f"{restart['epoch']}): "
            f"{restart['reason']}. Resend from the gateways' logs (`tally produce`); counted "
            "events are not counted again."
        )
    for p, stall in sorted(ch["stalled"].items(), key=lambda item: int(item[0])):
        console.print(
            f"[bold red]partition {p} waits[/] at offset {stall['offset']:,} since "
            f"{stall['noted_at']}: its records cannot be "
            f"read ({stall['reason']}); nothing after it is counted or skipped, the other "
            "partitions go on"
        )
    table = Table(title="partitions")
    numbers = ("end offset", "committed", "lag", "forwarded home")
    for column in ("partition", "worker (lease)", *numbers, "reads"):
        table.add_column(column, justify="right" if column in numbers else "left")
    partitions = {} if "error" in broker else broker["partitions"]
    for p in sorted(set(partitions) | set(ch["leases"]), key=int):
        offsets = partitions.get(p, {})
        stall = ch["stalled"].get(p)
        table.add_row(
            p,
            ch["leases"].get(p) or "-",
            *(f"{offsets[k]:,}" if k in offsets else "?" for k in ("end", "committed", "lag")),
            f"{ch['forwarded'].get(p, 0):,}",
            f"[red]waits at {stall['offset']:,}[/]" if stall else "yes",
        )
    console.print(table)
    registry = ch["registry"]
    console.print(
        f"registry: {registry['loads']} load(s), last {registry['loaded_at']}, {registry['tps']:,} "
        "TPS"
    )
    checkpoint = ch["log_checkpoint"]
    if checkpoint:
        size, root, at = (
            checkpoint["tree_size"],
            checkpoint["root_hash"][:16],
            checkpoint["decided_at"],
        )
        console.print(f"log: checkpoint {size:,} leaves, root {root}.., last leaf {at}")
    else:
        console.print("log: no checkpoint yet")
