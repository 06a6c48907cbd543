"""The Intacct XML envelope: building requests, reading responses, classifying errors.

A request is ``<request><control>`` (sender id and password, a control id, ``uniqueid``,
``dtdversion`` 3.0) plus one ``<operation>`` (authentication and ``<function>`` elements).
A response is read whatever its HTTP status: ``<errormessage>`` can sit at control level (no
operation ran), authentication level (no function ran) or in each ``<result>`` (only that
function failed), and each becomes a classified error carrying Intacct's errorno,
description, description2 and correction. See API_FACTS 4.1, 4.3 and 4.5.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from lxml import etree

from integrations.systems.errors import AuthError, DataError, SyncError, SystemicError, TransientError
from integrations.systems.http import parse_retry_after
from integrations.systems.intacct_xml import Markup, UnsafeXml, child_text, element, parse, to_python
from integrations.systems.redaction import redact_text

DUPLICATE_TEXT = "A successful transaction has already been recorded with the control id"
ROLLBACK_ERRORNO = "XL03000009"
CREDENTIALS_ERRORNOS = frozenset({"GW-0011", "XL03000006", "XMLGW_JPP0002"})
RATE_LIMIT_ERRORNO = "GW-0010"
LIST_TAGS = frozenset({"APBILLITEMS", "APPYMTDETAILS"})
XML_HEADERS = {"Content-Type": "application/xml", "Accept": "application/xml"}


# --- errors -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntacctErrorItem:
    """One ``<error>`` of an ``<errormessage>``."""

    errorno: str = ""
    description: str = ""
    description2: str = ""
    correction: str = ""

    def text(self) -> str:
        words = " ".join(part for part in (self.description, self.description2) if part)
        return f"{self.errorno}: {words}" if self.errorno else words


class IntacctErrors:
    """Mixin: the Intacct ``<error>`` items behind a classified error, and where they were."""

    intacct_errors: tuple[IntacctErrorItem, ...] = ()
    level: str = ""


class IntacctDataError(IntacctErrors, DataError):
    pass


class IntacctTransientError(IntacctErrors, TransientError):
    pass


class IntacctSystemicError(IntacctErrors, SystemicError):
    pass


class IntacctAuthError(IntacctErrors, AuthError):
    pass


def error_from(cls: type[SyncError], level: str, items: Sequence[IntacctErrorItem], *, status: int | None = None,
           fallback: str = "") -> SyncError:
    items = tuple(items)
    message = "; ".join(item.text() for item in items if item.text()) or fallback or f"Intacct {level} failure"
    corrections = " ".join(item.correction for item in items if item.correction)
    exc: Any = cls(f"Intacct {level} error {message}", status=status,
                   detail=f"Correction: {corrections}" if corrections else "", code=items[0].errorno if items else "")
    exc.intacct_errors, exc.level = items, level  # every class passed here mixes in IntacctErrors
    return exc


def _all_text(items: Sequence[IntacctErrorItem]) -> str:
    return " ".join(f"{i.errorno} {i.description} {i.description2} {i.correction}" for i in items).lower()


def control_error(items: Sequence[IntacctErrorItem], status: int | None = None) -> SyncError:
    """A failure of the whole request: no operation ran."""
    text = _all_text(items)
    if status == 429 or any(i.errorno == RATE_LIMIT_ERRORNO for i in items):
        return error_from(IntacctTransientError, "control", items, status=status, fallback="rate limited")
    if any(i.errorno == "XL03000003" for i in items):  # the request itself was not valid XML
        return error_from(IntacctDataError, "control", items, status=status)
    if "password" in text or "sign-in" in text or "authoriz" in text or any(i.errorno == "XL03000006" for i in items):
        return error_from(IntacctAuthError, "control", items, status=status)
    if status is not None and status >= 500:
        return error_from(IntacctTransientError, "control", items, status=status)
    return error_from(IntacctSystemicError, "control", items, status=status)


def function_error(items: Sequence[IntacctErrorItem], status: str) -> SyncError:
    """A failure of one function: only that function (record) failed."""
    if items and all(i.errorno == ROLLBACK_ERRORNO for i in items) or (status == "aborted" and not items):
        # Rolled back only because *another* function of the transaction failed: worth retrying.
        # The function that failed carries its own error as well as XL03000009 [C: SDK fixtures]:
        # that one is classified by its own error, or it would be retried forever as it is.
        return error_from(IntacctTransientError, "function", items, fallback="rolled back")
    items = [i for i in items if i.errorno != ROLLBACK_ERRORNO] or list(items)
    text = _all_text(items)
    if "permission" in text or "not authorized" in text:
        return error_from(IntacctSystemicError, "function", items)
    return error_from(IntacctDataError, "function", items)


def _errors_in(node: etree._Element | None) -> list[IntacctErrorItem]:
    if node is None:
        return []
    return [
        IntacctErrorItem(child_text(err, "errorno"), child_text(err, "description"),
                         child_text(err, "description2"), child_text(err, "correction"))
        for err in node.findall("errormessage/error")
    ]


def classify(response: requests.Response) -> SyncError | None:
    """HTTP errors: read the XML body when there is one (429 → GW-0010, 401 → sign-in refused)."""
    status = response.status_code
    items: list[IntacctErrorItem] = []
    try:
        root = parse(response.content) if response.content else None
    except UnsafeXml:
        root = None
    if root is not None:
        items = _errors_in(root) + _errors_in(root.find("control")) + _errors_in(root.find("operation"))
    retry_after = parse_retry_after(response.headers.get("Retry-After"))  # [U] not documented
    if status == 401 or (status == 400 and any(i.errorno in CREDENTIALS_ERRORNOS for i in items)):
        # GW-0011 may come with HTTP 400 while signing in: the credentials, not one record [C]
        return error_from(IntacctAuthError, "http", items, status=status, fallback="sign-in refused")
    if status == 429 or status >= 500:
        exc = error_from(IntacctTransientError, "http", items, status=status,
                         fallback="rate limited" if status == 429 else "temporary failure")
        exc.retry_after = retry_after
        return exc
    if status == 403:
        return error_from(IntacctSystemicError, "http", items, status=status, fallback="forbidden")
    return error_from(IntacctDataError, "http", items, status=status,
                  fallback=redact_text(response.text[:300]) if response.text else "rejected")


# --- responses --------------------------------------------------------------------------------
@dataclass
class FunctionResult:
    function: str
    controlid: str
    status: str
    data: etree._Element | None = None
    errors: tuple[IntacctErrorItem, ...] = ()
    error: SyncError | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def duplicate(self) -> bool:
        """Refused because a function with this controlid already succeeded (``uniqueid``)."""
        return not self.ok and any(DUPLICATE_TEXT.lower() in f"{e.description} {e.description2}".lower()
                                   for e in self.errors)

    def records(self) -> list[dict[str, Any]]:
        """Each record of ``<data>`` as a dict; a record that is only text is not one Intacct sends."""
        if self.data is None:
            return []
        records = [to_python(node, LIST_TAGS) for node in self.data if isinstance(node.tag, str)]
        if not all(isinstance(record, dict) for record in records):
            raise IntacctTransientError(f"Intacct answered {self.function or 'a function'} with a record that has no "
                                        "fields", ambiguous=True)
        return records

    def attr(self, name: str, default: str = "") -> str:
        return self.data.get(name, default) if self.data is not None else default

    def raise_for_error(self) -> FunctionResult:
        if self.error is not None:
            raise self.error
        return self


@dataclass
class GatewayResponse:
    control_status: str
    control_errors: list[IntacctErrorItem]
    auth_status: str = ""
    auth_errors: list[IntacctErrorItem] = field(default_factory=list)
    session_timeout: datetime | None = None
    results: list[FunctionResult] = field(default_factory=list)

    @property
    def auth_failed(self) -> bool:
        return self.auth_status == "failure" or bool(self.auth_errors)


def parse_response(body: bytes, status: int | None = None) -> GatewayResponse:
    """Read a gateway response; an ill-formed body is transient (and ambiguous for a write)."""
    try:
        root = parse(body)
    except UnsafeXml as exc:
        if "DOCTYPE" in str(exc) or "entity" in str(exc):
            raise IntacctSystemicError(f"Intacct response refused: {exc}", status=status) from None
        raise IntacctTransientError(f"Intacct answered with something that is not XML: {exc}", status=status,
                                    ambiguous=True) from None
    if root.tag != "response":
        raise IntacctTransientError(f"Intacct answered with <{root.tag}>, not <response>", status=status,
                                    ambiguous=True)
    control = root.find("control")
    parsed = GatewayResponse(child_text(control, "status"), _errors_in(root) + _errors_in(control))
    operation = root.find("operation")
    if operation is None:
        return parsed
    auth = operation.find("authentication")
    parsed.auth_status = child_text(auth, "status")
    parsed.auth_errors = _errors_in(operation) + _errors_in(auth)
    timeout = child_text(auth, "sessiontimeout")
    if timeout:
        try:
            parsed.session_timeout = datetime.fromisoformat(timeout).astimezone(UTC)
        except (ValueError, OverflowError):  # not a time, or one that UTC cannot hold (year 1 or 9999)
            parsed.session_timeout = None
    for node in operation.findall("result"):
        errors = tuple(_errors_in(node))
        result_status = child_text(node, "status")
        result = FunctionResult(child_text(node, "function"), child_text(node, "controlid"), result_status,
                                node.find("data"), errors)
        if result_status != "success":
            result.error = function_error(errors, result_status)
        parsed.results.append(result)
    return parsed


# --- requests ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    name: str
    body: Markup
    controlid: str

    @property
    def xml(self) -> Markup:
        return element("function", self.body, {"controlid": self.controlid})

    @property
    def read_only(self) -> bool:
        return self.name in ("readByQuery", "readMore", "read", "getAPISession", "lookup")


def _fid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def fn_read_by_query(obj: str, query: str, fields: Sequence[str], pagesize: int) -> Function:
    body = element("readByQuery", {"object": obj, "fields": ",".join(fields) or "*", "query": query,
                                   "pagesize": pagesize})
    return Function("readByQuery", body, _fid("q"))


def fn_read_more(result_id: str) -> Function:
    return Function("readMore", element("readMore", {"resultId": result_id}), _fid("m"))


def fn_read(obj: str, keys: Sequence[str], fields: Sequence[str] = ("*",)) -> Function:
    body = element("read", {"object": obj, "keys": ",".join(keys), "fields": ",".join(fields) or "*"})
    return Function("read", body, _fid("r"))


def fn_get_api_session(location_id: str = "") -> Function:
    inner = element("locationid", location_id) if location_id else None
    return Function("getAPISession", element("getAPISession", inner), _fid("s"))


def quote(value: str) -> str:
    """A readByQuery string literal: single quotes, ``'`` escaped as ``\\'`` (XML escaping comes later)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Credentials:
    sender_id: str
    sender_password: str
    company_id: str
    user_id: str
    user_password: str
    location_id: str = ""

    def session_key(self) -> dict[str, str]:
        return {"sender_id": self.sender_id, "company_id": self.company_id, "user_id": self.user_id,
                "location_id": self.location_id}


def control_block(creds: Credentials, *, unique: bool) -> Markup:
    return element("control", {
        "senderid": creds.sender_id, "password": creds.sender_password,
        "controlid": f"req-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "uniqueid": unique, "dtdversion": "3.0", "includewhitespace": False,
    })


def request_xml(creds: Credentials, authentication: Markup, functions: Sequence[Function], *, unique: bool = False,
                transaction: bool = False) -> bytes:
    operation = element("operation", [element("authentication", authentication),
                                      element("content", [f.xml for f in functions])],
                        {"transaction": transaction})
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            + element("request", [control_block(creds, unique=unique), operation])).encode("utf-8")
