"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client): a page laid out
at any viewport (a phone's 390 px included, which `--window-size` cannot give: headless windows are
at least 500 px wide), its DOM once its scripts said they are ready, and a screenshot."""

from __future__ import annotations

import asyncio
import base64
import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class Rendered:
    dom: str
    png: bytes | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _render(
    url: str, width: int, height: int, mobile: bool, screenshot: bool, timeout_s: float
) -> Rendered:
    port = _free_port()
    with tempfile.TemporaryDirectory(
        prefix="tally-chromium-", ignore_cleanup_errors=True
    ) as profile:
        browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                            target = next(t for t in await answer.json() if t["type"] == "page")
                        break
                    except (aiohttp.ClientError, StopIteration):
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                async with http.ws_connect(
                    target["webSocketDebuggerUrl"], max_msg_size=1 << 28
                ) as ws:
                    ids = itertools.count(1)

                    async def call(method: str, **params: object) -> dict:
                        number = next(ids)
                        await ws.send_json({"id": number, "method": method, "params": params})
                        while True:
                            message = await ws.receive_json()
                            if message.get("id") == number:
                                if "error" in message:
                                    raise RuntimeError(f"{method}: {message['error']}")
                                return message["result"]

                    await call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                               deviceScaleFactor=1, mobile=mobile)  # fmt: skip
                    await call("Page.navigate", url=url)
                    deadline = time.monotonic() + timeout_s
                    while True:
                        ready = await call(
                            "Runtime.evaluate",
                            expression="document.body && document.body.dataset.ready",
                        )
                        if ready["result"].get("value") == "1":
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{url} never said it was ready")
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(0.3)  # a last layout after the data-ready render
                    dom = await call(
                        "Runtime.evaluate", expression="document.documentElement.outerHTML"
                    )
                    png = None
                    if screenshot:
                        png = base64.b64decode(
                            (await call("Page.captureScreenshot", format="png"))["data"]
                        )
                    return Rendered(dom["result"]["value"], png)
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                browser.kill()


def render(
    url: str, width: int = 1400, height: int = 900, screenshot: bool = False, timeout_s: float = 60
) -> Rendered:
    """The page at `url` laid out `width` x `height` px (a phone's, touch and all, under 600 px)."""
    if CHROMIUM is None:
        raise RuntimeError("Debian's chromium is missing: `make browser` installs it")
    return asyncio.run(_render(url, width, height, width < 600, screenshot, timeout_s))


def save(rendered: Rendered, path: Path) -> None:
    assert rendered.png is not None
    path.write_bytes(rendered.png)
