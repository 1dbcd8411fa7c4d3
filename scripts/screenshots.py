"""The README's screenshots of the results page, made again: the national view, a province, a dapil,
a TPS and a province on a phone (390 px), from a running `tally serve` or one started here on the
data dir's night (after `make demo`: the demo's).

Usage: .venv/bin/python -m scripts.screenshots [--url http://127.0.0.1:8080] [--data-dir .tally]
       [--province 32] [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from streams.embedded import servers
from tests.browser import render

VIEWS = ("national", "province", "dapil", "tps", "phone")


def get(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=60) as answer:
        return json.loads(answer.read())


@contextmanager
def served(url: str | None, data_dir: str):
    """The API's base URL: the one given, or a `tally serve` started (and stopped) here."""
    if url:
        yield url.rstrip("/")
        return
    port = servers.free_port()
    cmd = [sys.executable, "-m", "streams", "serve", "--port", str(port), "--data-dir", data_dir]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        while not servers.port_open("127.0.0.1", port):
            if server.poll() is not None:
                raise SystemExit(
                    "tally serve did not start: is there a night on this data dir (make demo)?"
                )
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=20)


def routes(base: str, province: str) -> dict[str, tuple[str, int, int]]:
    """Each view's route and window (width, height)."""
    dapil = get(base, f"/api/dapils?ballot=DPR&region={province}")["dapils"][0]["dapil"]
    tps = next(
        r["code"]
        for r in get(base, f"/api/results?ballot=PPWP&region={province}&level=tps")["regions"]
    )
    return {
        "national": ("#/PPWP", 1400, 1000),
        "province": (f"#/PPWP/{province}", 1400, 1000),
        "dapil": (f"#/DPR/dapil/{dapil}", 1400, 1000),
        "tps": (f"#/PPWP/{tps}", 1400, 1000),
        "phone": (f"#/PPWP/{province}", 390, 844),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--data-dir", default=".tally")
    parser.add_argument("--province", default="32")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with served(args.url, args.data_dir) as base:
        for name, (route, width, height) in routes(base, args.province).items():
            shot = render(f"{base}/{route}", width, height, screenshot=True)
            path = args.out / f"page-{name}.png"
            path.write_bytes(shot.png or b"")
            print(f"{path}: {route} at {width} px, {len(shot.png or b''):,} bytes")


if __name__ == "__main__":
    main()
