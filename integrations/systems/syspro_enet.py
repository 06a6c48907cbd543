"""SYSPRO e.net Solutions over WCF REST: the session (Logon, UserId, Logoff) and COMFND's XML.

Split from :mod:`integrations.systems.syspro` (which re-exports these names); the facts followed
are in that module's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from integrations.systems.auth import Token, TokenStore
from integrations.systems.errors import AuthError, DataError, SessionExpired, SyncError, SystemicError, TransientError
from integrations.systems.http import HttpClient, unexpected_answer
from integrations.systems.intacct_xml import UnsafeXml, escape, parse
from integrations.systems.redaction import redact_text
from integrations.systems.spec import EventSink, ignore_event

SYSTEM = "SYSPRO"
REST_PATH = "/SYSPROWCFService/Rest"
Condition = tuple[str, str, str]  # (column, EQ|NE|GT|GE|LT|LE, value)


def rest_base(url: str) -> str:
    """``…/SYSPROWCFService/Rest`` from the server root or either form of the REST root."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    lowered = path.lower()
    if lowered.endswith("/sysprowcfservice/rest"):
        pass
    elif lowered.endswith("/sysprowcfservice"):
        path += "/Rest"
    else:
        path += REST_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def encode(params: dict[str, str]) -> str:
    """A query string with every reserved character escaped: a space is %20, never '+'."""
    return "&".join(f"{name}={quote(str(value), safe='')}" for name, value in params.items())


# --- COMFND XmlIn out, XML answers in ---------------------------------------------------------------
def comfnd_xml(table: str, columns: Sequence[str], groups: Sequence[Sequence[Condition]] = (),
               order_by: Sequence[str] = (), rows: int | None = None) -> str:
    """XmlIn for COMFND; ``groups`` are ANDed conditions, the groups ORed (each in brackets)."""
    parts = [f"<Query><TableName>{escape(table)}</TableName>"]
    if rows:
        parts.append(f"<ReturnRows>{int(rows)}</ReturnRows>")
    parts.append("<Columns>" + "".join(f"<Column>{escape(c)}</Column>" for c in columns) + "</Columns>")
    groups = [g for g in groups if g]
    if groups:
        parts.append("<Where>")
        bracket = len(groups) > 1
        for g, group in enumerate(groups):
            for n, (column, condition, value) in enumerate(group):
                opening = "(" if bracket and n == 0 else ""
                closing = ")" if bracket and n == len(group) - 1 else ""
                joiner = "Or" if g and n == 0 else "And"
                parts.append(f"<Expression><OpenBracket>{opening}</OpenBracket><AndOr>{joiner}</AndOr>"
                             f"<Column>{escape(column)}</Column><Condition>{condition}</Condition>"
                             f"<Value>{escape(value)}</Value><CloseBracket>{closing}</CloseBracket></Expression>")
        parts.append("</Where>")
    if order_by:
        parts.append("<OrderBy>" + "".join(f"<Column>{escape(c)}</Column>" for c in order_by) + "</OrderBy>")
    parts.append("</Query>")
    return "".join(parts)


_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:\-]+)[\"']")
_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>")


def decode_xml(content: bytes) -> str:
    """The text of an XML answer, decoded by its declared encoding (XML's default: UTF-8).

    A body the declared code page cannot decode is tried as Windows-1252 (what SYSPRO writes)
    before undecodable bytes are replaced: a name is never turned into an exception.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", errors="replace")
    found = _DECLARATION.match(content)
    codec = found.group(1).decode("ascii") if found else "utf-8"
    for attempt in (codec, "cp1252"):
        try:
            return content.decode(attempt)
        except (LookupError, UnicodeDecodeError):
            continue
    return content.decode("cp1252", errors="replace")


def parse_rows(response: requests.Response, columns: Sequence[str]) -> tuple[list[dict[str, str]], set[str]]:
    """The rows of a COMFND answer keyed by ``columns`` as asked, and the columns no row carried.

    Element names are matched case-insensitively; values stay text (trailing spaces too).
    """
    try:
        root = parse(_PROLOG.sub("", decode_xml(response.content), count=1))
    except UnsafeXml:
        raise unexpected_answer(response, SYSTEM, "a page that is not XML; the e.net service may be down or "
                                "behind a proxy that answered for it") from None
    children = {child.tag.lower() if isinstance(child.tag, str) else "" for child in root}
    if "rowsreturned" not in children and "headerdetails" not in children:
        raise unexpected_answer(response, SYSTEM, f"XML that is not a COMFND answer (<{root.tag}>)")
    wanted = [(name, name.lower()) for name in columns]
    rows, seen, counted = [], set(), None
    for child in root:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag.lower()
        if tag == "row":
            values = {cell.tag.lower(): cell.text or "" for cell in child if isinstance(cell.tag, str)}
            seen.update(values)
            rows.append({name: values.get(lower, "") for name, lower in wanted})
        elif tag == "rowsreturned":
            counted = (child.text or "").strip()
    if counted is not None and counted.isdigit() and int(counted) != len(rows):
        raise TransientError(f"{SYSTEM} said {int(counted)} rows but sent {len(rows)}: the answer was cut short")
    missing = {name for name, lower in wanted if lower not in seen} if rows else set()
    return rows, missing


# --- the session ------------------------------------------------------------------------------------
_USER_ID = re.compile(r"^([0-9A-Za-z]{16,64} *)\s*$")
_INVALID_SESSION = "userid is invalid"


class EnetSession:
    """One e.net session: Logon, the UserId in every call's query string, Logoff.

    Plays both auth roles: for :class:`HttpClient` (``apply``/``on_unauthorized``: log on again
    once when SYSPRO ended the session) and for ``requests`` (``__call__`` puts the current UserId
    into each prepared URL, so the retry after a new logon carries the new one).
    """

    def __init__(self, operator: str, operator_password: str, company: str, company_password: str = "",
                 store: TokenStore | None = None, on_event: EventSink = ignore_event) -> None:
        self._credentials = {"Operator": operator, "OperatorPassword": operator_password,
                             "CompanyId": company, "CompanyPassword": company_password}
        self.company = company
        self.operator = operator
        self.store = store
        self.on_event = on_event
        self.http: HttpClient | None = None
        self.user_id: str | None = None
        self.logons = self.logoffs = self.relogons = 0
        self.relogged_in_call = False
        self._closing = False

    # HttpClient's Auth protocol
    def apply(self, headers: dict[str, str]) -> None:
        return None

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        if self._closing:
            return False
        self.user_id = None  # SYSPRO ended it: nothing to log off
        self.logon()
        self.relogons += 1
        self.relogged_in_call = True
        return True

    # requests' auth hook
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        operation = parts.path.rstrip("/").rsplit("/", 1)[-1].lower()
        if self.user_id and operation not in ("logon", "getversion") and "userid=" not in parts.query.lower():
            query = f"UserId={quote(self.user_id, safe='')}" + (f"&{parts.query}" if parts.query else "")
            request.url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return request

    def logon(self) -> None:
        assert self.http is not None
        response = self.http.request("GET", "Logon?" + encode(self._credentials))
        found = _USER_ID.match(response.content.decode("latin-1"))
        if not found:
            raise unexpected_answer(response, SYSTEM, "an answer to Logon that is not a UserId; the e.net service "
                                    "may be down or behind a proxy that answered for it")
        self.user_id = found.group(1)  # verbatim: SYSPRO wants the trailing spaces back
        self.http.secrets = (*self.http.secrets, self.user_id.strip())
        self.logons += 1
        if self.store is not None:  # a run killed before Logoff leaves this for release_leftover()
            self.store.save(Token(access_token=self.user_id, extra={"seat": True}))

    def logoff(self, user_id: str | None = None) -> bool:
        """End the session (or a leftover one); True when it is gone (SYSPRO may have ended it)."""
        assert self.http is not None
        target = user_id or self.user_id
        if not target:
            return True
        if user_id is None:
            self.user_id = None
        self._closing = True
        try:
            # essential: sent even when the cycle's call budget is spent, or the seat stays taken
            self.http.request("GET", "Logoff?" + encode({"UserId": target}), essential=True)
            self.logoffs += 1
            gone = True
        except DataError as exc:
            gone = exc.code == "session_ended"  # SYSPRO had already ended it (timeout, bumped)
            if not gone:
                raise
        except SyncError as exc:
            self.on_event("connection.logoff_failed", {
                "reason": f"Could not log off from {SYSTEM}; the session holds a licence seat until SYSPRO's "
                          f"inactivity timeout ends it: {exc}"})
            gone = False
        finally:
            self._closing = False
        if gone and self.store is not None:
            self.store.save(None)
        return gone

    def classify(self, response: requests.Response) -> SyncError | None:
        """SYSPRO's ``ERROR…`` bodies (HTTP 200) as classified errors."""
        head = response.content[:2000].lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:5].upper() != b"ERROR":
            return None
        secrets = self.http.secrets if self.http else ()
        text = redact_text(head.decode("cp1252", errors="replace").strip().splitlines()[0][:300], secrets)
        lower = text.lower()
        operation = urlsplit(response.request.url or "").path.rstrip("/").rsplit("/", 1)[-1].lower() \
            if response.request is not None else ""
        if _INVALID_SESSION in lower:
            if operation == "logoff":
                return DataError(f"{SYSTEM} had already ended the session", detail=text, code="session_ended")
            if self.relogged_in_call:
                return SystemicError(
                    f"{SYSTEM} ended the session again right after a new logon. Check the e.net session timeout "
                    "and whether another program logs this operator off or takes its licence seat", detail=text,
                    code="session_lost")
            return SessionExpired(f"{SYSTEM} no longer knows the session (timed out or ended)", detail=text,
                                  code="session_expired")
        if any(word in lower for word in ("licen", "seat", "in use", "maximum number")):
            return TransientError(
                f"{SYSTEM} has no free e.net licence seat: every seat is in use by other sessions. Sessions free "
                "their seat when logged off or after SYSPRO's inactivity timeout; the sync tries again later",
                detail=text, code="licence_full")
        if operation == "logon":
            return AuthError(f"{SYSTEM} refused the logon of operator {self.operator} to company {self.company}. "
                             "Check the operator, its password and the company password", detail=text,
                             code="logon_refused")
        if "condition" in lower:
            return SystemicError(f"{SYSTEM} refused a query condition; this e.net install may take only EQ "
                                 "conditions: set the connection's seek_mode to 'by_day'", detail=text,
                                 code="condition_refused")
        return SystemicError(f"{SYSTEM} refused the request", detail=text, code="query_refused")


def classify_status(response: requests.Response) -> SyncError | None:
    """Non-200 answers: the web server in front of e.net, not SYSPRO itself."""
    if response.status_code in (404, 405):
        return SystemicError(f"No {SYSTEM} e.net REST service answers at this address: check the URL and the "
                             "REST port", status=response.status_code)
    if response.status_code == 414:
        return SystemicError(f"The query is too long for {SYSTEM}'s web server: lower the connection's "
                             "max_url_chars", status=414)
    return None
