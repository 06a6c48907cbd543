"""A SYSPRO e.net Solutions simulator (WCF REST), per API_FACTS sections 5 and 9.

What it plays, under ``/SYSPROWCFService/Rest``:

- Every call is a GET with a query string and is answered HTTP 200 ``application/octet-stream``,
  failures included: a failure is a body starting with ``ERROR`` [C]. Only transport faults
  (the service down: HTTP 503 page) and unknown endpoints (404) differ.
- ``Logon?Operator=&OperatorPassword=&CompanyId=&CompanyPassword=`` answers the UserId as plain
  text, 34 hex characters and two trailing spaces [C]. ``ERROR: Invalid operator password`` [C];
  the texts for an unknown operator or company and a wrong company password are [U].
- ``Logoff?UserId=`` answers ``0`` [C]. Any call with an unknown or ended session answers
  ``ERROR: The supplied UserID is invalid.`` [C]. The UserId must come back verbatim, trailing
  spaces included (``userid_match="exact"``; ``"trimmed"`` also takes it without them) [U].
- Sessions end after ``session_timeout`` seconds without a call [D: they time out; the length
  is U]. ``seats`` licence seats (1 by default): a Logon while every seat is held answers a
  licence error (``on_full="error"``, the text is [U]) or bumps the session idle longest if it
  has been idle ``bump_after`` seconds (``on_full="bump"``) [D: "an inactive member can be
  bumped when the licence is full"].
- ``Query/Query?UserId=&BusinessObject=COMFND&XmlIn=…`` over the tables of
  :mod:`.syspro_seed` (see :mod:`.syspro_query`). Switches for what installs may do
  differently ([U] or [3P]): ``element_case`` ``"as_sent"`` or ``"lower"`` (answers with
  element names in lower case [3P]); ``conditions`` ``"all"`` or ``"eq_only"`` (anything but EQ
  refused with an ERROR); ``honour_return_rows`` (False: every matching row comes back);
  ``encoding`` ``"cp1252"`` (declared Windows-1252, the recorded answer) or ``"utf-8"``.
- ``Transaction/…`` and ``Setup/…`` (the write classes) and any method but GET are refused and
  kept in ``writes``: the portal must never write to SYSPRO, and tests assert it never tried.
- The OData feed of the same tables under ``/odata/<company>/<EntitySet>`` (see
  :mod:`.syspro_odata`), Basic auth with an operator's credentials, no session and no seat.
  Switches: ``odata_page_cap`` (5000: rows per answer whatever ``$top`` asks), ``odata_next_link``
  (True: ``@odata.nextLink`` when more rows follow), ``odata_count`` (True: ``$count=true`` is
  answered), ``odata_dates`` (``"date"`` or ``"datetime"``). Any method but GET is refused (405)
  and kept in ``writes`` too.

State for assertions: ``logons``, ``logoffs``, ``failed_logons``, ``expired`` (sessions ended by
the timeout), ``bumped``, ``open_sessions``, ``queries``, ``odata_requests``, ``writes``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from . import syspro_odata
from .base import Faults, SimRequest, SimResponse, Simulator
from .syspro_query import ALL_CONDITIONS, EQ_ONLY, ComfndError, Table, parse_xmlin, render, run
from .syspro_seed import COMPANY, OPERATOR, bulk_tables, demo_tables, empty_tables

REST_ROOT = "/sysprowcfservice/rest"
OCTET = {"Content-Type": "application/octet-stream"}
INVALID_SESSION = "ERROR: The supplied UserID is invalid."
# [U] SYSPRO's wording for a full licence is not in any public source we have.
LICENCE_FULL = "ERROR: The maximum number of e.net licences for this licence type has been reached"
SERVICE_UNAVAILABLE = ("<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>"
                       "<hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>")


@dataclass
class Session:
    operator: str
    company: str
    started: float
    last_call: float


class SysproSimulator(Simulator):
    """One SYSPRO e.net server with its companies' tables, operators and licence seats."""

    name = "syspro"

    def __init__(self, faults: Faults | None = None, *, seats: int = 1, on_full: str = "error",
                 bump_after: float = 0.0, session_timeout: float = 30 * 60, userid_match: str = "exact",
                 element_case: str = "as_sent", conditions: str = "all", honour_return_rows: bool = True,
                 encoding: str = "cp1252", clock: Callable[[], float] | None = None, odata_page_cap: int = 5000,
                 odata_next_link: bool = True, odata_count: bool = True, odata_dates: str = "date") -> None:
        super().__init__(faults)
        if on_full not in ("error", "bump") or element_case not in ("as_sent", "lower") or \
                conditions not in ("all", "eq_only") or encoding not in ("cp1252", "utf-8") or \
                userid_match not in ("exact", "trimmed") or odata_dates not in ("date", "datetime") or \
                odata_page_cap < 1:
            raise ValueError("unknown SysproSimulator switch value")
        self.seats = seats
        self.on_full = on_full
        self.bump_after = bump_after
        self.session_timeout = session_timeout
        self.userid_match = userid_match
        self.element_case = element_case
        self.conditions = conditions
        self.honour_return_rows = honour_return_rows
        self.encoding = encoding
        self.clock = clock or time.monotonic
        self.odata_page_cap = odata_page_cap
        self.odata_next_link = odata_next_link
        self.odata_count = odata_count
        self.odata_dates = odata_dates
        self.operators: dict[str, str] = {}
        self.companies: dict[str, tuple[str, dict[str, Table]]] = {}
        self.sessions: dict[str, Session] = {}
        self.writes: list[SimRequest] = []
        self.logons = self.logoffs = self.failed_logons = self.expired = self.bumped = self.queries = 0
        self.odata_requests = 0

    # --- set-up -------------------------------------------------------------------------------------
    def add_operator(self, operator: str, password: str) -> None:
        with self.lock:
            self.operators[operator.upper()] = password

    def add_company(self, company: str, password: str = "", tables: dict[str, Table] | None = None) -> None:
        with self.lock:
            self.companies[company.upper()] = (password, tables if tables is not None else empty_tables())

    def seed_demo(self) -> SysproSimulator:
        self.add_operator(*OPERATOR)
        self.add_company(COMPANY[0], COMPANY[1], demo_tables())
        return self

    def seed_bulk(self, invoices: int, lines_per_invoice: int, suppliers: int = 50, **options: Any) -> SysproSimulator:
        self.add_operator(*OPERATOR)
        self.add_company(COMPANY[0], COMPANY[1], bulk_tables(invoices, lines_per_invoice, suppliers, **options))
        return self

    def table(self, name: str, company: str = COMPANY[0]) -> Table:
        """A live table (tests edit it as a SYSPRO user would: ``insert``, ``update``)."""
        return self.companies[company.upper()][1][name]

    @property
    def open_sessions(self) -> int:
        with self.lock:
            self._expire(self.clock())
            return len(self.sessions)

    def expire_sessions(self) -> None:
        """End every session now, as the inactivity timeout would."""
        with self.lock:
            self.expired += len(self.sessions)
            self.sessions.clear()

    # --- faults in SYSPRO's shapes ------------------------------------------------------------------
    def transient_response(self, request: SimRequest) -> SimResponse:
        return SimResponse.text(503, SERVICE_UNAVAILABLE, content_type="text/html")

    # --- requests -------------------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        path = unquote(request.path)
        if path.lower().startswith(syspro_odata.ODATA_ROOT):
            return syspro_odata.handle(self, request)
        if not path.lower().startswith(REST_ROOT):
            return SimResponse.text(404, "Endpoint not found.", content_type="text/html")
        operation = path[len(REST_ROOT):].strip("/").lower()
        if operation.split("/")[0] in ("transaction", "setup") or request.method != "GET":
            self.writes.append(request)
            if request.method != "GET":
                return SimResponse.text(405, "Method not allowed.", content_type="text/html")
            return self._answer(f"ERROR: {path[len(REST_ROOT):].strip('/')} is refused: this simulated SYSPRO "
                                "is read only")
        now = self.clock()
        self._expire(now)
        if operation == "logon":
            return self._logon(request, now)
        if operation == "getversion":
            return self._answer("7.0.053")
        session_id = self._session_id(request.param("UserId") or "")
        if session_id is None:
            return self._answer(INVALID_SESSION)
        if operation == "logoff":
            del self.sessions[session_id]
            self.logoffs += 1
            return self._answer("0")
        self.sessions[session_id].last_call = now
        if operation == "query/query":
            return self._query(request, self.sessions[session_id])
        if operation in ("query/browse", "query/fetch", "getlogonprofile"):
            return self._answer(f"ERROR: {operation} is not played by this simulator")
        return SimResponse.text(404, "Endpoint not found.", content_type="text/html")

    def _answer(self, text: str) -> SimResponse:
        return SimResponse(200, text.encode(self.encoding, errors="replace"), dict(OCTET))

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self.sessions.items() if now - s.last_call > self.session_timeout]:
            del self.sessions[key]
            self.expired += 1

    def _session_id(self, sent: str) -> str | None:
        if sent in self.sessions:
            return sent
        if self.userid_match == "trimmed":
            for key in self.sessions:
                if key.strip() == sent.strip():
                    return key
        return None

    def _logon(self, request: SimRequest, now: float) -> SimResponse:
        operator = (request.param("Operator") or "").strip().upper()
        company = (request.param("CompanyId") or "").strip().upper()
        refused = None
        if operator not in self.operators:
            refused = f"ERROR: Operator '{operator}' not found"  # [U] text
        elif self.operators[operator] != (request.param("OperatorPassword") or ""):
            refused = "ERROR: Invalid operator password"  # [C]
        elif company not in self.companies:
            refused = f"ERROR: Company '{company}' not found"  # [U] text
        elif self.companies[company][0] != (request.param("CompanyPassword") or ""):
            refused = "ERROR: Invalid company password"  # [U] text
        elif len(self.sessions) >= self.seats:
            idle = min(self.sessions, key=lambda k: self.sessions[k].last_call)
            if self.on_full == "bump" and now - self.sessions[idle].last_call >= self.bump_after:
                del self.sessions[idle]
                self.bumped += 1
            else:
                refused = LICENCE_FULL
        if refused:
            self.failed_logons += 1
            return self._answer(refused)
        session_id = secrets.token_hex(17).upper() + "  "  # 34 hex characters and two spaces [C]
        self.sessions[session_id] = Session(operator, company, now, now)
        self.logons += 1
        return self._answer(session_id)

    def _query(self, request: SimRequest, session: Session) -> SimResponse:
        self.queries += 1
        business_object = (request.param("BusinessObject") or "").upper()
        if business_object != "COMFND":
            return self._answer(f"ERROR: Business object '{business_object}' is not played by this simulator")
        tables = self.companies[session.company][1]
        try:
            query = parse_xmlin(request.param("XmlIn") or "")
            table = next((t for name, t in tables.items() if name.lower() == query.table.lower()), None)
            if table is None:
                raise ComfndError(f"Invalid object name '{query.table}'")  # SQL Server's wording [U]
            conditions = ALL_CONDITIONS if self.conditions == "all" else EQ_ONLY
            names, rows = run(table, query, conditions, self.honour_return_rows)
        except ComfndError as exc:
            return self._answer(f"ERROR: {exc}")
        body = render(query, names, rows, lower=self.element_case == "lower", encoding=self.encoding)
        return SimResponse(200, body, dict(OCTET))
