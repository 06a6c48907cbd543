"""The harness's own infrastructure: a throwaway PostgreSQL database, a private Redis, child processes.

Nothing here touches what other work on the machine uses: the database is created and dropped
by name (``ml_chaos_<pid>``), cutting connections only reaches that database, and Redis is a
``redis-server`` of our own on a free port. Every child runs in its own session, so ``kill -9``
of its process group takes its children (django-q's workers) with it; each group id is also
written to a file, so the orchestrator can end whatever a crashed driver left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

BASE_DIR = Path(__file__).resolve().parents[2]
# Every process the harness starts carries CHAOS_RUN=<run id> in its environment: cleanup only
# ever signals processes that carry it.
MARKER = "CHAOS_RUN"


class ChaosError(RuntimeError):
    """The harness itself could not do its job (a service missing, a child not starting...)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- child processes ---------------------------------------------------------------------------
class Child:
    """A child process in its own session; stdout and stderr go to ``log``.

    ``registry``: a file each started process group id is appended to (see :func:`kill_registered`).
    """

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log: Path,
                 registry: Path | None = None, cwd: Path = BASE_DIR) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.registry = registry
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Child:
        self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.monotonic()
        if self.registry is not None:
            with self.registry.open("a", encoding="ascii") as handle:
                handle.write(f"{self.process.pid}\n")
        return self

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, sig: int) -> None:
        """Signal our process group; once the leader is reaped, only members carrying our marker."""
        assert self.process is not None
        if self.process.poll() is None:  # the leader (alive or a zombie) keeps the group id ours
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)
            return
        for pid in (entry for entry in os.listdir("/proc") if entry.isdigit()):
            if _pgrp(pid) == self.process.pid and self.marker and _has_marker(pid, self.marker):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), sig)

    @property
    def marker(self) -> str:
        return next((f"{k}={v}" for k, v in self.env.items() if k == MARKER), "")

    def kill9(self) -> None:
        """``kill -9`` of the whole process group (django-q's workers included), then reap the leader."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._signal_group(signal.SIGKILL)  # members that outlived a leader which had already exited
        self._close_log()

    def stop_gracefully(self, timeout: float) -> bool:
        """SIGTERM to the leader only (django-q's sentinel lets its workers finish their task),
        then ``kill -9`` whatever is left; True when it ended within ``timeout``."""
        if self.process is None:
            return True
        ended = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                ended = False
        self.kill9()
        return ended

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the group, SIGKILL if it lingers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self.kill9()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _pgrp(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _has_marker(pid: str, marker: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker.encode() in handle.read().split(b"\0")
    except OSError:
        return False


def kill_registered(registry: Path, marker: str) -> int:  # marker: "CHAOS_RUN=<run id>"
    """SIGKILL what is left of the process groups listed in ``registry``; returns how many processes.

    Only processes that are in one of those groups *and* carry ``marker`` (``NAME=value``) in
    their environment are touched, so a recycled process id can never hit someone else's process.
    """
    if not registry.exists():
        return 0
    groups = {int(line) for line in registry.read_text(encoding="ascii").split() if line.isdigit()}
    killed = 0
    for pid in (entry for entry in os.listdir("/proc") if entry.isdigit()):
        if _pgrp(pid) in groups and _has_marker(pid, marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
    return killed


# --- PostgreSQL --------------------------------------------------------------------------------
class Postgres:
    """A throwaway database on the local server (trust authentication, user ``postgres``)."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres") -> None:
        if not name.replace("_", "").isalnum():
            raise ChaosError(f"unsafe database name {name!r}")
        self.name, self.host, self.port, self.user = name, host, port, user

    @property
    def url(self) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.name}"

    @staticmethod
    def binaries_present() -> bool:
        return bool(shutil.which("pg_ctlcluster") or shutil.which("pg_ctl")) and bool(shutil.which("pg_isready"))

    def ready(self) -> bool:
        if not shutil.which("pg_isready"):
            return port_open(self.port, self.host)
        return subprocess.run(["pg_isready", "-q", "-h", self.host, "-p", str(self.port)], check=False).returncode == 0

    def ensure_running(self, timeout: float = 30) -> None:
        """Start the Debian cluster if it is down (as ``make services`` does)."""
        if self.ready():
            return
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if versions and shutil.which("pg_ctlcluster"):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                           check=False, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.5)
        raise ChaosError(f"PostgreSQL is not accepting connections on {self.host}:{self.port}")

    def _admin(self):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True,
                               connect_timeout=10)

    def create(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def terminate_connections(self) -> int:
        """Cut every connection to this database (only this one); returns how many were cut."""
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,)).fetchall()
        return sum(1 for (done,) in rows if done)


# --- Redis -------------------------------------------------------------------------------------
class RedisServer:
    """Our own ``redis-server`` on a free loopback port, no persistence; restartable."""

    def __init__(self, workdir: Path, port: int | None = None, registry: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.registry = registry
        self.env = env if env is not None else dict(os.environ)
        self.child: Child | None = None

    @staticmethod
    def binary_present() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--daemonize", "no"]
        self.child = Child("redis", argv, env=self.env, log=self.workdir / "redis.log",
                           registry=self.registry).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            if not self.child.alive():
                break
            time.sleep(0.1)
        raise ChaosError(f"redis-server did not start on port {self.port}: "
                         f"{(self.workdir / 'redis.log').read_text(errors='replace')[-1000:]}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def crash(self) -> None:
        """``kill -9``: every queued task is gone (no persistence)."""
        if self.child is not None:
            self.child.kill9()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=3)
