"""A connection test's lines in words a finance-ops person acts on: what is wrong, who can fix it.

Each line of a client's ``check()`` (``{"check": "role:sn_apay.apo_user", "ok": False, "message": …}``)
becomes an :class:`Advice`: a sentence, the person who can fix it, and the technical message kept
for the tooltip (and for the customer's IT).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from integrations.systems.registry import system_label

ADMIN_OF = {
    "servicenow": "your ServiceNow admin",
    "sage_x3": "your Sage X3 administrator",
    "sage_300": "your Sage 300 administrator",
    "sage_intacct": "your Sage Intacct company administrator",
    "syspro": "your SYSPRO administrator",
    "servicetitan": "your ServiceTitan admin",
}
_LACKS = re.compile(r"^(?P<user>.+?) lacks the role (?P<role>\S+)")
_TABLE = re.compile(r"Table (?P<table>\S+) \((?P<logical>[^)]+)\) is missing")


@dataclass
class Advice:
    ok: bool
    text: str
    who: str = ""
    check: str = ""
    detail: str = ""
    warning: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def kind_label(kind: str) -> str:
    """A reference kind in words: ``gl_account`` → "GL account", ``cost_center`` → "cost center"."""
    words = kind.replace("_", " ")
    return "GL" + words[2:] if words.startswith("gl ") else words




def advise(system: str, line: dict[str, Any]) -> Advice:
    """One check line in plain words."""
    check, ok, message = str(line.get("check", "")), bool(line.get("ok")), str(line.get("message", ""))
    label, admin = system_label(system), ADMIN_OF.get(system, f"your {system_label(system)} administrator")
    warning = bool(line.get("warning"))
    base = {"check": check, "detail": message, "warning": warning}
    kind, _, what = check.partition(":")
    if ok and not warning:
        return Advice(True, _ok_text(label, kind, what, message), **base)
    if ok and warning:
        return Advice(True, f"Works, with a note: {message}", who=admin, **base)
    if kind in ("credentials", "token", "logon"):
        return Advice(False, f"{label} did not accept the sign-in details. Check what you typed (user, password, "
                             f"client id and secret), or ask {admin} for a working integration user.",
                      who=admin, **base)
    if kind == "connect":
        return Advice(False, f"We could not reach {label} at the address you gave. Check the address (and port); "
                             "if it is right, your IT team must let the portal reach the server.",
                      who="your IT team", **base)
    if kind == "app_key":
        return Advice(False, "ServiceTitan refused the app key: copy it again from the ServiceTitan developer portal.",
                      who=admin, **base)
    if kind == "role" and (match := _LACKS.match(message)):
        return Advice(False, f"Ask {admin} to grant {match['role']} to {match['user']}.", who=admin, **base)
    if kind == "roles":
        return Advice(False, f"We could not see which roles the integration user holds. Ask {admin} to enter the "
                             "integration user's name in the connection, or to let it read its own roles.",
                      who=admin, **base)
    if kind == "table" and (match := _TABLE.match(message)):
        return Advice(False, f"The {match['logical'].replace('_', ' ')} table ({match['table']}) is not in your "
                             f"{label}. Ask {admin} whether its plugin is licensed and installed.", who=admin, **base)
    if kind in ("column", "columns"):
        return Advice(False, f"A column the integration needs is missing or cannot be checked in {label}: "
                             f"ask {admin}. ({message})", who=admin, **base)
    if kind in ("class", "resource", "object", "table", "graphql"):
        thing = what or "a table"
        return Advice(False, f"The integration user cannot read {thing} in {label}. Ask {admin} to give it read "
                             "access (and check the module is licensed).", who=admin, **base)
    return Advice(False, f"{label}: {message}", who=admin, **base)


def _ok_text(label: str, kind: str, what: str, message: str) -> str:
    if kind in ("credentials", "token", "logon"):
        return f"Signed in to {label}."
    if kind == "role":
        return f"The integration user holds the role {what}."
    if kind == "table":
        return f"{label} has the table {what}."
    if kind in ("class", "resource", "object"):
        return f"Can read {what}."
    return message


def advise_report(system: str, report: dict[str, Any] | None) -> list[Advice]:
    """Every line of a stored connection test report (``Connection.last_test_report``), in plain words."""
    return [advise(system, line) for line in (report or {}).get("checks", [])]
