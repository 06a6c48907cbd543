"""JSON written on the wire through ``orjson``: many times faster than ``json.dumps`` on small documents.

A ServiceNow Batch API call carries up to a thousand item bodies, each JSON then base64, inside a
JSON envelope: the portal encodes some 60,000 small documents per 10,000 invoices of 5 lines, and
``json.dumps`` spent about 4 µs on each, ``orjson`` under a fifth of a microsecond.

The bytes are ASCII, as ``json.dumps`` writes them: a document with text beyond ASCII is written
by ``json`` (``\\u`` escapes), so no receiver has to assume an encoding (a Batch API item body
is base64, and what the instance decodes it as is not documented). So is what ``orjson`` refuses and
``json`` writes (an integer past 64 bits); what neither writes (a Decimal, any other object)
raises ``TypeError`` as before. The text differs from ``json.dumps`` in its spaces only, with one
exception: a float NaN or infinity, which ``json`` writes as a literal no JSON parser accepts,
comes out as ``null``. Money never is a float here.

Reading stays with ``json``: ``orjson`` turns an integer past 64 bits into a float.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # as json does: {1: ...} is written {"1": ...}


def dumps(value: Any) -> bytes:
    """``value`` as JSON, in ASCII."""
    try:
        written = orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        written = b""
    return written if written and written.isascii() else json.dumps(value).encode("ascii")
