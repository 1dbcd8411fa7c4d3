"""The current figures of benchmarks/RESULTS.md: one table per scenario, from the latest report of
each in benchmarks/runs/ (every report names its commit, the machine and the command: provenance).

Usage: .venv/bin/python -m benchmarks.results_table [--write]
A report is a `tally bench --json` file or a benchmark script's JSON; name it
benchmarks/runs/<scenario>-<commit, 7 digits>.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

RUNS = Path(__file__).resolve().parent / "runs"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- current:begin -->", "<!-- current:end -->"


def _load() -> list[tuple[str, dict]]:
    return [(path.name, orjson.loads(path.read_bytes())) for path in sorted(RUNS.glob("*.json"))]


def _latest(reports: list[tuple[str, dict]], scenario) -> dict[str, tuple[str, dict]]:  # noqa: ANN001
    latest: dict[str, tuple[str, dict]] = {}
    for name, report in reports:
        key = scenario(report)
        if key and (
            key not in latest or report["provenance"]["at"] > latest[key][1]["provenance"]["at"]
        ):
            latest[key] = (name, report)
    return dict(sorted(latest.items()))


def _commit(report: dict) -> str:
    p = report["provenance"]
    return f"`{(p['commit'] or '?')[:7]}`{' (dirty)' if p['dirty'] else ''}"


def _workers(report: dict) -> str:
    return f"{report['workers']} worker{'s' if report['workers'] > 1 else ''}"


def _bench_scenario(report: dict) -> str | None:
    if "events_per_s" not in report:
        return None
    workers = _workers(report)
    return (
        f"{report['ballots']}, {report['tps']:,} TPS, {workers}, log "
        f"{'on' if report['log'] else 'off'}"
    )


def _bench(reports: list[tuple[str, dict]]) -> list[str]:
    rows = [
        "### `tally bench`: a night from backlog to exact totals",
        "",
        "| scenario | events/s | of the necessary baseline | worker CPU an event / one "
        "verification alone | p99 at the offered rate | rate held (p99 < 1 s) | worker peak RSS "
        "| exact | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, (name, r) in _latest(reports, _bench_scenario).items():
        rows.append(_bench_row(scenario, name, r))
    return rows


def _bench_row(scenario: str, name: str, r: dict) -> str:
    alone = r.get("verify_alone_us")
    if alone:  # the yardstick measured alone, before and after the run (streams.ops.yardstick)
        cpu = r["worker_cpu_us_per_event"]
        per_verify = f"{cpu:.0f} / {alone:.0f} us = {cpu / alone:.1f}x"
    elif r["verify_us"]:  # older reports: the check timed inside the run (flattered by the load)
        per_verify = f"{r['worker_cpu_us_per_event']:.0f} / {r['verify_us']:.0f} us (in the run)"
    else:
        per_verify = "-"
    phases = r.get("phases") or []
    p99 = " ; ".join(f"{p['p99_ms']:,.0f} ms at {p['offered']:,.0f}/s" for p in phases) or (
        f"{r['latency_p99_ms']:,.0f} ms at {r['offered_rate']:,.0f}/s"
    )
    if not phases:
        held = "not searched"
    elif r.get("rate_held") is None:
        offered = ", ".join(f"{p['offered']:,.0f}" for p in phases)
        held = f"none of {offered}/s"
    else:
        held = f"{r['rate_held']:,.0f}/s"
    rss = ", ".join(f"{m:,.0f}" for m in r["worker_peak_rss_mib"])
    return (
        f"| {scenario} | {r['events_per_s']:,.0f} | {r['ratio_to_necessary']:.2f} | "
        f"{per_verify} | {p99} | {held} | {rss} MiB | {'yes' if r['exact'] else '**no**'} | "
        f"[{name}](runs/{name}) {_commit(r)} |"
    )


def _flood_scenario(report: dict) -> str | None:
    return (
        f"{report['exports']} exports, {report['tps']:,} TPS, {report['level']} level"
        if "exports" in report
        else None
    )


def _flood(reports: list[tuple[str, dict]]) -> list[str]:
    rows = [
        "### `benchmarks.export_flood`: an uncached answer beside a flood of exports",
        "",
        "| scenario | p99 alone | p99 during the flood | ratio | streamed / refused 503 | run |",
        "|---|---|---|---|---|---|",
    ]
    for scenario, (name, r) in _latest(reports, _flood_scenario).items():
        rows.append(
            f"| {scenario} | {r['alone']['p99_ms']:,.1f} ms | {r['during']['p99_ms']:,.1f} ms | "
            f"{r['during_p99_over_alone_p99']:.2f} | {r['streamed']} / {r['refused_503']} | "
            f"[{name}](runs/{name}) {_commit(r)} |"
        )
    return rows


def _read_scenario(report: dict) -> str | None:
    if "read" not in report:
        return None
    workers = _workers(report)
    return (
        f"{report['ballots']}, {report['tps']:,} TPS, {workers}, {report['readers']} readers "
        f"while producing at {report['rate']:,.0f}/s"
    )


def _read(reports: list[tuple[str, dict]]) -> list[str]:
    rows = [
        "### `benchmarks.read`: answers while the workers ingest",
        "",
        "| scenario | endpoint | requests | p50 | p99 | while producing: n, p50, p99 | run |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario, (name, r) in _latest(reports, _read_scenario).items():
        for endpoint, f in r["read"].items():
            w = f.get("while_producing")  # older reports did not tell them apart
            during = (
                f"{w['requests']:,}, {w['p50_ms']:,.1f} ms, {w['p99_ms']:,.1f} ms" if w else "-"
            )
            rows.append(
                f"| {scenario} | {endpoint} | {f['requests']:,} | {f['p50_ms']:,.1f} ms | "
                f"{f['p99_ms']:,.1f} ms | {during} | [{name}](runs/{name}) {_commit(r)} |"
            )
    return rows


def current() -> str:
    reports = _load()
    machines = sorted({r["provenance"]["machine"] for _, r in reports})
    lines = [
        BEGIN,
        "",
        f"Machines of these runs: {'; '.join(machines)}.",
        "",
        *_bench(reports),
        "",
        *_flood(reports),
        "",
        *_read(reports),
        "",
        END,
    ]
    return "\n".join(lines)


def written() -> str:
    text = RESULTS.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


if __name__ == "__main__":
    table = current()
    if "--write" in sys.argv:
        text = RESULTS.read_text()
        RESULTS.write_text(text[: text.index(BEGIN)] + table + text[text.index(END) + len(END) :])
        print(f"wrote the current figures into {RESULTS}")
    else:
        print(table)
