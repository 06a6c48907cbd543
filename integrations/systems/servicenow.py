"""ServiceNow client: Table API reads, Batch API writes (and reads sent together), OAuth2 / Basic
auth, connection checks.

Facts followed (API_FACTS section 1): every value is a string; list paging by
``sysparm_offset``/``sysparm_limit`` with a ``Link`` header; a condition on an unknown column is
silently ignored (so lookups only use configured columns, and results are re-checked); errors
come in the ``{"error": {...}, "status": "failure"}`` envelope; an unknown table is HTTP 400
"Invalid table"; the token endpoint answers 401 ``access_denied`` on bad credentials. Before its
first write a client checks, once, that the source-id column exists (``sys_dictionary``, in the
same Batch API call as the look-up made before that write when there is one), and the connection
test checks the user, roles, tables and columns the integrations need: both in
:mod:`integrations.systems.servicenow_checks`.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests

from integrations.systems import wire_json
from integrations.systems.auth import BearerAuth, TokenManager, TokenStore, oauth2_fetcher
from integrations.systems.concurrency import Background, Finished, in_background, write_limit
from integrations.systems.errors import BudgetExhausted, DataError, SyncError, SystemicError, TransientError
from integrations.systems.http import (
    BasicAuth,
    CallCounter,
    HttpClient,
    HttpPolicy,
    decode_json,
    default_classifier,
    unexpected_answer,
)
from integrations.systems.needs import TableNeed
from integrations.systems.schema import INT, LIST, MAP, TEXT, ConnectionSchema, Setting
from integrations.systems.servicenow_checks import SourceColumnGuard, TableRead, check_columns, check_roles
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

# GL postings staged for reconciliation (SYSPRO's journal detail): no ServiceNow table exists for
# them, so the customer creates this custom table (``u_`` columns, see the README) or names
# another in settings["tables"]["gl_posting"].
GL_POSTING_TABLE = "u_ml_gl_posting"
# Logical tables only some pairs write: when missing, the connection test fails only a connection
# whose integrations use them (before any integration uses it, it reports them without failing).
OPTIONAL_TABLES = {"gl_posting": "GL postings staged for reconciliation (SYSPRO → ServiceNow)",
                   "payment": "invoice payments posted back to the ERP (Sage Intacct ← ServiceNow)"}
# Invoice payments recorded in ServiceNow, read by the Intacct pair's payments stream. [U] the docs
# name sn_shop_invoice_payment_detail (API_FACTS 1.6) but not its columns; the seed names no table,
# so its profile follows the seed's sn_apo_ naming. Overridable like every other table.
PAYMENT_TABLES = {"seed": "sn_apo_invoice_payment", "apo": "sn_shop_invoice_payment_detail"}
# Logical table → name, per table profile (API_FACTS "Decisions"). Each is overridable per
# connection with settings["tables"] = {"invoice": "x_custom_invoice", ...}.
TABLE_PROFILES: dict[str, dict[str, str]] = {
    "seed": {
        "invoice": "sn_apo_invoice",
        "invoice_line": "sn_apo_invoice_line",
        "purchase_order": "proc_po",
        "purchase_order_line": "proc_po_item",
        "supplier": "proc_vendor",
        "gl_account": "itfm_gl_accounts",
        "cost_center": "cmn_cost_center",
        "gl_posting": GL_POSTING_TABLE,
        "payment": PAYMENT_TABLES["seed"],
    },
    "apo": {
        "invoice": "sn_shop_invoice",
        "invoice_line": "sn_shop_invoice_line",
        "purchase_order": "sn_shop_purchase_order",
        "purchase_order_line": "sn_shop_purchase_order_line",
        "supplier": "sn_fin_supplier",
        "gl_account": "sn_fin_gl_account",
        "cost_center": "cmn_cost_center",
        "gl_posting": GL_POSTING_TABLE,
        "payment": PAYMENT_TABLES["apo"],
    },
}
PROFILE_ROLES: dict[str, list[str]] = {
    "seed": ["sn_apay.apo_user", "procurement_user"],
    "apo": ["sn_ap_apm.accounts_payable_specialist", "sn_fin.procurement_user"],
}
# Which column holds the code / the label of a reference table; overridable with
# settings["code_fields"] / settings["label_fields"] keyed by logical table.
DEFAULT_CODE_FIELDS = {"gl_account": "account_number", "cost_center": "code", "supplier": "supplier_number"}
DEFAULT_LABEL_FIELDS = {"gl_account": "name", "cost_center": "name", "supplier": "name"}
DEFAULT_SOURCE_ID_FIELD = "u_source_key"

# The settings a ServiceNow connection accepts (validated wherever they are entered).
SETTINGS = (
    Setting("table_profile", TEXT, default="seed", choices=tuple(TABLE_PROFILES),
            help="Which ServiceNow tables to stage into: 'seed' (Source-to-Pay staging) or 'apo' (Accounts Payable Operations)."),
    Setting("tables", MAP, max_length=80, help="Table names overriding the profile's, by logical table."),
    Setting("code_fields", MAP, max_length=80, help="Column holding the code of a GL account, cost center or supplier."),
    Setting("label_fields", MAP, max_length=80, help="Column holding the name of a GL account, cost center or supplier."),
    Setting("source_id_field", TEXT, default=DEFAULT_SOURCE_ID_FIELD, max_length=80,
            help="Column that stores our source identity, used to find rows written before."),
    Setting("required_roles", LIST, max_length=80, help="Roles the integration user must hold (checked by the connection test)."),
    Setting("page_size", INT, default=1000, minimum=1, maximum=10_000, help="Rows per Table API read (at most 10,000)."),
    Setting("batch_size", INT, default=200, minimum=1, maximum=1_000, help="Items per Batch API call."),
)
LOOKUP_CHUNK = 200  # values per IN query, and at most LOOKUP_CHARS characters of them (the URL's length)
LOOKUP_CHARS = 6000
# What a write asks back: a written row's id and version, not the whole row rendered with its
# reference links (a thousand full rows per batch answer is most of the bytes of a sync).
UPSERT_RESPONSE_FIELDS = "sys_id,sys_mod_count"
# Times one upsert looks up and sends again the rows whose answer was lost (each time in smaller
# calls: 200, 100, 50... 1 item); what is still lost after that is failed, retried later.
UPSERT_ROUNDS = 10
_JSON_BODY = {"Content-Type": "application/json"}
Answer = tuple[list[dict[str, Any]], list[str]]  # a Batch API call: its serviced items, its unserviced ids
# Batch API calls of one write on the wire at once, at most (within the connection's
# ``write_concurrency``): each holds one of the instance's API worker slots for its whole run,
# and the instance's other integrations need theirs.
BATCH_CALLS_IN_FLIGHT = 2
_BATCH_ITEM_HEADERS = [
    {"name": "Content-Type", "value": "application/json"},
    {"name": "Accept", "value": "application/json"},
]


def instance_url(value: str) -> str:
    """Accept an instance subdomain ("acme") or a full URL."""
    value = value.strip().rstrip("/")
    if "://" not in value:
        if "." not in value:
            return f"https://{value}.service-now.com"
        return f"https://{value}"
    return value


SCHEMA = ConnectionSchema(
    system="servicenow",
    label="ServiceNow",
    auth_methods=("oauth2_client_credentials", "basic", "oauth2_refresh_token"),
    settings=SETTINGS,
    help="The customer's ServiceNow instance (Source-to-Pay or Accounts Payable Operations).",
    url_help="The instance URL, e.g. https://acme.service-now.com, or just its name (acme).",
    key_help={"username": "The integration user (needs the roles of the table profile).",
              "client_id": "Client id of the OAuth application registered in System OAuth → Application Registry.",
              "service_account": "The user the OAuth application acts as (checked for roles by the connection test)."},
    instance_url=instance_url,
)


def classify(response: requests.Response) -> SyncError | None:
    """ServiceNow's error envelope, read into our classes."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    message = ""
    detail = ""
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        detail = str(error.get("detail") or "")
    elif isinstance(body, dict) and body.get("error_description"):
        message = f"{body.get('error')}: {body.get('error_description')}"
    status = response.status_code
    if status == 400 and message.startswith("Invalid table"):
        return SystemicError(message, status=status, detail=detail, code="invalid_table")
    if status in (401, 403) or status == 429 or status >= 500:
        base = default_classifier(response)
        if message:
            base.message = message
            base.detail = detail
        return base
    if message:
        return DataError(message, status=status, detail=detail)
    return None


@dataclass
class BatchItem:
    id: str
    method: str
    url: str
    body: dict[str, Any] | None = None
    headers: bool = False  # the item's response headers wanted (a read's Link header)


@dataclass
class BatchOutcome:
    id: str
    status: int
    body: Any
    error: SyncError | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names; only when asked for


@dataclass
class Page:
    """One page of a Table API query, and whether the instance said another follows."""

    rows: list[dict[str, Any]]
    more: bool = False


@dataclass
class UpsertRow:
    """A row to write, keyed by its source identity (stored in the source-id column)."""

    key: str
    payload: dict[str, str]
    sys_id: str = ""
    uncertain: bool = False
    # the value written to the source-id column (the namespaced identity); the bare key if empty
    identity: str = ""

    @property
    def written_identity(self) -> str:
        return self.identity or self.key


@dataclass
class UpsertOutcome:
    action: str = ""
    sys_id: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    error: SyncError | None = None


class ServiceNowClient:
    """One ServiceNow instance, as one connection sees it."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient) -> None:
        self.spec = spec
        self.http = http
        self.base_url = http.base_url
        profile = spec.setting("table_profile", "seed")
        if profile not in TABLE_PROFILES:
            raise SystemicError(f"Unknown ServiceNow table profile {profile!r}; use one of {sorted(TABLE_PROFILES)}")
        self.profile = profile
        self.tables = {**TABLE_PROFILES[profile], **(spec.setting("tables", {}) or {})}
        self.required_roles = list(spec.setting("required_roles", PROFILE_ROLES[profile]))
        self.code_fields = {**DEFAULT_CODE_FIELDS, **(spec.setting("code_fields", {}) or {})}
        self.label_fields = {**DEFAULT_LABEL_FIELDS, **(spec.setting("label_fields", {}) or {})}
        self.source_id_field = spec.setting("source_id_field", DEFAULT_SOURCE_ID_FIELD)
        self.page_size = int(spec.setting("page_size", 1000))
        self.batch_size = int(spec.setting("batch_size", 200))
        # Items per Batch API call now: halved after a call whose answer was lost, doubled back
        # (up to ``batch_size``) after each answered one.
        self.batch_now = self.batch_size
        self.source_column = SourceColumnGuard(self)  # no write to a table without the source-id column

    # --- reading ----------------------------------------------------------------------------
    def close(self) -> None:
        """End of the cycle: release the HTTP connections."""
        self.http.close()

    def table(self, logical: str) -> str:
        return self.tables[logical]

    def record_url(self, table: str, sys_id: str) -> str:
        return f"{self.base_url}/nav_to.do?uri={table}.do?sys_id={sys_id}"

    def list(self, table: str, query: str = "", *, fields: list[str] | None = None, limit: int | None = None,
             offset: int = 0) -> tuple[list[dict[str, Any]], requests.Response]:
        return self.read(TableRead(table, query, fields, limit, offset))

    def read(self, query: TableRead) -> tuple[list[dict[str, Any]], requests.Response]:
        """One page of a Table API query: its rows, and the answer (for its ``Link`` header)."""
        response = self.http.request("GET", f"/api/now/table/{query.table}", params=self._list_params(query))
        rows = _rows(decode_json(response, "ServiceNow"))
        if rows is None:
            raise unexpected_answer(response, "ServiceNow", "a Table API answer whose result is not a list of rows")
        return rows, response

    def _list_params(self, read: TableRead) -> dict[str, Any]:
        params: dict[str, Any] = {
            "sysparm_limit": read.limit or self.page_size,
            "sysparm_offset": read.offset,
            "sysparm_exclude_reference_link": "true",
        }
        if read.query:
            params["sysparm_query"] = read.query
        if read.fields:
            params["sysparm_fields"] = ",".join(read.fields)
        return params

    def read_together(self, reads: list[TableRead]) -> list[Page | SyncError]:
        """Several Table API queries in one round trip: GET items of one Batch API call (API_FACTS
        1.3), each run by the instance as the same user. Each query's first page, or the error
        its item met, in the order asked. An item the instance left unserviced, answered with a
        temporary failure or with something else than rows is asked again on its own, with the
        usual retries and checks."""
        items = [BatchItem(str(n), "GET", f"/api/now/table/{read.table}?{urlencode(self._list_params(read))}",
                           headers=True) for n, read in enumerate(reads)]
        response = self.http.request("POST", "/api/now/v1/batch", data=self._encode_batch(items),
                                     headers=_JSON_BODY, idempotent=True)
        served, _ = self._batch_answer(response)
        answers: dict[str, Page | SyncError] = {}
        for outcome in self._batch_outcomes(served):
            rows = _rows(outcome.body)
            if outcome.error is not None and not isinstance(outcome.error, TransientError):
                answers[outcome.id] = outcome.error
            elif outcome.error is None and rows is not None:
                answers[outcome.id] = Page(rows, 'rel="next"' in outcome.headers.get("link", ""))
        results: list[Page | SyncError] = []
        for item, read in zip(items, reads, strict=True):
            answer = answers.get(item.id)
            if answer is None:
                try:
                    rows, alone = self.read(read)
                    answer = Page(rows, 'rel="next"' in alone.headers.get("Link", ""))
                except SyncError as exc:
                    answer = exc
            results.append(answer)
        return results

    def iter_pages_before_write(self, table: str, query: str = "", *,
                                fields: list[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """:meth:`iter_pages` for a read made before the first write into ``table`` (the look-up
        that adopts rows entered by hand): the first page may carry the column check
        (:meth:`_first_page_judging`)."""
        first = self._first_page_judging(table, TableRead(table, query, fields, self.page_size))
        if first is None:
            yield from self.iter_pages(table, query, fields=fields)
            return
        if first.rows:
            yield first.rows
        if first.rows and (first.more or len(first.rows) >= self.page_size):
            yield from self.iter_pages(table, query, fields=fields, offset=len(first.rows))

    def _first_page_judging(self, table: str, read: TableRead) -> Page | None:
        """While the source-id columns are not checked yet (:class:`SourceColumnGuard`), the
        check's query and ``read`` go in one call (a round trip saved before a cycle's first
        write), and a table without the column is refused before the rows are used: the first
        page of ``read``. None when the check was made already: ``read`` is the caller's to send."""
        check = self.source_column.first_read(table)
        if check is None:
            return None
        first, verdict = self.read_together([read, check])
        self.source_column.judge(table, verdict.rows if isinstance(verdict, Page) else verdict)
        self.source_column.require(table)
        if isinstance(first, SyncError):
            raise first
        return first

    def iter_pages(self, table: str, query: str = "", *, fields: list[str] | None = None,
                   limit: int | None = None, offset: int = 0) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query, following the ``Link: rel="next"`` header (offset paging)."""
        limit = limit or self.page_size
        while True:
            rows, response = self.list(table, query, fields=fields, limit=limit, offset=offset)
            if rows:
                yield rows
            has_next = 'rel="next"' in response.headers.get("Link", "")
            if not rows or (not has_next and len(rows) < limit):
                return
            offset += len(rows)

    def iter_updated_since(self, table: str, since: str, *, after_id: str = "", extra_query: str = "",
                           fields: list[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Rows with ``sys_updated_on >= since`` in (sys_updated_on, sys_id) order, as keyset pages;
        with ``after_id``, only the rows after (``since``, ``after_id``).

        Each next page asks for rows after the last (time, sys_id) seen, never for an offset:
        a row updated while we page moves to a later time and is read there, where an offset
        would skip whichever row slid into its place.
        """
        if fields:
            fields = sorted({*fields, "sys_id", "sys_updated_on"})
        ts, last_id = since, (after_id if since else "")
        while True:
            conditions = [f"sys_updated_on>={ts}"] if ts else []
            if last_id:  # AND (later time OR same time with a larger sys_id)
                conditions.append(f"sys_updated_on>{ts}^ORsys_id>{last_id}")
            if extra_query:
                conditions.append(extra_query)
            query = "^".join([*conditions, "ORDERBYsys_updated_on", "ORDERBYsys_id"])
            rows, _ = self.list(table, query, fields=fields, limit=self.page_size)
            if not rows:
                return
            yield rows
            if len(rows) < self.page_size:
                return
            ts, last_id = str(rows[-1].get("sys_updated_on", "")), str(rows[-1].get("sys_id", ""))

    def lookup(self, table: str, column: str, values: list[str], fields: list[str], *,
               before_write: bool = False) -> dict[str, dict[str, Any]]:
        """Rows whose ``column`` is one of ``values``, by that value (chunked IN queries).

        ServiceNow ignores a condition on a missing column and would return every row, so each
        returned row is checked against the asked values. ``before_write``: a look-up made before
        writing into ``table``, whose first query may carry the column check
        (:meth:`_first_page_judging`).
        """
        found: dict[str, dict[str, Any]] = {}
        for chunk in _lookup_chunks(sorted({v for v in values if v})):
            read = TableRead(table, f"{column}IN{','.join(chunk)}", [column, "sys_id", *fields], len(chunk) + 1)
            first = self._first_page_judging(table, read) if before_write else None
            before_write = False
            response = None
            if first is None:
                rows, response = self.read(read)
            else:
                rows = first.rows
            if any(not row.get("sys_id") or not isinstance(row["sys_id"], str) for row in rows):
                what = f"{table} rows without a sys_id"
                raise (unexpected_answer(response, "ServiceNow", what) if response is not None
                       else TransientError(f"ServiceNow answered with {what}"))
            if len(rows) > len(chunk):
                raise SystemicError(
                    f"Looking up {table} by {column} matched more rows than asked for: "
                    f"does the column {column} exist on {table}? Set the connection's source id field."
                )
            for row in rows:
                value = str(row.get(column, ""))
                if value in chunk:
                    found[value] = row
        return found

    # --- writing ----------------------------------------------------------------------------
    def batch(self, items: list[BatchItem]) -> dict[str, BatchOutcome]:
        """Send items through the Batch API, ``batch_now`` per call, resending unserviced ones.

        A call whose answer is lost (a dropped connection, a timeout: it may have committed)
        leaves its items with the error, for the caller to look up before writing them again,
        and halves the size of the next calls, down to single items: a network or gateway that
        drops long requests lets short ones through. Each answered call doubles the size back,
        up to ``batch_size``. Items answered "unserviced" are sent again, not failed.

        While one call is on the wire, a helper thread encodes the next call's body and decodes
        the previous answer: pure CPU work on values nobody else touches (no I/O, no database),
        so the client's share overlaps the wait for the instance instead of adding to it. With a
        ``write_concurrency`` above one, the next call goes out before the previous one is
        answered (:data:`BATCH_CALLS_IN_FLIGHT` at most): the items of one write do not depend on
        each other, and the answers are still taken in call order.
        """
        outcomes: dict[str, BatchOutcome] = {}
        lost: dict[str, BatchOutcome] = {}
        pending = list(items)
        rounds = 0
        slots = min(write_limit(self.spec), BATCH_CALLS_IN_FLIGHT)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="servicenow-batch") as helper:
            # the body of the next call, encoded early, and the ids it holds
            ahead: tuple[list[str], Future[bytes]] | None = None
            decoded: list[Future[list[BatchOutcome]]] = []
            # calls on the wire, oldest first: (their items, the call)
            flying: deque[tuple[list[BatchItem], Background[Answer] | Finished[Answer]]] = deque()
            try:
                while pending or flying:
                    while pending and len(flying) < slots and rounds <= 10:
                        size = max(1, min(self.batch_now, self.batch_size))
                        chunk, pending = pending[:size], pending[size:]
                        ids = [item.id for item in chunk]
                        body = ahead[1].result() if ahead is not None and ahead[0] == ids else self._encode_batch(chunk)
                        ahead = None
                        if pending:
                            following = pending[:size]
                            ahead = ([item.id for item in following], helper.submit(self._encode_batch, following))
                        flying.append((chunk, in_background(self._send_batch, body) if slots > 1
                                       else Finished(self._send_batch, body)))
                    if not flying:  # ten calls in a row that serviced nothing: give up on the rest
                        for item in pending:
                            outcomes[item.id] = BatchOutcome(item.id, 0, None,
                                                             TransientError("Batch item never serviced"))
                        break
                    chunk, call = flying.popleft()
                    try:
                        served, unserviced_ids = call.result()
                    except (SystemicError, BudgetExhausted):
                        raise
                    except SyncError as exc:
                        # This call failed or its answer was lost (it may have committed): its items
                        # carry the error, and are looked up before they are written again. The
                        # other calls' outcomes stand: one lost answer must not discard them.
                        lost.update({item.id: BatchOutcome(item.id, 0, None, exc) for item in chunk})
                        if isinstance(exc, TransientError) and exc.ambiguous:
                            self.batch_now = max(1, len(chunk) // 2)
                        rounds = 0
                        continue
                    self.batch_now = min(self.batch_size, max(1, self.batch_now) * 2)
                    decoded.append(helper.submit(self._batch_outcomes, served))
                    by_id = {item.id: item for item in chunk}
                    unserviced = [by_id[i] for i in unserviced_ids if i in by_id]
                    rounds = rounds + 1 if len(unserviced) == len(chunk) else 0
                    if unserviced:
                        pending = unserviced + pending
            finally:
                for _, call in flying:  # leaving on an error: no call outlives the write
                    call.wait()
            for future in decoded:  # in call order: a resent item's last answer wins
                for outcome in future.result():
                    outcomes[outcome.id] = outcome
        return {**lost, **outcomes}

    def _send_batch(self, body: bytes) -> Answer:
        response = self.http.request("POST", "/api/now/v1/batch", data=body, headers=_JSON_BODY, idempotent=False)
        return self._batch_answer(response)

    @staticmethod
    def _batch_answer(response: requests.Response) -> Answer:
        """The serviced items and the ids of the unserviced ones, as the Batch API documents them.

        Anything else is an answer we cannot read, to a write: ambiguous, so the rows are looked
        up by their source key before they are written again.
        """
        data = decode_json(response, "ServiceNow")
        served = data.get("serviced_requests", []) if isinstance(data, dict) else None
        unserviced = data.get("unserviced_requests", []) if isinstance(data, dict) else None
        if (not isinstance(served, list) or not all(isinstance(item, dict) for item in served)
                or not isinstance(unserviced, list) or not all(isinstance(i, str) for i in unserviced)):
            raise unexpected_answer(response, "ServiceNow", "a Batch API answer of another shape")
        return served, unserviced

    @classmethod
    def _encode_batch(cls, chunk: list[BatchItem]) -> bytes:
        body = {"batch_request_id": chunk[0].id, "rest_requests": [cls._batch_request(item) for item in chunk]}
        return wire_json.dumps(body)

    @classmethod
    def _batch_outcomes(cls, served: list[dict[str, Any]]) -> list[BatchOutcome]:
        return [cls._batch_outcome(item) for item in served]

    @staticmethod
    def _batch_request(item: BatchItem) -> dict[str, Any]:
        request: dict[str, Any] = {
            "id": item.id,
            "method": item.method,
            "url": item.url,
            "headers": _BATCH_ITEM_HEADERS,
            "exclude_response_headers": not item.headers,
        }
        if item.body is not None:
            request["body"] = base64.b64encode(wire_json.dumps(item.body)).decode("ascii")
        return request

    @staticmethod
    def _batch_outcome(served: dict[str, Any]) -> BatchOutcome:
        code = served.get("status_code")
        # a status that is not an HTTP status counts as none: a temporary failure, like a missing one
        status = code if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 else (
            int(code) if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3 else 0)
        raw = served.get("body") or ""
        try:
            body = json.loads(base64.b64decode(raw)) if raw else None
        except (ValueError, TypeError, RecursionError):
            body = None
        error: SyncError | None = None
        if status >= 400 or status == 0:
            envelope = body.get("error") if isinstance(body, dict) else None
            envelope = envelope if isinstance(envelope, dict) else {}
            message = str(envelope.get("message") or served.get("error_message") or served.get("status_text") or "")
            detail = str(envelope.get("detail") or "")
            if status in (429, 502, 503, 504) or status >= 500 or status == 0:
                error = TransientError(message or "Temporary failure", status=status, detail=detail)
            elif status in (401, 403) or message.startswith("Invalid table"):
                error = SystemicError(message or "Not authorised", status=status, detail=detail)
            else:
                error = DataError(message or "Rejected", status=status, detail=detail)
        listed = served.get("headers")
        headers = {str(h.get("name", "")).lower(): str(h.get("value", "")) for h in listed
                   if isinstance(h, dict)} if isinstance(listed, list) else {}
        return BatchOutcome(str(served.get("id", "")), status, body, error, headers)

    def upsert(self, table: str, rows: list[UpsertRow]) -> dict[str, UpsertOutcome]:
        """Create or update rows by source identity, through the Batch API.

        Rows whose earlier write is uncertain are looked up by the source-id column first (one
        query per chunk, not per row), so a write committed behind a lost response becomes an
        update instead of a second row; a row found already holding what we meant to write is
        not written again (:meth:`_verify`). Rows whose answer is lost here are looked up and sent
        again, in ever smaller calls (:meth:`batch`), up to ``UPSERT_ROUNDS`` times. Each
        outcome's ``record`` holds the row's ``sys_id`` and ``sys_mod_count`` only (see
        :data:`UPSERT_RESPONSE_FIELDS`).
        """
        results: dict[str, UpsertOutcome] = {}
        todo = list(rows)
        for round_no in range(UPSERT_ROUNDS):
            try:
                # the first look-up may carry the source-id column check, which comes before any write
                verified = self._verify(table, [row for row in todo if row.uncertain], before_write=not round_no)
            except (SystemicError, BudgetExhausted):
                raise
            except SyncError:
                if not round_no:
                    raise
                break  # the look-up failed: what this call wrote stands, the lost rows fail (ambiguous)
            self.source_column.require(table)
            results.update(verified)
            todo = [row for row in todo if row.key not in verified]
            if not todo:
                break
            written = self._write_rows(table, todo)
            results.update(written)
            lost = [row for row in todo if _lost(written[row.key].error)]
            if not lost:
                break
            for row in lost:
                row.uncertain = True
            todo = lost
        return results

    def _verify(self, table: str, rows: list[UpsertRow], *, before_write: bool = False) -> dict[str, UpsertOutcome]:
        """Look rows whose write is uncertain up by source identity: each found row's sys_id is
        kept (so it is updated, not created twice), and the rows that already hold every value of
        the payload are done, as "updated", without writing them again."""
        if not rows:
            return {}
        column = self.source_id_field
        fields = sorted({name for row in rows for name in row.payload} - {column, "sys_id"})
        # Rows written before identities were namespaced carry the bare key: accept both.
        existing = self.lookup(table, column, [v for row in rows for v in {row.written_identity, row.key}],
                               fields=["sys_mod_count", *fields], before_write=before_write)
        done: dict[str, UpsertOutcome] = {}
        for row in rows:
            found = existing.get(row.written_identity) or existing.get(row.key)
            if not found or (row.sys_id and str(found["sys_id"]) != row.sys_id):
                continue
            row.sys_id = str(found["sys_id"])
            wanted = {**row.payload, column: row.written_identity}
            if all(_same(value, found.get(name)) for name, value in wanted.items()):
                done[row.key] = UpsertOutcome("updated", row.sys_id, {
                    "sys_id": row.sys_id, "sys_mod_count": str(found.get("sys_mod_count", ""))})
        return done

    def _write_rows(self, table: str, rows: list[UpsertRow]) -> dict[str, UpsertOutcome]:
        column = self.source_id_field
        items = []
        fields = f"sysparm_fields={UPSERT_RESPONSE_FIELDS}"
        for index, row in enumerate(rows):
            payload = {**row.payload, column: row.written_identity}
            if row.sys_id:
                items.append(BatchItem(str(index), "PATCH", f"/api/now/table/{table}/{row.sys_id}?{fields}", payload))
            else:
                items.append(BatchItem(str(index), "POST", f"/api/now/table/{table}?{fields}", payload))
        served = self.batch(items)
        results: dict[str, UpsertOutcome] = {}
        for index, row in enumerate(rows):
            outcome = served.get(str(index))
            if outcome is None:
                results[row.key] = UpsertOutcome(error=TransientError("No answer for this row"))
            elif outcome.error:
                results[row.key] = UpsertOutcome(error=outcome.error)
            else:
                body = outcome.body if isinstance(outcome.body, dict) else {}
                record = body.get("result") if isinstance(body.get("result"), dict) else {}
                sys_id = str(record.get("sys_id") or row.sys_id)
                if not sys_id:  # written, but which row is it? Look it up before writing it again
                    results[row.key] = UpsertOutcome(error=TransientError(
                        "ServiceNow accepted the row but did not say its sys_id", status=outcome.status,
                        ambiguous=True))
                    continue
                results[row.key] = UpsertOutcome("updated" if row.sys_id else "created", sys_id, record)
        return results

    def delete(self, table: str, sys_id: str) -> None:
        self.http.request("DELETE", f"/api/now/table/{table}/{sys_id}", ok_statuses=(404,))

    # --- connection test --------------------------------------------------------------------
    def check(self, needs: dict[str, TableNeed] | None = None) -> list[dict[str, Any]]:
        """Credentials, tables, columns and the roles of the user the connection acts as, as report lines.

        ``needs``: what the integrations using this connection need, by logical table (see
        :func:`integrations.engine.checks.table_needs`); only those tables are checked, with their
        source-id, code and label columns. ``None`` (no integration uses the connection yet):
        every table of the profile, without columns.
        """
        lines: list[dict[str, Any]] = []
        try:
            self.list("sys_db_object", "name=sys_user", fields=["name"], limit=1)
            lines.append({"check": "credentials", "ok": True, "message": "Signed in to ServiceNow"})
        except SyncError as exc:
            lines.append({"check": "credentials", "ok": False, "message": f"Sign-in failed: {exc}"})
            return lines
        tables = self.tables if needs is None else {logical: self.tables[logical] for logical in needs
                                                    if logical in self.tables}
        installed: set[str] = set()
        for logical, table in sorted(tables.items()):
            # with no integration on the connection yet, a table only some pairs write is reported
            # when missing, not failed
            line = self._check_table(logical, table, optional=needs is None and logical in OPTIONAL_TABLES)
            lines.append(line)
            if line["ok"]:
                installed.add(table)
        if needs:
            lines.extend(check_columns(self, needs, installed))
        lines.extend(check_roles(self))
        return lines

    def _check_table(self, logical: str, table: str, optional: bool = False) -> dict[str, Any]:
        try:
            rows, _ = self.list("sys_db_object", f"name={table}", fields=["name", "label"], limit=1)
            exists = any(row.get("name") == table for row in rows)
            if not exists:  # sys_db_object may be unreadable: probe the table itself
                self.list(table, limit=1, fields=["sys_id"])
                exists = True
        except SystemicError as exc:
            if exc.code == "invalid_table":
                exists = False
            else:
                return {"check": f"table:{table}", "ok": False, "message": f"Cannot read {table}: {exc}"}
        except SyncError as exc:
            return {"check": f"table:{table}", "ok": False, "message": f"Cannot read {table}: {exc}"}
        if exists:
            return {"check": f"table:{table}", "ok": True, "message": f"Table {table} ({logical}) is installed"}
        if logical in OPTIONAL_TABLES:
            return {"check": f"table:{table}", "ok": optional,
                    "message": f"Table {table} ({logical}) is missing: create it (a custom table, see the README) "
                               f"or name another in the tables setting, for {OPTIONAL_TABLES[logical]}"}
        return {"check": f"table:{table}", "ok": False,
                "message": f"Table {table} ({logical}) is missing: is its plugin licensed and installed?"}


def _lost(error: SyncError | None) -> bool:
    """An answer lost after the write may have committed: look the row up and send it again."""
    return isinstance(error, TransientError) and error.ambiguous


def _same(wanted: Any, found: Any) -> bool:
    """A value we meant to write equals the one read back (ServiceNow answers strings; a number
    may come back with other trailing zeros)."""
    want, got = "" if wanted is None else str(wanted), "" if found is None else str(found)
    if want == got:
        return True
    try:
        return Decimal(want) == Decimal(got)
    except (InvalidOperation, ValueError):
        return False


def _rows(body: Any) -> list[dict[str, Any]] | None:
    """The rows of a Table API answer (``{"result": [...]}``), or None when it is not one."""
    rows = body.get("result", []) if isinstance(body, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return None
    return rows


def _lookup_chunks(values: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for value in values:
        if chunk and (len(chunk) >= LOOKUP_CHUNK or size + len(value) + 1 > LOOKUP_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        yield chunk


def build_client(spec: ConnectionSpec, store: TokenStore, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None) -> ServiceNowClient:
    base = instance_url(spec.url)
    token_http = HttpClient(base, policy=policy, counter=counter, session=session, error_classifier=classify,
                            secrets=spec.secret_values(), on_event=on_event)
    if spec.auth_method == "basic":
        auth: Any = BasicAuth(spec.setting("username"), spec.secret("password"))
    else:
        grant = "password" if spec.auth_method == "oauth2_password" else "client_credentials"
        fetch = oauth2_fetcher(
            token_http, f"{base}/oauth_token.do",
            client_id=spec.setting("client_id"), client_secret=spec.secret("client_secret"),
            grant="refresh_token" if spec.secret("refresh_token") else grant,
            refresh_token=spec.secret("refresh_token"),
            username=spec.setting("username"), password=spec.secret("password"),
        )
        auth = BearerAuth(TokenManager(fetch, store))
    http = HttpClient(base, auth=auth, policy=policy, counter=counter, session=session, error_classifier=classify,
                      default_headers={"Accept": "application/json"}, secrets=spec.secret_values(),
                      on_event=on_event)
    return ServiceNowClient(spec, http)
