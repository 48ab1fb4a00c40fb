"""One headless Chromium (Debian's package), driven over the DevTools protocol.

Started once per session; each page is opened in the same browser, and what
it drew, what it logged and what it looks like are read back.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def ensure_chromium() -> str:
    """The Chromium binary, installed from Debian when it is missing."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise RuntimeError("chromium is missing and apt-get is not available")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(install, capture_output=True, check=True)
    return CHROMIUM


@dataclass
class Rendered:
    """What a page showed: counts of chart elements, console errors, a screenshot."""

    charts: int
    series: int
    bars: int
    errors: list[str] = field(default_factory=list)
    png: bytes = b""
    seconds: float = 0.0


class Browser:
    """A running headless Chromium with one page, driven over DevTools."""

    def __init__(self, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                ensure_chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1500,1200",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )
        self._id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; keep the events that arrive meanwhile."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def _wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(json.loads(self.ws.recv()))

    def _errors(self) -> list[str]:
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"].get("text")))
            elif event.get("method") == "Runtime.consoleAPICalled" and params.get(
                "type"
            ) in ("error", "assert"):
                found.append(json.dumps(params.get("args")))
            elif (
                event.get("method") == "Log.entryAdded"
                and params["entry"].get("level") == "error"
            ):
                found.append(str(params["entry"].get("text")))
        return found

    def render(self, page: Path) -> Rendered:
        """Open `page`, count what it drew, collect errors, take a screenshot."""
        started = time.monotonic()
        self.events = []
        self.call("Page.navigate", url=page.resolve().as_uri())
        self._wait_for("Page.loadEventFired")
        counts = self.call(
            "Runtime.evaluate",
            expression="JSON.stringify({c: document.querySelectorAll('svg.chart')"
            ".length, s: document.querySelectorAll('svg.chart .series').length,"
            " b: document.querySelectorAll('svg.chart .bar').length,"
            " h: document.documentElement.scrollHeight})",
            returnByValue=True,
        )
        found = json.loads(counts["result"]["value"])
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1500,
            height=int(found["h"]),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png")
        seconds = time.monotonic() - started
        return Rendered(
            found["c"],
            found["s"],
            found["b"],
            self._errors(),
            base64.b64decode(shot["data"]),
            seconds,
        )

    def close(self) -> None:
        """Close the connection and end the browser process it started."""
        self.ws.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
