"""A sweep report in a real browser: headless Chromium, driven over the DevTools protocol.

Chromium talks DevTools over a pipe (--remote-debugging-pipe: JSON messages ending in NUL,
read from fd 3, written to fd 4), so no port, no websocket library and no network are
needed. Checked: the page loads with no console error, no exception and no request that
leaves the file; every image has a non-zero rendered size (with every run's <details>
opened, as printing does); the summary table has one row per run and sorts.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from rnnlab.report import Sweep  # noqa: E402
from test_report import make_store, sweep_configs  # noqa: E402

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """Chromium with DevTools on a pipe: send() a command, read events until a condition."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_chrome_r, self._write = os.pipe()
        self._read, from_chrome_w = os.pipe()
        # the ends Chromium uses go to high numbers first, so placing them at 3 and 4 in the
        # child cannot overwrite one with the other
        high = [
            os.dup2(fd, 200 + i, inheritable=False)
            for i, fd in enumerate((to_chrome_r, from_chrome_w))
        ]
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)

        def place_fds() -> None:  # runs in the child, before exec
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            close_fds=False,  # fds 3 and 4 must survive; others are not inheritable anyway
            preexec_fn=place_fds,
        )
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> Any:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        reply = self._until(lambda m: m.get("id") == self._next)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        return self._until(lambda m: m.get("method") == method, timeout)

    def _until(self, done: Any, timeout: float = 30) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if done(message):
                    return message
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium over DevTools")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode()[-500:]}")
            self._buffer += chunk

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._read, self._write):
            os.close(fd)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install -y chromium); it tests the HTML report")
    tools = DevTools(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield tools
    tools.close()


CHECK = """
(() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const images = Array.from(document.images).map(img => {
    const box = img.getBoundingClientRect();
    return {width: box.width, height: box.height, natural: img.naturalWidth,
            complete: img.complete, alt: img.alt};
  });
  const rows = document.querySelectorAll('#summary tbody tr').length;
  const header = Array.from(document.querySelectorAll('#summary th'))
    .find(th => th.textContent === 'loss');
  header.click();
  const index = Array.from(header.parentNode.children).indexOf(header);
  const sorted = Array.from(document.querySelectorAll('#summary tbody tr'))
    .map(r => r.cells[index].dataset.v);
  return JSON.stringify({images, rows, sorted});
})()
"""


def test_sweep_report_in_chromium(browser: DevTools, tmp_path: Path) -> None:
    configs = sweep_configs()
    make_store(tmp_path / "store", configs)
    path = Sweep(tmp_path / "store").save(tmp_path / "report.html")

    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Runtime", "Log", "Page", "Network"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session)
    browser.wait_event("Page.loadEventFired")
    result = browser.send("Runtime.evaluate", {"expression": CHECK, "returnByValue": True}, session)
    checks = json.loads(result["result"]["value"])

    errors = [
        e["params"]
        for e in browser.events
        if e["method"] == "Runtime.exceptionThrown"
        or (
            e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert")
        )
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert errors == []
    requests = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e["method"] == "Network.requestWillBeSent"
    ]
    assert all(url.startswith(("file:", "data:")) for url in requests), requests

    images = checks["images"]
    assert len(images) == 3 + 6 * len(configs)  # the sweep's figures, then six per run
    for image in images:
        assert image["complete"] and image["natural"] > 0, image["alt"]
        assert image["width"] > 0 and image["height"] > 0, image["alt"]
    assert checks["rows"] == len(configs)
    losses = [float(v) for v in checks["sorted"] if v]
    assert losses == sorted(losses)  # a click on the header sorted by loss
