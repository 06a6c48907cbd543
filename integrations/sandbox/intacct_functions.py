"""The functions of the simulated Intacct gateway: getAPISession, readByQuery, readMore, read,
create and update (see :mod:`.intacct` for the envelope, sessions and faults).

``readByQuery`` answers in RECORDNO order (it cannot sort) with ``<data listtype count
totalcount numremaining resultId>``; ``readMore`` continues a result set by ``resultId``;
``read`` returns whole records with their lines; ``create``/``update`` write APBILL and
VENDOR, and ``create`` writes APPYMT (a payment settling bills), through the business rules of
:mod:`.intacct_store`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from .base import SimRequest
from .intacct_query import Query, QueryError
from .intacct_store import GENERIC_ERRORNO as GENERIC
from .intacct_store import LINE_CONTAINERS, OBJECTS, Company, Ledger

RESULT_TTL = 15 * 60  # [U] how long a readMore resultId stays valid
LIST_TAGS = frozenset(LINE_CONTAINERS)


@dataclass
class Session:
    session_id: str
    sender_id: str
    company_id: str
    user_id: str
    location_id: str
    issued: float
    expires: float


@dataclass
class ResultSet:
    result_id: str
    company_id: str
    obj: str
    keys: list[str]
    fields: list[str]
    pagesize: int
    expires: float


@dataclass
class Failure(Exception):
    """A function (or request) refused with Intacct's four error fields."""

    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""
    status: str = "failure"


def error_xml(errorno: str, description: str = "", description2: str = "", correction: str = "") -> str:
    return ("<errormessage><error>"
            f"<errorno>{escape(errorno)}</errorno><description>{escape(description)}</description>"
            f"<description2>{escape(description2)}</description2><correction>{escape(correction)}</correction>"
            "</error></errormessage>")


def to_python(node: etree._Element) -> Any:
    children = [c for c in node if isinstance(c.tag, str)]
    if not children:
        return node.text or ""
    if node.tag in LIST_TAGS:
        return [to_python(c) for c in children]
    out: dict[str, Any] = {}
    for child in children:
        value = to_python(child)
        if child.tag in out:
            previous = out[child.tag]
            out[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[child.tag] = value
    return out


def render(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(render(k, v) for k, v in value.items()) + f"</{tag}>"
    if isinstance(value, list):  # a list container: APBILLITEMS → APBILLITEM children
        child = tag[:-1] if tag.endswith("S") else f"{tag}_ITEM"
        return f"<{tag}>" + "".join(render(child, item) for item in value) + f"</{tag}>"
    return f"<{tag}>{escape(str(value))}</{tag}>"


class GatewayFunctions:
    """The function handlers; mixed into the simulator, which owns the state they use."""

    ledger: Ledger
    timer: Callable[[], float]
    result_sets: dict[str, ResultSet]
    session_endpoint: str | None
    session_endpoint_path: str

    def _function(self, request: SimRequest, session: Session, company: Company, body: etree._Element | None) -> str:
        if body is None:
            raise Failure("XL03000003", "", "A function needs exactly one operation element.")
        name = body.tag
        if name == "getAPISession":
            parts = urlsplit(request.url)
            endpoint = self.session_endpoint or f"{parts.scheme}://{parts.netloc}{self.session_endpoint_path}"
            return (f"<data><api><sessionid>{escape(session.session_id)}</sessionid>"
                    f"<endpoint>{escape(endpoint)}</endpoint><locationid>{escape(session.location_id)}</locationid>"
                    "</api></data>")
        if name == "readByQuery":
            return self._read_by_query(session, company, body)
        if name == "readMore":
            return self._read_more(company, body)
        if name == "read":
            return self._read(company, body)
        if name in ("create", "update"):
            return self._write(session, company, name, body)
        raise Failure("XL03000003", "", f"Unknown function {name!r}.")  # [U]

    def _object(self, body: etree._Element) -> str:
        obj = (body.findtext("object") or "").strip().upper()
        if obj not in OBJECTS:
            raise Failure(GENERIC, "", f"Object definition {obj or '(none)'} not found.")  # [U]
        return obj

    def _fields(self, obj: str, text: str | None, lines: bool) -> list[str]:
        spec = OBJECTS[obj]
        wanted = [f.strip().upper() for f in (text or "*").split(",") if f.strip()]
        if not wanted or "*" in wanted:
            return [f for f in spec.fields if lines or f not in LINE_CONTAINERS]
        unknown = [f for f in wanted if f not in spec.fields]
        if unknown:
            raise Failure(GENERIC, "", f"Invalid field(s) {', '.join(unknown)} for object {obj}.")  # [U]
        return wanted

    def _record_xml(self, obj: str, record: dict[str, Any], fields: list[str]) -> str:
        inner = "".join(render(f, record.get(f, "")) for f in fields
                        if not (f in LINE_CONTAINERS and not record.get(f)))
        return f"<{obj}>{inner}</{obj}>"

    def _data(self, obj: str, records: list[dict[str, Any]], fields: list[str], total: int, remaining: int,
              result_id: str = "") -> str:
        attrs = (f'listtype={quoteattr(obj)} count="{len(records)}" totalcount="{total}" '
                 f'numremaining="{remaining}"' + (f" resultId={quoteattr(result_id)}" if result_id else ""))
        return f"<data {attrs}>{''.join(self._record_xml(obj, r, fields) for r in records)}</data>"

    def _read_by_query(self, session: Session, company: Company, body: etree._Element) -> str:
        obj = self._object(body)
        fields = self._fields(obj, body.findtext("fields"), lines=False)
        try:
            pagesize = int(body.findtext("pagesize") or 100)
        except ValueError:
            raise Failure(GENERIC, "", "pagesize must be a number.") from None
        if not 1 <= pagesize <= 1000:
            raise Failure(GENERIC, "", "pagesize must be between 1 and 1000.")  # [U] exact text
        spec = OBJECTS[obj]
        try:
            query = Query(body.findtext("query") or "", lambda name: name in spec.fields)
        except QueryError as exc:
            raise Failure(GENERIC, "Query Failed", f"Invalid query: {exc}") from None
        matched = [r for r in company.ordered(obj) if query.matches(lambda name, r=r: r.get(name))]
        page, rest = matched[:pagesize], matched[pagesize:]
        result_id = ""
        if rest:
            result_id = secrets.token_hex(16)
            self.result_sets[result_id] = ResultSet(result_id, company.company_id, obj,
                                                    [r["RECORDNO"] for r in rest], fields, pagesize,
                                                    self.timer() + RESULT_TTL)
        return self._data(obj, page, fields, len(matched), len(rest), result_id)

    def _read_more(self, company: Company, body: etree._Element) -> str:
        result_id = (body.findtext("resultId") or "").strip()
        result = self.result_sets.get(result_id)
        if result is None or result.company_id != company.company_id or result.expires <= self.timer():
            raise Failure(GENERIC, "", f"Unable to find the result set with resultId {result_id}.")  # [U]
        keys, result.keys = result.keys[:result.pagesize], result.keys[result.pagesize:]
        records = [company.data[result.obj][k] for k in keys if k in company.data[result.obj]]
        if not result.keys:
            del self.result_sets[result_id]
        total = len(records) + len(result.keys)
        return self._data(result.obj, records, result.fields, total, len(result.keys),
                          result_id if result.keys else "")

    def _read(self, company: Company, body: etree._Element) -> str:
        obj = self._object(body)
        fields = self._fields(obj, body.findtext("fields"), lines=True)
        keys = [k.strip() for k in (body.findtext("keys") or "").split(",") if k.strip()]
        records = [company.data[obj][k] for k in keys if k in company.data[obj]]
        return self._data(obj, records, fields, len(records), 0)

    def _write(self, session: Session, company: Company, action: str, body: etree._Element) -> str:
        children = [c for c in body if isinstance(c.tag, str)]
        spec = OBJECTS.get(children[0].tag.upper()) if len(children) == 1 else None
        if spec is None or not spec.writable:
            raise Failure(GENERIC, "", f"{action} needs one APBILL, APPYMT or VENDOR element.")  # [U]
        obj = children[0].tag.upper()
        values = to_python(children[0])
        values = values if isinstance(values, dict) else {}
        if obj == "APPYMT":
            if action != "create":  # only a draft payment can be updated; ours are submitted
                raise Failure(GENERIC, "Could not update Payment record!",
                              "Only a payment in Draft state can be updated.",
                              "Reverse the payment and create a new one.")  # [U] texts
            row = self.ledger.create_payment(company, values)
            ident = f"<DOCNUMBER>{escape(row.get('DOCNUMBER', ''))}</DOCNUMBER>"
        elif obj == "APBILL":
            row = (self.ledger.create_bill(company, values, session.location_id) if action == "create"
                   else self.ledger.update_bill(company, values, session.location_id))
            ident = f"<RECORDID>{escape(row.get('RECORDID', ''))}</RECORDID>"
        else:
            row = (self.ledger.create_vendor(company, values) if action == "create"
                   else self.ledger.update_vendor(company, values))
            ident = f"<VENDORID>{escape(row.get('VENDORID', ''))}</VENDORID>"
        tag = obj.lower()
        return (f'<data listtype="objects" count="1"><{tag}><RECORDNO>{row["RECORDNO"]}</RECORDNO>{ident}</{tag}>'
                "</data>")
