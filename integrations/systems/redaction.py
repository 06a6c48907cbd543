"""One redaction helper for logs, audit details and error messages.

Secrets reach us in three shapes: as values under telling keys (``password``,
``client_secret``...), inside URLs (SYSPRO puts credentials in the query string) and inside
headers (``Authorization: Bearer ...``). ``redact`` handles structures, ``redact_text`` strings.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "********"

_SECRET_KEY_RE = re.compile(
    r"(pass(word|wd)?|secret|token|authorization|session_?id|sessionid|api_?key|app_?key|"
    r"credential|private|signature|hmac|operatorpassword|companypassword|userid_secret)",
    re.IGNORECASE,
)
_SECRET_WORDS = r"[A-Za-z_]*(?:password|secret|token|sessionid|api_key)[A-Za-z_]*"
# (pattern, replacement) pairs; each keeps the key and masks the value.
_TEXT_RULES: list[tuple[re.Pattern[str], str]] = [
    # key=value in query strings and form bodies (SYSPRO OperatorPassword=..., token=...)
    (re.compile(rf"(?P<k>{_SECRET_WORDS})=[^&\s\"']+", re.IGNORECASE), rf"\g<k>={MASK}"),
    # JSON "key": "value"
    (re.compile(rf"(?P<k>\"{_SECRET_WORDS}\"\s*:\s*)\"[^\"]*\"", re.IGNORECASE), rf'\g<k>"{MASK}"'),
    # XML <password>...</password>, <sessionid>...</sessionid> (Intacct)
    (re.compile(r"<(?P<k>password|sessionid|userpassword|senderpassword)>[^<]*</(?P=k)>", re.IGNORECASE),
     rf"<\g<k>>{MASK}</\g<k>>"),
]
_AUTH_HEADER_RE = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/=]+", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY_RE.search(key))


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secret-looking entries masked (dicts, lists, strings)."""
    if isinstance(value, dict):
        # A flag (``refresh_token_rotated: true``) cannot carry a secret: keep it readable.
        return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") and not isinstance(v, bool)
                    else redact(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str, extra: list[str] | tuple[str, ...] = ()) -> str:
    """Mask secrets inside free text; ``extra`` are known secret values to mask verbatim."""
    for secret in extra:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter: every record's message and args pass through :func:`redact_text`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            return True
        record.msg = redact_text(message)
        record.args = ()
        return True
