"""A Sage Intacct XML gateway simulator, faithful to API_FACTS section 4.

- ``POST /ia/xml/xmlgw.phtml`` takes ``<request><control/><operation/></request>``; the
  control block's sender id and password are checked first (control-level failure
  ``XL03000006`` "Incorrect Intacct XML Partner ID or password."), then the operation's
  authentication (``<login>`` or ``<sessionid>``), then each ``<function>``.
- Errors come back **HTTP 200** with ``<errormessage>`` at the level that failed: control (no
  operation ran), authentication (no function ran) or function (only that one failed).
- ``getAPISession`` returns a session id and the endpoint to use; every response's
  ``<authentication>`` carries ``sessiontimestamp``/``sessiontimeout``; the timeout slides on
  each call. The default duration is [U] (one hour here; ``Faults.token_lifetime`` shortens it).
  An expired or unknown session is an authentication-level failure (text [U]).
- ``readByQuery`` (``pagesize`` 1-1000, default 100) answers ``<data listtype count totalcount
  numremaining resultId>`` in RECORDNO order (readByQuery cannot sort); ``readMore`` by
  ``resultId`` continues the same result set. ``read`` returns whole records with lines.
- ``create``/``update`` of APBILL and VENDOR; ``create`` of APPYMT, which settles the bills it
  pays (TOTALDUE down, STATE Paid when nothing is due) and refuses an overpayment, an unknown
  bill, another vendor's bill and a bill already paid (each with a ``correction``). With ``<uniqueid>true</uniqueid>`` a function
  whose ``controlid`` already completed is refused with "A successful transaction has already
  been recorded with the control id <controlid>" (error number [U]).
- ``<operation transaction="true">``: one failure rolls the whole operation back; the other
  functions come back ``aborted`` with ``XL03000009``.
- Faults: 503 without XML for transient errors, HTTP 429 with a control-level ``GW-0010`` for
  rate limits, "commit then drop" after a request that wrote something; plus
  :meth:`IntacctSimulator.inject_error` for an error at any level in an HTTP 200.

Pieces: the function handlers in :mod:`.intacct_functions`, the business rules of writes in
:mod:`.intacct_store`, the query language in :mod:`.intacct_query`, the demo company in
:mod:`.intacct_seed`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from .base import Faults, SimRequest, SimResponse, Simulator
from .clock import ClockFn
from .intacct_functions import Failure, GatewayFunctions, ResultSet, Session, error_xml
from .intacct_store import BusinessError, Company, Ledger

GATEWAY_PATH = "/ia/xml/xmlgw.phtml"
SESSION_LIFETIME = 3600  # [U] the documented default duration is not stated
DUPLICATE = "A successful transaction has already been recorded with the control id {controlid}"
DUPLICATE_ERRORNO = "XL03000001"  # [U] only the text is known (API_FACTS 8)


@dataclass
class Injected:
    level: str  # control | authentication | function
    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""
    function: str | None = None
    times: int = 1


def _xml_response(inner: str, status: int = 200) -> SimResponse:
    return SimResponse(status, f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{inner}</response>'.encode(),
                       {"Content-Type": "text/xml; charset=UTF-8"})


class IntacctSimulator(GatewayFunctions, Simulator):
    """An Intacct gateway with companies, senders, users, sessions and fault injection."""

    name = "sage_intacct"

    def __init__(self, faults: Faults | None = None, clock: ClockFn | None = None,
                 timer: Callable[[], float] = time.time, session_lifetime: int = SESSION_LIFETIME,
                 session_endpoint_path: str = GATEWAY_PATH, session_endpoint: str | None = None) -> None:
        super().__init__(faults)
        self.ledger = Ledger(clock)
        self.timer = timer
        self.session_lifetime = session_lifetime
        self.session_endpoint_path = session_endpoint_path
        self.session_endpoint = session_endpoint  # an absolute endpoint to hand out instead (another pod)
        self.senders: dict[str, str] = {}
        self.companies: dict[str, Company] = {}
        self.sessions: dict[str, Session] = {}
        self.result_sets: dict[str, ResultSet] = {}
        self.injected: list[Injected] = []
        self.function_log: list[tuple[str, str, str]] = []  # (function, controlid, status)

    # === set-up and inspection ==================================================================
    def add_sender(self, sender_id: str, password: str) -> None:
        with self.lock:
            self.senders[sender_id] = password

    def add_company(self, company_id: str, senders: tuple[str, ...] = (), entities: tuple[str, ...] = ()) -> Company:
        with self.lock:
            company = self.companies.setdefault(company_id, Company(company_id))
            company.senders.update(senders)
            company.entities.update(entities)
            return company

    def add_user(self, company_id: str, user_id: str, password: str) -> None:
        with self.lock:
            self.companies[company_id].users[user_id] = password

    def company(self, company_id: str) -> Company:
        return self.companies[company_id]

    def insert(self, company_id: str, obj: str, record: dict[str, Any], when: str | None = None) -> dict[str, Any]:
        """Seed a record directly (no HTTP, no faults); returns a copy."""
        with self.lock:
            return dict(self.ledger.insert(self.companies[company_id], obj, record, when=when))

    def touch(self, company_id: str, obj: str, record_no: str, values: dict[str, Any]) -> dict[str, Any]:
        """A person edits a record in the Intacct UI (WHENMODIFIED moves)."""
        with self.lock:
            return dict(self.ledger.touch(self.companies[company_id], obj, record_no, values))

    def records(self, company_id: str, obj: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.companies[company_id].ordered(obj)]

    def expire_sessions(self) -> None:
        """Every open session times out now (the next call with one fails authentication)."""
        with self.lock:
            for session in self.sessions.values():
                session.expires = 0

    def rate_limit_next(self, requests: int) -> None:
        """The next ``requests`` requests get HTTP 429 with a control-level GW-0010."""
        with self.lock:
            self._burst_left = requests

    def inject_error(self, level: str, errorno: str, description2: str = "", description: str = "",
                     correction: str = "", function: str | None = None, times: int = 1) -> None:
        """The next ``times`` requests (or functions named ``function``) fail at ``level``, HTTP 200."""
        with self.lock:
            self.injected.append(Injected(level, errorno, description, description2, correction, function, times))

    def _take_injected(self, level: str, function: str | None = None) -> Injected | None:
        for item in self.injected:
            if item.level == level and item.times > 0 and (item.function in (None, function)):
                item.times -= 1
                if item.times == 0:
                    self.injected.remove(item)
                return item
        return None

    # === HTTP =================================================================================
    def dispatch(self, request: SimRequest) -> SimResponse:
        if request.path.rstrip("/") not in (GATEWAY_PATH, self.session_endpoint_path.rstrip("/")):
            return SimResponse.text(404, "Not Found", "text/html")
        if request.method != "POST":
            return SimResponse.text(405, "Method Not Allowed", "text/html")
        try:
            root = etree.fromstring(request.body, etree.XMLParser(resolve_entities=False, no_network=True,
                                                                   load_dtd=False))
            if root.getroottree().docinfo.doctype:
                raise ValueError("DOCTYPE is not allowed")
        except (etree.XMLSyntaxError, ValueError) as exc:
            return self._control_failure("", "", "XL03000003", "", f"XML Parse schema error: {exc} [Support ID: sim]")
        control = root.find("control")
        sender_id = control.findtext("senderid", "") if control is not None else ""
        controlid = control.findtext("controlid", "") if control is not None else ""
        if root.tag != "request" or control is None or control.findtext("dtdversion") != "3.0":
            return self._control_failure(sender_id, controlid, "XL03000003", "",
                                         "XML Parse schema error: a <request> with <control> and dtdversion 3.0 "
                                         "is required [Support ID: sim]")
        if not secrets.compare_digest(self.senders.get(sender_id, "\x00").encode(),
                                      control.findtext("password", "").encode()):
            return self._control_failure(sender_id, controlid, "XL03000006", "",
                                         "Incorrect Intacct XML Partner ID or password.")
        injected = self._take_injected("control")
        if injected:
            return self._control_failure(sender_id, controlid, injected.errorno, injected.description,
                                         injected.description2, injected.correction)
        unique = (control.findtext("uniqueid") or "false").strip().lower() == "true"
        head = (f"<control><status>success</status><senderid>{escape(sender_id)}</senderid>"
                f"<controlid>{escape(controlid)}</controlid><uniqueid>{str(unique).lower()}</uniqueid>"
                "<dtdversion>3.0</dtdversion></control>")
        operation = root.find("operation")
        if operation is None:
            return _xml_response(head)
        session, auth_xml = self._authenticate(request, sender_id, operation.find("authentication"))
        if session is None:
            return _xml_response(f"{head}<operation>{auth_xml}</operation>")
        transaction = (operation.get("transaction") or "false").lower() == "true"
        results, wrote = self._run_functions(request, session, operation, unique, transaction)
        response = _xml_response(f"{head}<operation>{auth_xml}{''.join(results)}</operation>")
        if wrote:
            self.maybe_drop()
        return response

    def _control_failure(self, sender_id: str, controlid: str, errorno: str, description: str,
                         description2: str, correction: str = "") -> SimResponse:
        return _xml_response(
            f"<control><status>failure</status><senderid>{escape(sender_id)}</senderid>"
            f"<controlid>{escape(controlid)}</controlid><uniqueid>false</uniqueid><dtdversion>3.0</dtdversion>"
            f"</control>{error_xml(errorno, description, description2, correction)}")

    # --- authentication -------------------------------------------------------------------------
    def _authenticate(self, request: SimRequest, sender_id: str,
                      auth: etree._Element | None) -> tuple[Session | None, str]:
        now = self.timer()
        lifetime = self.token_lifetime(self.session_lifetime)
        injected = self._take_injected("authentication")
        if injected:
            return None, self._auth_failure("", "", injected.errorno, injected.description2, injected.description,
                                            injected.correction)
        session_id = auth.findtext("sessionid") if auth is not None else None
        if session_id is not None:
            session = self.sessions.get(session_id.strip())
            if session is None or session.expires <= now or session.sender_id != sender_id:
                # [U] the text for an expired session is not documented
                return None, self._auth_failure("", "", "XL03000006", "Invalid session",
                                                correction="Start a new session with getAPISession.")
            session.expires = now + lifetime  # the timeout slides on each call
            return session, self._auth_success(session)
        login = auth.find("login") if auth is not None else None
        if login is None:
            return None, self._auth_failure("", "", "XL03000006", "Sign-in information is incorrect")
        user_id, company_id = login.findtext("userid", ""), login.findtext("companyid", "")
        location_id = (login.findtext("locationid") or "").strip()
        company = self.companies.get(company_id)
        password = login.findtext("password", "")
        if company is None or not secrets.compare_digest(company.users.get(user_id, "\x00").encode(),
                                                         password.encode()):
            return None, self._auth_failure(user_id, company_id, "XL03000006", "Sign-in information is incorrect")
        if sender_id not in company.senders:
            return None, self._auth_failure(
                user_id, company_id, "XL03000006",
                f"The sender ID '{sender_id}' is not authorized to make Web Services requests to company ID "
                f"'{company_id}'.", "Invalid Web Services Authorization",
                "Contact the company administrator to grant Web Services authorization to this sender ID.")
        if location_id and location_id not in company.entities:
            return None, self._auth_failure(user_id, company_id, "XL03000006",
                                            f"Invalid location ID '{location_id}'.")  # [U]
        session = Session(secrets.token_urlsafe(24), sender_id, company_id, user_id, location_id, now, now + lifetime)
        self.sessions[session.session_id] = session
        return session, self._auth_success(session)

    def _stamp(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

    def _auth_success(self, session: Session) -> str:
        return ("<authentication><status>success</status>"
                f"<userid>{escape(session.user_id)}</userid><companyid>{escape(session.company_id)}</companyid>"
                f"<locationid>{escape(session.location_id)}</locationid>"
                f"<sessiontimestamp>{self._stamp(self.timer())}</sessiontimestamp>"
                f"<sessiontimeout>{self._stamp(session.expires)}</sessiontimeout></authentication>")

    def _auth_failure(self, user_id: str, company_id: str, errorno: str, description2: str,
                      description: str = "", correction: str = "") -> str:
        return (f"<authentication><status>failure</status><userid>{escape(user_id)}</userid>"
                f"<companyid>{escape(company_id)}</companyid></authentication>"
                + error_xml(errorno, description, description2, correction))

    # --- functions ------------------------------------------------------------------------------
    def _run_functions(self, request: SimRequest, session: Session, operation: etree._Element, unique: bool,
                       transaction: bool) -> tuple[list[str], bool]:
        company = self.companies[session.company_id]
        snapshot = company.snapshot() if transaction else None
        outcomes: list[tuple[str, str, str | None, Failure | None]] = []  # name, controlid, data xml, failure
        content = operation.find("content")
        for function in (content.findall("function") if content is not None else []):
            controlid = function.get("controlid", "")
            body = next((c for c in function if isinstance(c.tag, str)), None)
            name = body.tag if body is not None else ""
            try:
                if unique and controlid in company.completed_controlids:
                    raise Failure(DUPLICATE_ERRORNO, "", DUPLICATE.format(controlid=controlid))
                injected = self._take_injected("function", name)
                if injected:
                    raise Failure(injected.errorno, injected.description, injected.description2, injected.correction)
                data = self._function(request, session, company, body)
                outcomes.append((name, controlid, data, None))
            except Failure as failure:
                outcomes.append((name, controlid, None, failure))
            except BusinessError as exc:
                outcomes.append((name, controlid, None,
                                 Failure(exc.errorno, exc.description, exc.description2, exc.correction)))
        failed = any(f is not None for *_, f in outcomes)
        if transaction and failed and snapshot is not None:
            company.restore(snapshot)
            rolled = Failure("XL03000009", "", "The entire transaction in this operation has been rolled back "
                                               "due to an error.", status="aborted")
            outcomes = [(n, c, None, f or rolled) for n, c, _, f in outcomes]
        results = []
        wrote = False
        for name, controlid, data, failure in outcomes:
            self.function_log.append((name, controlid, failure.status if failure else "success"))
            if failure is None:
                if unique and controlid:
                    company.completed_controlids.add(controlid)
                wrote = wrote or name in ("create", "update", "delete")
                results.append(f"<result><status>success</status><function>{escape(name)}</function>"
                               f"<controlid>{escape(controlid)}</controlid>{data or ''}</result>")
            else:
                results.append(f"<result><status>{failure.status}</status><function>{escape(name)}</function>"
                               f"<controlid>{escape(controlid)}</controlid>"
                               + error_xml(failure.errorno, failure.description, failure.description2,
                                           failure.correction) + "</result>")
        return results, wrote

    # === the system's own fault shapes ==========================================================
    def transient_response(self, request: SimRequest) -> SimResponse:
        return SimResponse.text(503, "Service Temporarily Unavailable", "text/html")  # 5xx, no XML

    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        body = _xml_response("<control><status>failure</status></control>"
                             + error_xml("GW-0010", "Rate limit exceeded. Please try again later.", "", ""), 429)
        return body  # [U] no Retry-After: Intacct does not document one

    # === demo ================================================================================
    def seed_demo(self) -> IntacctSimulator:
        from .intacct_seed import seed_demo

        with self.lock:
            seed_demo(self)
        return self

