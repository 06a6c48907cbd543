"""`make demo` stopped by SIGTERM or a closed terminal (SIGHUP) stops its sandbox servers too:
they run in their own sessions, and a server left behind keeps its port, so the next demo fails."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOXES = 10  # the demo's sandbox ports, from the base port on


def _first_ephemeral_port() -> int:
    # the kernel hands these out as the local ports of outgoing connections (to PostgreSQL, Redis,
    # the sandboxes); a server asked to listen on one of them can find it taken
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_demo_leaves_no_sandbox_server_behind(tmp_path, sig):
    # ports nothing else listens on (other tests start sandbox servers at the same time), below the
    # ephemeral range so that no outgoing connection holds one of them
    top = min(_first_ephemeral_port(), 32768) - SANDBOXES
    base = next(b for b in iter(lambda: random.randrange(20000, top, 20), None)
                if not any(_listening(b + n) for n in range(SANDBOXES)))
    env = {**os.environ, "PORTAL_DEV": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
           "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--sandbox-base-port", str(base), "--no-serve"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, said = time.monotonic() + 120, []
        for line in demo.stdout:
            said.append(line)
            if line.startswith("Sandbox:") or time.monotonic() > deadline:
                break
        assert any(_listening(base + n) for n in range(SANDBOXES)), "the sandboxes were up:\n" + "".join(said)
        demo.send_signal(sig)
        assert demo.wait(timeout=60) != 0
    finally:
        if demo.poll() is None:
            demo.kill()
    time.sleep(0.5)
    still = [base + n for n in range(SANDBOXES) if _listening(base + n)]
    assert not still, f"sandbox servers still listening on {still}"
