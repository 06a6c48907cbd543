"""The people outside the portal, over plain HTTP: an ERP user, an AP clerk, and the auditor's reads.

These clients share nothing with the portal's own (``integrations.systems``): they are written
from the vendors' wire formats, so the end-state check does not trust the code it checks. The
sandbox servers inject faults into everyone, these clients included, so every call is retried
on transient answers, and a create whose answer was lost is looked up before it is sent again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import requests
from lxml import etree

TRANSIENT = frozenset({429, 500, 502, 503, 504})


class OutsideError(RuntimeError):
    """A system refused what a person asked of it (not a transient fault)."""


class Http:
    """A session that retries connection failures and transient statuses for a while."""

    def __init__(self, auth: tuple[str, str] | None = None, deadline: float = 60.0, timeout: float = 15.0) -> None:
        self.session = requests.Session()
        self.session.auth = auth
        self.deadline = deadline
        self.timeout = timeout
        self.calls = 0
        self.retries = 0

    def call(self, method: str, url: str, *, resend: bool = True, on_lost: Callable[[], Any] | None = None,
             **kwargs: Any) -> requests.Response | Any:
        """One request, retried until it gets a non-transient answer.

        ``resend=False`` (a create): after a connection failure, ``on_lost()`` is asked first; a
        non-None answer means the write had committed and is returned instead of sending it again.
        """
        stop = time.monotonic() + self.deadline
        delay = 0.2
        while True:
            self.calls += 1
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
                if not resend and on_lost is not None:
                    found = on_lost()
                    if found is not None:
                        return found
            else:
                if response.status_code not in TRANSIENT:
                    return response
            if time.monotonic() > stop:
                raise OutsideError(f"{method} {url}: no answer after {self.deadline:.0f} s of retries")
            self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- Sage X3 (api1) ----------------------------------------------------------------------------
class X3:
    def __init__(self, url: str, folder: str = "SEED", auth: tuple[str, str] = ("admin", "x3-demo-pass")) -> None:
        self.base = f"{url.rstrip('/')}/api1/x3/erp/{folder}"
        self.http = Http(auth)

    def list(self, klass: str) -> list[dict[str, Any]]:
        url = f"{self.base}/{klass}?representation={klass}.$query&count=200"
        rows: list[dict[str, Any]] = []
        while url:
            response = self.http.call("GET", url)
            if response.status_code != 200:
                raise OutsideError(f"X3 {klass} list: HTTP {response.status_code} {response.text[:300]}")
            page = json.loads(response.text, parse_float=Decimal)
            rows.extend(page.get("$resources") or [])
            url = ((page.get("$links") or {}).get("$next") or {}).get("$url") or ""
        return rows

    def get(self, klass: str, key: str) -> dict[str, Any] | None:
        url = f"{self.base}/{klass}('{quote(key)}')?representation={klass}.$details"
        response = self.http.call("GET", url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise OutsideError(f"X3 {klass} {key}: HTTP {response.status_code} {response.text[:300]}")
        return json.loads(response.text, parse_float=Decimal)

    def create(self, klass: str, key: str, record: dict[str, Any]) -> None:
        url = f"{self.base}/{klass}?representation={klass}.$create"
        response = self.http.call("POST", url, data=_dumps(record), headers={"Content-Type": "application/json"},
                                  resend=False, on_lost=lambda: self.get(klass, key))
        if isinstance(response, dict):  # committed behind a lost answer
            return
        if response.status_code == 409:  # an earlier attempt committed
            return
        if response.status_code != 201:
            raise OutsideError(f"X3 create {klass} {key}: HTTP {response.status_code} {response.text[:300]}")

    def update(self, klass: str, key: str, changes: dict[str, Any]) -> None:
        url = f"{self.base}/{klass}('{quote(key)}')?representation={klass}.$edit"
        response = self.http.call("PUT", url, data=_dumps(changes), headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            raise OutsideError(f"X3 update {klass} {key}: HTTP {response.status_code} {response.text[:300]}")


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str)


# --- Sage Intacct (XML gateway) ----------------------------------------------------------------
def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{tag}>{''.join(_xml(k, v) for k, v in value.items())}</{tag}>"
    if isinstance(value, list):
        return "".join(_xml(tag, item) for item in value)
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _python(node: Any) -> Any:
    children = [child for child in node if isinstance(child.tag, str)]
    if not children:
        return node.text or ""
    if node.tag == "APBILLITEMS":
        return [_python(child) for child in children]
    return {child.tag: _python(child) for child in children}


class Intacct:
    def __init__(self, gateway: str, *, sender: tuple[str, str], company: str, user: tuple[str, str]) -> None:
        self.gateway = gateway
        self.sender = sender
        self.company = company
        self.user = user
        self.http = Http()

    def _post(self, functions: list[tuple[str, str]], unique: bool = False) -> list[Any]:
        """Send ``(controlid, function xml)`` pairs signed in with a login; returns the result elements."""
        content = "".join(f'<function controlid="{escape(cid)}">{body}</function>' for cid, body in functions)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><request><control>'
            f"<senderid>{escape(self.sender[0])}</senderid><password>{escape(self.sender[1])}</password>"
            f"<controlid>chaos-{time.monotonic_ns()}</controlid><uniqueid>{'true' if unique else 'false'}</uniqueid>"
            "<dtdversion>3.0</dtdversion></control><operation><authentication><login>"
            f"<userid>{escape(self.user[0])}</userid><companyid>{escape(self.company)}</companyid>"
            f"<password>{escape(self.user[1])}</password></login></authentication>"
            f"<content>{content}</content></operation></request>"
        )
        # Reads are safe to resend; a lost write answer is safe too: every write here is sent with
        # uniqueid and a fixed controlid, so a resend that already committed is refused as such.
        response = self.http.call("POST", self.gateway, data=body.encode("utf-8"),
                                  headers={"Content-Type": "application/xml"})
        if response.status_code != 200:
            raise OutsideError(f"Intacct: HTTP {response.status_code} {response.text[:300]}")
        root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
        if root.findtext("control/status") != "success":
            raise OutsideError(f"Intacct control failure: {etree.tostring(root)[:500]!r}")
        if root.findtext("operation/authentication/status") != "success":
            raise OutsideError(f"Intacct sign-in failure: {etree.tostring(root)[:500]!r}")
        return root.findall("operation/result")

    @staticmethod
    def _ok(result: Any, tolerate_duplicate: bool = False) -> bool:
        if result.findtext("status") == "success":
            return True
        text = " ".join(result.itertext())
        if tolerate_duplicate and "already been recorded" in text:
            return False
        raise OutsideError(f"Intacct function failed: {text[:500]}")

    def query(self, obj: str, fields: str = "*") -> list[dict[str, Any]]:
        results = self._post([("q", f"<readByQuery><object>{obj}</object><fields>{fields}</fields><query></query>"
                                    "<pagesize>1000</pagesize></readByQuery>")])
        rows: list[dict[str, Any]] = []
        while True:
            result = results[0]
            self._ok(result)
            data = result.find("data")
            rows.extend(_python(node) for node in data if isinstance(node.tag, str))
            result_id = data.get("resultId") or ""
            if not result_id or data.get("numremaining") in ("0", None):
                return rows
            results = self._post([("m", f"<readMore><resultId>{escape(result_id)}</resultId></readMore>")])

    def read(self, obj: str, keys: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            chunk = ",".join(keys[start:start + 100])
            (result,) = self._post([("r", f"<read><object>{obj}</object><keys>{chunk}</keys><fields>*</fields></read>")])
            self._ok(result)
            rows.extend(_python(node) for node in result.find("data") if isinstance(node.tag, str))
        return rows

    def write(self, action: str, obj: str, values: dict[str, Any], controlid: str) -> bool:
        """``create``/``update`` exactly once (uniqueid); False when an earlier send had committed it."""
        (result,) = self._post([(controlid, f"<{action}>{_xml(obj, values)}</{action}>")], unique=True)
        return self._ok(result, tolerate_duplicate=True)


# --- ServiceNow (Table API) --------------------------------------------------------------------
class ServiceNow:
    def __init__(self, url: str, auth: tuple[str, str] = ("integration.user", "integration-pass")) -> None:
        self.base = url.rstrip("/")
        self.http = Http(auth)

    def rows(self, table: str, query: str = "", fields: list[str] | None = None) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        offset = 0
        while True:
            params = {"sysparm_limit": "1000", "sysparm_offset": str(offset), "sysparm_query": query}
            if fields:
                params["sysparm_fields"] = ",".join(fields)
            response = self.http.call("GET", f"{self.base}/api/now/table/{table}", params=params,
                                      headers={"Accept": "application/json"})
            if response.status_code != 200:
                raise OutsideError(f"ServiceNow {table}: HTTP {response.status_code} {response.text[:300]}")
            page = response.json()["result"]
            out.extend(page)
            if len(page) < 1000:
                return out
            offset += len(page)

    def create(self, table: str, values: dict[str, str], identity: str) -> str:
        """POST a row; ``identity`` (an encoded query) finds it if the answer is lost. Returns its sys_id."""
        def existing() -> str | None:
            found = self.rows(table, identity, ["sys_id"])
            return found[0]["sys_id"] if found else None

        already = existing()
        if already:
            return already
        response = self.http.call("POST", f"{self.base}/api/now/table/{table}", json=values,
                                  headers={"Accept": "application/json"}, resend=False, on_lost=existing)
        if isinstance(response, str):
            return response
        if response.status_code != 201:
            raise OutsideError(f"ServiceNow create {table}: HTTP {response.status_code} {response.text[:300]}")
        return response.json()["result"]["sys_id"]

    def patch(self, table: str, sys_id: str, values: dict[str, str]) -> None:
        response = self.http.call("PATCH", f"{self.base}/api/now/table/{table}/{sys_id}", json=values,
                                  headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise OutsideError(f"ServiceNow patch {table}/{sys_id}: HTTP {response.status_code} {response.text[:300]}")
