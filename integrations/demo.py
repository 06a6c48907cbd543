"""The demo tenant: one document per pair, pointed at sandbox URLs."""

from __future__ import annotations

from typing import Any

X3_CLIENT_ID = "ml-connector"
X3_CLIENT_SECRET = "x3-demo-secret"
SN_CLIENT_ID = "ml-connector"
SN_CLIENT_SECRET = "sn-demo-secret"
SN_USER = "integration.user"


def x3_servicenow_document(x3_url: str, sn_url: str, *, x3_refresh_token: str = "", slug: str = "acme",
                           name: str = "Acme Manufacturing", settings: dict[str, Any] | None = None,
                           schedules: dict[str, str] | None = None, x3_transport: str = "rest") -> dict[str, Any]:
    """X3 over OAuth2 when a refresh token is given (the cloud lifecycle), else Basic; over api1
    REST or GraphQL (``x3_transport``)."""
    if x3_refresh_token:
        x3_auth = {"method": "oauth2_refresh_token", "token_url": f"{x3_url}/token", "client_id": X3_CLIENT_ID,
                   "client_secret": X3_CLIENT_SECRET, "refresh_token": x3_refresh_token}
    else:
        x3_auth = {"method": "basic", "username": "admin", "password": "x3-demo-pass"}
    return {
        "tenant": {"slug": slug, "name": name},
        "connections": [
            {"name": "x3", "system": "sage_x3", "url": x3_url, "folder": "SEED", "auth": x3_auth,
             **({"settings": {"transport": x3_transport}} if x3_transport != "rest" else {})},
            {"name": "sn", "system": "servicenow", "url": sn_url, "table_profile": "seed",
             "settings": {"service_account": SN_USER},
             "auth": {"method": "oauth2_client_credentials", "client_id": SN_CLIENT_ID,
                      "client_secret": SN_CLIENT_SECRET}},
        ],
        "integrations": [
            {"name": "x3-to-sn", "kind": "sage_x3__servicenow", "source": "x3", "target": "sn",
             "settings": settings or {"page_size": 50}, "schedules": schedules or {"invoices": "daily"}},
        ],
    }


# --- Sage Intacct ↔ ServiceNow -----------------------------------------------------------------
# The sandbox's demo company (integrations/sandbox/intacct_seed.py).
INTACCT_GATEWAY_PATH = "/ia/xml/xmlgw.phtml"
INTACCT_SENDER_ID = "mlconnector"
INTACCT_SENDER_PASSWORD = "intacct-sender-pass"
INTACCT_COMPANY_ID = "acme-demo"
INTACCT_USER_ID = "xml_gateway"
INTACCT_USER_PASSWORD = "intacct-user-pass"


def intacct_servicenow_document(intacct_url: str, sn_url: str, *, slug: str = "acme-intacct",
                                name: str = "Acme Distribution (Intacct)", entity_id: str = "",
                                settings: dict[str, Any] | None = None,
                                schedules: dict[str, str] | None = None) -> dict[str, Any]:
    """An Intacct tenant: the XML gateway with a sender + API user session, ServiceNow over OAuth2.

    ``intacct_url`` is the sandbox root (the gateway path is added) or a full gateway URL.
    """
    gateway = intacct_url if intacct_url.endswith(".phtml") else intacct_url.rstrip("/") + INTACCT_GATEWAY_PATH
    auth: dict[str, Any] = {"method": "session", "sender_id": INTACCT_SENDER_ID,
                            "sender_password": INTACCT_SENDER_PASSWORD, "user_id": INTACCT_USER_ID,
                            "user_password": INTACCT_USER_PASSWORD}
    if entity_id:
        auth["entity_id"] = entity_id
    return {
        "tenant": {"slug": slug, "name": name},
        "connections": [
            {"name": "intacct", "system": "sage_intacct", "url": gateway, "company": INTACCT_COMPANY_ID,
             "auth": auth},
            {"name": "sn", "system": "servicenow", "url": sn_url, "table_profile": "seed",
             "settings": {"service_account": SN_USER},
             "auth": {"method": "oauth2_client_credentials", "client_id": SN_CLIENT_ID,
                      "client_secret": SN_CLIENT_SECRET}},
        ],
        "integrations": [
            {"name": "intacct-sn", "kind": "sage_intacct__servicenow", "source": "intacct", "target": "sn",
             "settings": settings or {"page_size": 50},
             "schedules": schedules or {"bills": "hourly", "approved_invoices": "hourly"}},
        ],
    }


# --- Sage 300 → ServiceNow -----------------------------------------------------------------------
# The sandbox's demo company (integrations/sandbox/sage300_seed.py); the user types the
# credentials in any case, the client sends them upper-case.
SAGE300_COMPANY = "SAMLTD"
SAGE300_USER = "webapi"
SAGE300_PASSWORD = "webapi-pass"


def sage300_servicenow_document(s300_url: str, sn_url: str, *, slug: str = "acme-300",
                                name: str = "Acme Components (Sage 300)", settings: dict[str, Any] | None = None,
                                connection_settings: dict[str, Any] | None = None,
                                schedules: dict[str, str] | None = None) -> dict[str, Any]:
    """A Sage 300 tenant: the Web API with Basic auth (read only), its own ServiceNow over OAuth2."""
    return {
        "tenant": {"slug": slug, "name": name},
        "connections": [
            {"name": "s300", "system": "sage_300", "url": s300_url, "company": SAGE300_COMPANY,
             "settings": connection_settings or {"timeout": 120},
             "auth": {"method": "basic", "username": SAGE300_USER, "password": SAGE300_PASSWORD}},
            {"name": "sn", "system": "servicenow", "url": sn_url, "table_profile": "seed",
             "settings": {"service_account": SN_USER},
             "auth": {"method": "oauth2_client_credentials", "client_id": SN_CLIENT_ID,
                      "client_secret": SN_CLIENT_SECRET}},
        ],
        "integrations": [
            {"name": "s300-to-sn", "kind": "sage_300__servicenow", "source": "s300", "target": "sn",
             "settings": settings or {"call_budget": 1500}, "schedules": schedules or {"invoices": "daily"}},
        ],
    }


# --- SYSPRO → ServiceNow -------------------------------------------------------------------------
# The sandbox's demo company (integrations/sandbox/syspro_seed.py): an e.net operator whose
# password needs encoding (& + # and spaces), a company without a company password.
SYSPRO_COMPANY = "EDU1"
SYSPRO_OPERATOR = "ADMIN"
SYSPRO_OPERATOR_PASSWORD = "Adm!n & Co+1 #2"


def syspro_servicenow_document(syspro_url: str, sn_url: str, *, slug: str = "acme-syspro",
                               name: str = "Acme Machining (SYSPRO)", settings: dict[str, Any] | None = None,
                               connection_settings: dict[str, Any] | None = None,
                               schedules: dict[str, str] | None = None) -> dict[str, Any]:
    """A SYSPRO tenant: e.net REST (read only, one session per cycle), its own ServiceNow over OAuth2."""
    return {
        "tenant": {"slug": slug, "name": name},
        "connections": [
            {"name": "syspro", "system": "syspro", "url": syspro_url, "company": SYSPRO_COMPANY,
             "settings": connection_settings or {"timeout": 120},
             "auth": {"method": "enet", "operator": SYSPRO_OPERATOR, "operator_password": SYSPRO_OPERATOR_PASSWORD,
                      "company_password": ""}},
            {"name": "sn", "system": "servicenow", "url": sn_url, "table_profile": "seed",
             "settings": {"service_account": SN_USER},
             "auth": {"method": "oauth2_client_credentials", "client_id": SN_CLIENT_ID,
                      "client_secret": SN_CLIENT_SECRET}},
        ],
        "integrations": [
            {"name": "syspro-to-sn", "kind": "syspro__servicenow", "source": "syspro", "target": "sn",
             "settings": settings or {"page_size": 50},
             "schedules": schedules or {"invoices": "hourly", "gl_postings": "hourly"}},
        ],
    }


# --- ServiceTitan → Sage X3 --------------------------------------------------------------------
X3_FIELD_FOLDER = "FIELD"  # the contractor's X3 folder in the sandbox (sandbox/sage_x3_seed.field_service_data)
ST_JOURNAL_OFFSET = "21500"  # accrued job costs


def servicetitan_x3_document(st_url: str, x3_url: str, *, st_token_url: str = "", x3_refresh_token: str = "",
                             slug: str = "acme-field", name: str = "Acme Electric (ServiceTitan)",
                             settings: dict[str, Any] | None = None,
                             schedules: dict[str, str] | None = None, x3_transport: str = "rest") -> dict[str, Any]:
    """A contractor: ServiceTitan (OAuth client credentials, app key, webhook key) into its X3 folder
    (OAuth2 when a refresh token is given, the cloud lifecycle; else Basic, on-premise; api1 REST or
    GraphQL: ``x3_transport``)."""
    from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, TENANT_ID, WEBHOOK_KEY

    if x3_refresh_token:
        x3_auth = {"method": "oauth2_refresh_token", "token_url": f"{x3_url}/token", "client_id": X3_CLIENT_ID,
                   "client_secret": X3_CLIENT_SECRET, "refresh_token": x3_refresh_token}
    else:
        x3_auth = {"method": "basic", "username": "admin", "password": "x3-demo-pass"}
    return {
        "tenant": {"slug": slug, "name": name},
        "connections": [
            {"name": "st", "system": "servicetitan", "url": st_url, "company": TENANT_ID,
             "settings": {"webhook_encoding": "base64", "webhook_header": "X-ServiceTitan-Signature",
                          "job_cost_fields": {"labor": "laborCost", "material": "materialCost"}},
             "auth": {"method": "oauth2_client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                      "app_key": APP_KEY, "token_url": st_token_url or f"{st_url}/connect/token",
                      "webhook_key": WEBHOOK_KEY}},
            {"name": "x3", "system": "sage_x3", "url": x3_url, "folder": X3_FIELD_FOLDER, "auth": x3_auth,
             **({"settings": {"transport": x3_transport}} if x3_transport != "rest" else {})},
        ],
        "integrations": [
            {"name": "st-to-x3", "kind": "servicetitan__sage_x3", "source": "st", "target": "x3",
             "settings": settings or {"journal_offset_account": ST_JOURNAL_OFFSET, "journal_type": "ODT",
                                      "bill_tax_account": "21600", "bill_freight_account": "5200"},
             "schedules": schedules or {"job_costs": "hourly", "inventory_bills": "hourly"}},
        ],
    }
