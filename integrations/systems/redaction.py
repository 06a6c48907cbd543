"""One redaction helper for logs, audit details and error messages.

Secrets reach us in three shapes: as values under telling keys (``password``,
``client_secret``...), inside URLs (SYSPRO puts credentials in the query string) and inside
headers (``Authorization: Bearer ...``). ``redact`` handles structures, ``redact_text`` strings.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

MASK = "********"
# Redaction runs on anything: a 1 MB settings value, a 65,000-character URL in a 404 log line.
# Longer text is cut (and says so), and every pattern below is linear in its input: possessive
# quantifiers never backtrack, and a secret word is looked for only inside a name already cut
# out by the pattern, never by a pattern that scans ahead from every position.
MAX_REDACT_CHARS = 1_048_576

_SECRET_KEY_RE = re.compile(
    r"(pass(word|wd)?|secret|token|authorization|session_?id|sessionid|api_?key|app_?key|"
    r"credential|private|signature|hmac|operatorpassword|companypassword|userid_secret)",
    re.IGNORECASE,
)
# Words that make a name in free text (``name=value``, ``"name": "value"``) a secret. ``userid``
# is SYSPRO's session id in query strings (``...?UserId=...&...``).
_SECRET_WORDS = ("password", "secret", "token", "sessionid", "session_id", "apikey", "api_key", "userid")
_SECRET_WORD_RE = re.compile("|".join(_SECRET_WORDS), re.IGNORECASE)
_PAIR_RE = re.compile(r"(?<![A-Za-z_])([A-Za-z_]++)=([^&\s\"']++)")  # query strings, form bodies
_JSON_RE = re.compile(r"\"([A-Za-z_]++)\"(\s*+:\s*+)\"(?:[^\"\\]++|\\.)*+\"")
_XML_RE = re.compile(r"<(password|sessionid|userpassword|senderpassword)>[^<]*+</\1>", re.IGNORECASE)  # Intacct
_AUTH_HEADER_RE = re.compile(r"\b(Bearer|Basic)\s++[A-Za-z0-9\-._~+/=]++", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return _is_secret_name(key) if len(key) <= 100 else bool(_SECRET_KEY_RE.search(key))


@functools.lru_cache(maxsize=4096)  # the same few names, event after event (thousands per approval)
def _is_secret_name(key: str) -> bool:
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


def _mask_pair(match: re.Match[str]) -> str:
    return f"{match.group(1)}={MASK}" if _SECRET_WORD_RE.search(match.group(1)) else match.group(0)


def _mask_json(match: re.Match[str]) -> str:
    return f'"{match.group(1)}"{match.group(2)}"{MASK}"' if _SECRET_WORD_RE.search(match.group(1)) else match.group(0)


def redact_text(text: str, extra: list[str] | tuple[str, ...] = ()) -> str:
    """Mask secrets inside free text; ``extra`` are known secret values to mask verbatim.

    Linear in the text and bounded: text past ``MAX_REDACT_CHARS`` is cut off, not scanned.
    """
    if len(text) > MAX_REDACT_CHARS:
        text = f"{text[:MAX_REDACT_CHARS]}… [{len(text) - MAX_REDACT_CHARS} more characters cut]"
    for secret in extra:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = _AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if any(word in lower for word in _SECRET_WORDS):
        if "=" in text:
            text = _PAIR_RE.sub(_mask_pair, text)
        if ":" in text:
            text = _JSON_RE.sub(_mask_json, text)
        if "<" in text:
            text = _XML_RE.sub(lambda m: f"<{m.group(1)}>{MASK}</{m.group(1)}>", text)
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
