"""A headless Chromium kept open to print page after page, driven by the DevTools protocol
over a pipe (--remote-debugging-pipe: no port is opened). Printing a handout this way takes
a third of the time of starting Chromium for each PDF, and prints the same pages.

    browser = Browser(argv_prefix, executable, flags)
    browser.print(html_path, pdf_path)   A4 as the page's stylesheet says; backgrounds kept
    browser.close()                      Chromium and its profile gone

One Browser serves one thread at a time (labkit.teach.printed.printer keeps one per printing thread).
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from ...errors import LabkitError

TIMEOUT = 180.0


class Browser:
    """A running headless Chromium, its profile in a temporary directory."""

    def __init__(self, prefix: list[str], executable: str, flags: tuple[str, ...]):
        self.profile = tempfile.mkdtemp(prefix="labkit-chromium-")
        self.log = open(os.path.join(self.profile, "stderr.log"), "w+")
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def as_fds_3_and_4():                      # where --remote-debugging-pipe looks
            os.dup2(commands_r, 3)
            os.dup2(replies_w, 4)

        argv = [*prefix, executable, *flags, "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", f"--crash-dumps-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(argv, preexec_fn=as_fds_3_and_4, pass_fds=(3, 4),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self.log, env={**os.environ, "HOME": self.profile})
        os.close(commands_r)
        os.close(replies_w)
        self._buffer, self._next = b"", 0

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._commands, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise self._failed("stopped") from None
        return self._next

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise LabkitError(f"Chromium did not answer within {TIMEOUT:.0f} s while printing")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise self._failed("stopped")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _call(self, method: str, params: dict | None = None, session: str | None = None,
              until: str | None = None, deadline: float = 0.0) -> dict:
        """Send a command; return its result (or, with `until`, the event of that name)."""
        sent = self._send(method, params, session)
        result, event = None, None
        while result is None or (until is not None and event is None):
            message = self._read(deadline)
            if message.get("id") == sent:
                if "error" in message:
                    raise LabkitError(f"Chromium refused {method}: {message['error'].get('message')}")
                result = message.get("result", {})
            elif until and message.get("method") == until and message.get("sessionId") == session:
                event = message
        return result if until is None else event

    def _failed(self, what: str) -> LabkitError:
        self.log.seek(0)
        return LabkitError(f"Chromium {what} while printing: {self.log.read().strip()[-500:]}")

    def print(self, html_path: str, pdf_path: str) -> None:
        """Print `html_path` to `pdf_path`."""
        deadline = time.monotonic() + TIMEOUT
        target = self._call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
        try:
            session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 deadline=deadline)["sessionId"]
            self._call("Page.enable", session=session, deadline=deadline)
            self._call("Page.navigate", {"url": "file://" + os.path.abspath(html_path)}, session,
                       until="Page.loadEventFired", deadline=deadline)
            pdf = self._call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True},
                             session, deadline=deadline)["data"]
        finally:
            if self.process.poll() is None:
                self._call("Target.closeTarget", {"targetId": target}, deadline=deadline)
        with open(pdf_path, "wb") as f:
            f.write(base64.b64decode(pdf))

    def close(self) -> None:
        """Stop Chromium (the process this Browser started) and remove its profile."""
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
