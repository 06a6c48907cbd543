"""Serve a simulator over real HTTP on loopback, for the demo, browser tests and benchmarks.

Unlike the in-process adapter this exercises real sockets, timeouts and keep-alive. A
:class:`DropResponse` closes the socket without writing a byte, so the client sees exactly
what a lost response looks like in production (``RemoteDisconnected`` / ``ConnectionError``)
after the write was committed.

CLI::

    python -m integrations.sandbox.server servicenow --port 8125
    python -m integrations.sandbox.server sage_x3 --port 8124
    python -m integrations.sandbox.server sage_x3 --port 0 --benchmark --invoices 10000 --lines-per-invoice 5
    python -m integrations.sandbox.server sage_intacct --port 0 --benchmark --invoices 10000 --lines-per-invoice 5
    python -m integrations.sandbox.server servicetitan --port 0 --benchmark --invoices 10000 --lines-per-invoice 5
    python -m integrations.sandbox.server sage_x3 --port 0 --field-service --benchmark --invoices 10000

``--benchmark`` serves the benchmark data instead of the demo data (see :mod:`.bench`);
``--field-service`` (sage_x3) serves the ServiceTitan contractor's folder ``FIELD`` instead of
``SEED``: its demo data, or with ``--benchmark`` the bulk that matches the ServiceTitan bulk;
``--port 0`` picks a free port, printed on the first line of output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .base import DropResponse, Faults, SimRequest, Simulator

# name -> (module, class); imported lazily so a simulator module can be added independently.
SIMULATORS = {
    "servicenow": ("integrations.sandbox.servicenow", "ServiceNowSimulator"),
    "sage_x3": ("integrations.sandbox.sage_x3", "SageX3Simulator"),
    "sage_intacct": ("integrations.sandbox.intacct", "IntacctSimulator"),
    "sage_300": ("integrations.sandbox.sage300", "Sage300Simulator"),
    "syspro": ("integrations.sandbox.syspro", "SysproSimulator"),
    "servicetitan": ("integrations.sandbox.servicetitan", "ServiceTitanSimulator"),
}
DEFAULT_PORTS = {"servicenow": 8125, "sage_x3": 8124, "sage_intacct": 8126, "sage_300": 8128, "servicetitan": 8131, "syspro": 8130}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real systems
    # Headers and body go out in separate writes; without TCP_NODELAY each keep-alive response
    # waits ~40 ms on Nagle's algorithm and delayed ACKs.
    disable_nagle_algorithm = True
    server: _SimHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request access log on stderr."""

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the blank line after the last chunk
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        request = SimRequest(
            method=self.command,
            url=f"http://{host}{self.path}",
            headers={key: value for key, value in self.headers.items()},
            body=self._read_body(),
        )
        try:
            response = self.server.sim.handle(request)
        except DropResponse:
            self.close_connection = True
            with contextlib.suppress(OSError):  # the client may already be gone
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception as exc:  # a simulator bug must not hang the client
            self.send_error(500, explain=repr(exc))
            return
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        body = b"" if response.status in (204, 304) or self.command == "HEAD" else response.body
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-request are normal under fault injection: stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class SimServer:
    """A running loopback server; a context manager that stops it on exit."""

    def __init__(self, sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.httpd = _SimHTTPServer((host, port), sim)
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"sim-{sim.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> SimServer:
    """Start serving ``sim`` in a daemon thread; port 0 picks a free port (see ``.url``)."""
    return SimServer(sim, host, port)


def build_simulator(name: str, faults: Faults | None = None, field_service: bool = False) -> Simulator:
    """Instantiate a simulator by its CLI name, seeded with its demo data (for sage_x3 with
    ``field_service``, the ServiceTitan contractor's folder alone)."""
    module_name, class_name = SIMULATORS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    if field_service:
        if name != "sage_x3":
            raise ValueError(f"no field-service seed for {name!r} (sage_x3 only)")
        sim = cls(faults=faults, folders=())
        sim.seed_field_service()
        return sim
    sim = cls(faults=faults)
    sim.seed_demo()
    return sim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a sandbox simulator over HTTP until killed.")
    parser.add_argument("system", choices=sorted(SIMULATORS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: 8125 servicenow, 8124 sage_x3")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--burst-429-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--item-drop-rate", type=float, default=0.0,
                        help="servicenow: per committed Batch API item, chance the answer is lost")
    parser.add_argument("--item-drop-mode", choices=("after_batch", "mid_batch"), default="after_batch",
                        help="after_batch: the whole batch runs, then the connection drops; mid_batch: it drops "
                             "right after that item")
    parser.add_argument("--burst-429-length", type=int, default=3)
    parser.add_argument("--fault-seed", type=int, default=7, help="seed of the fault injection's random choices")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--token-lifetime", type=int, default=None)
    parser.add_argument("--benchmark", action="store_true", help="seed the benchmark data, not the demo data")
    parser.add_argument("--invoices", type=int, default=1000, help="--benchmark: sage_x3 invoices (one PO each), sage_intacct AP bills, "
                                                                     "servicetitan inventory bills (one PO each) and completed jobs")
    parser.add_argument("--lines-per-invoice", type=int, default=3, help="--benchmark: lines per invoice (or bill)")
    parser.add_argument("--suppliers", type=int, default=50, help="--benchmark: sage_x3 suppliers, sage_intacct vendors")
    parser.add_argument("--field-service", action="store_true",
                        help="sage_x3: the ServiceTitan contractor's folder FIELD (with --benchmark: its bulk, "
                             "--invoices journal entries' worth of jobs and bills) instead of SEED")
    parser.add_argument("--page-max", type=int, default=None, help="sage_x3: largest page served")
    parser.add_argument("--batch-max-items", type=int, default=None, help="servicenow: Batch API items per call")
    parser.add_argument("--writable", default="", help="sage_x3: comma list of classes that also take $create/$edit "
                                                      "over HTTP (BPSUPPLIER always does)")
    args = parser.parse_args(argv)
    faults = Faults(
        error_rate=args.error_rate,
        burst_429_rate=args.burst_429_rate,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        item_drop_rate=args.item_drop_rate,
        item_drop_mode=args.item_drop_mode,
        burst_429_length=args.burst_429_length,
        latency=args.latency,
        token_lifetime=args.token_lifetime,
        seed=args.fault_seed,
    )
    if args.field_service and args.system != "sage_x3":
        parser.error(f"--field-service applies to sage_x3, not {args.system}")
    if args.benchmark:
        from .bench import SN_BATCH_MAX, X3_PAGE_MAX, build_benchmark_simulator

        sim = build_benchmark_simulator(
            args.system, invoices=args.invoices, lines_per_invoice=args.lines_per_invoice,
            suppliers=args.suppliers, page_max=args.page_max or X3_PAGE_MAX,
            batch_max_items=args.batch_max_items or SN_BATCH_MAX, faults=faults, field_service=args.field_service,
        )
    else:
        sim = build_simulator(args.system, faults, field_service=args.field_service)
    if args.writable:
        if not hasattr(sim, "writable"):
            parser.error(f"--writable applies to sage_x3, not {args.system}")
        sim.writable = sim.writable | {name.strip() for name in args.writable.split(",") if name.strip()}
    port = DEFAULT_PORTS[args.system] if args.port is None else args.port
    server = serve(sim, args.host, port)
    print(f"{args.system} simulator listening on {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
