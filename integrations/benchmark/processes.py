"""Child processes of a benchmark: sandbox servers over loopback HTTP, and one-shot workers."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]


class BenchmarkError(RuntimeError):
    """A child process failed; the message carries its output."""


class Sandbox:
    """``python -m integrations.sandbox.server SYSTEM --benchmark ...`` on a free loopback port."""

    def __init__(self, system: str, *args: str, log: Path, timeout: float = 600) -> None:
        command = [sys.executable, "-m", "integrations.sandbox.server", system, "--port", "0", "--benchmark", *args]
        self.system = system
        self.log = log
        self._log_file = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(command, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=self._log_file,
                                        text=True, start_new_session=True)
        try:
            self.url = self._wait_for_url(timeout)
        except BaseException:  # it did not start, or we were stopped meanwhile: no ``with`` will stop it
            self.stop()
            raise

    def _wait_for_url(self, timeout: float) -> str:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = self.process.stdout.readline()
                if " listening on " in line:
                    return line.rsplit(" ", 1)[-1].strip()
            if self.process.poll() is not None:
                break
        raise BenchmarkError(f"the {self.system} sandbox did not start: {self.log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        """CPU time the simulator has used so far (user + system), from /proc; 0 where missing."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._log_file.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_json(module: str, config: dict[str, Any], workdir: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m module CONFIG.json`` to the end; its last output line is a JSON result."""
    path = workdir / f"{module.rsplit('.', 1)[-1]}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    completed = subprocess.run([sys.executable, "-m", module, str(path)], cwd=BASE_DIR, capture_output=True,
                               text=True, env={**os.environ, **(env or {})}, check=False)
    if completed.returncode != 0:
        raise BenchmarkError(f"{module} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise BenchmarkError(f"{module} printed no result:\n{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}")
    return json.loads(lines[-1])
