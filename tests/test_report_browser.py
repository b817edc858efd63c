"""The HTML report renders in a real browser: headless Chromium, no console error, every
image loaded, and a screenshot saved.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), so no WebSocket client
or other dependency is needed. The page is the report as written, unchanged: console
messages and exceptions come from the ``Runtime`` and ``Log`` domains, image state from
``document.images`` evaluated in the page, and the screenshot from
``Page.captureScreenshot``. A broken page checks that the checks can fail.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.test_report_html import build_run

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu")
INSTALL = "apt-get install chromium (Debian/Ubuntu), or put a chromium binary on PATH"
PNG = b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"headless Chromium not found; install it: {INSTALL}")


class Browser:
    """A headless Chromium driven over the DevTools pipe."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_chrome_r, self._write = os.pipe()
        self._read, from_chrome_w = os.pipe()

        def child_fds() -> None:
            # Chromium reads commands on fd 3 and writes replies on fd 4; copy the pipe
            # ends above 10 first so that neither dup2 overwrites the other
            import fcntl

            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--mute-audio",
                "about:blank",
            ],
            preexec_fn=child_fds,  # the test process runs no other thread
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from Chromium")
            ready, _, _ = select.select([self._read], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    err = (
                        self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    )
                    raise RuntimeError(f"Chromium closed the pipe: {err[-2000:]}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)


IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => "
    "({alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"
)


def open_page(html: Path, screenshot: Path, profile: Path) -> dict[str, Any]:
    """Load ``html`` in headless Chromium; return its console errors and image states,
    and save a full-page screenshot (at most 16000 CSS pixels tall)."""
    browser = Browser(_chromium(), profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired", session)
        value = browser.call(
            "Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=session
        )["result"]["value"]
        size = browser.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = browser.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": min(size["height"], 16000),
                    "scale": 0.5,
                },
            },
            session=session,
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        # a last round trip: console events sent during the load are in by now
        browser.call("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        browser.close()
    errors = []
    for event in browser.events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in (
            "error",
            "assert",
        ):
            errors.append(json.dumps(params.get("args"))[:300])
        elif event.get("method") == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails"))[:300])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(str(params["entry"].get("text"))[:300])
    return {"errors": errors, "images": json.loads(value), "height": size["height"]}


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hybridrad.report.html import write_report

    _chromium()
    run_dir = build_run(tmp_path_factory.getbasetemp() / "report_run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_report(run_dir, tmp_path_factory.mktemp("browser") / "report.html")


def test_report_renders_in_headless_chromium(report_path: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    page = open_page(report_path, screenshot, tmp_path / "profile")
    assert page["errors"] == []
    assert len(page["images"]) >= 15
    broken = [i["alt"] for i in page["images"] if not (i["complete"] and i["width"] > 0)]
    assert broken == []
    assert page["height"] > 3000  # every section laid out, not an empty page
    data = screenshot.read_bytes()
    assert data[:8] == PNG and len(data) > 50_000
    from PIL import Image

    with Image.open(screenshot) as im:
        assert im.size[0] == 640 and im.size[1] > 1500
        # not blank: the header bar and the plots give many colours
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 100


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    page_path = tmp_path / "broken.html"
    page_path.write_text(
        "<!DOCTYPE html><html><body>"
        '<img alt="ok" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ'
        'AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==">'
        '<img alt="truncated" src="data:image/png;base64,iVBORw0KGgo=">'
        '<img alt="missing" src="missing.png">'
        '<script>console.error("boom")</script>'
        "</body></html>"
    )
    page = open_page(page_path, tmp_path / "broken.png", tmp_path / "profile")
    broken = [i["alt"] for i in page["images"] if not (i["complete"] and i["width"] > 0)]
    assert broken == ["truncated", "missing"]
    assert any("boom" in e for e in page["errors"])
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in page["errors"])
