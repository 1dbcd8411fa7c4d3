"""`tally simulate`: build the registry, write the files, load the registry, produce the events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import orjson
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from streams.clickhouse.client import connect
from streams.clickhouse.registry_store import load_registry
from streams.embedded.servers import kafka_bootstrap
from streams.gateways.kemendagri import parse_regions
from streams.gateways.registry_file import write_records
from streams.gateways.shape import build_shape_on, registry_records
from streams.gateways.simulate import Plan, generate
from streams.gateways.tallies import POLLS_CLOSE
from streams.kafka.auth import kafka_options
from streams.kafka.produce import publish
from streams.settings import SUBMISSIONS, Settings


def _tee(events: Iterator[bytes], path: Path | None) -> Iterator[bytes]:
    if path is None:
        yield from events
        return
    with path.open("wb") as fh:
        for event in events:
            fh.write(event + b"\n")
            yield event


def night_pace(speedup: float) -> Callable[[bytes], float]:
    """Seconds after the start at which an event is due: its simulated submitted_at, `speedup` times
    faster."""

    def pace(event: bytes) -> float:
        try:
            submitted = datetime.fromisoformat(orjson.loads(event)["submitted_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return 0.0  # a broken event goes out at once
        return (submitted - POLLS_CLOSE).total_seconds() / speedup

    return pace


def run_simulation(
    settings: Settings,
    plan: Plan,
    out: Path | None,
    dry_run: bool,
    rate: float | None,
    regions: Path | None = None,
    speedup: float | None = None,
) -> int:
    shape = None
    # TPS and contests synthesized onto the real villages of a Kemendagri list
    if regions is not None:
        with regions.open(newline="", encoding="utf-8-sig") as fh:
            shape = build_shape_on(
                list(parse_regions(fh, str(regions))), plan.n_tps, plan.seed, plan.ballots
            )
    shape, events, truth = generate(plan, shape)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_records(out / "registry.jsonl", registry_records(shape))
    expected = 0
    # How many events a night makes is known only at its end (resends, corrections): a count, no
    # bar.
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f}"),
        TimeElapsedColumn(),
    ) as progress:
        if not dry_run:
            task = progress.add_task("loading registry into ClickHouse", total=None)
            load_registry(connect(settings), registry_records(shape))
            progress.update(task, completed=1, total=1)
        stream = _tee(events, out / "events.jsonl" if out else None)
        task = progress.add_task(
            "producing tallies" if not dry_run else "writing events", total=None
        )
        if dry_run:
            for expected, _ in enumerate(stream, 1):
                if expected % 10_000 == 0:
                    progress.update(task, completed=expected)
            progress.update(task, completed=expected)
        else:
            expected = asyncio.run(
                publish(
                    kafka_bootstrap(settings),
                    settings.topic(SUBMISSIONS),
                    stream,
                    rate,
                    progress=lambda n: progress.update(task, completed=n),
                    pace=night_pace(speedup) if speedup else None,
                    auth=kafka_options(settings),
                )
            )
    if out is not None:
        truth.write_files(out)
    print(
        f"{'wrote' if dry_run else 'produced'} {expected:,} events for {len(shape.tps):,} TPS"
        + (f"; files in {out}" if out else "")
    )
    return expected
