"""`manage.py benchmark` stopped by SIGTERM or a closed terminal (SIGHUP) stops its sandbox servers:
they run in their own sessions, so without it a stopped run leaves them behind, with their memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _sandbox_children(parent: int) -> list[int]:
    """The sandbox servers ``parent`` started (from /proc: their parent and command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"integrations.sandbox.server" in command:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_benchmark_leaves_no_sandbox_server_behind(sig):
    env = {**os.environ, "PORTAL_DEV": "true", "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen([sys.executable, "manage.py", "benchmark", "--pair", "sage300-servicenow",
                            "--records", "2000"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    servers: list[int] = []
    try:
        deadline, said = time.monotonic() + 120, []
        for line in run.stderr:  # the sandboxes are up once it says what it runs against them
            said.append(line)
            if line.startswith("Bare client") or time.monotonic() > deadline:
                break
        servers = _sandbox_children(run.pid)
        assert servers, "the sandboxes were up:\n" + "".join(said)
        run.send_signal(sig)
        assert run.wait(timeout=60) != 0
        time.sleep(0.5)
        left = [pid for pid in servers if _alive(pid)]
    finally:
        if run.poll() is None:
            run.kill()
        for pid in servers:  # none is left running after the test, whatever its outcome
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
    assert not left, f"sandbox servers {left} still running after the benchmark stopped"
