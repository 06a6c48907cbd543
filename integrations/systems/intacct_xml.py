"""Safe XML for the Intacct gateway: values cleaned then escaped on the way out, hostile
documents refused on the way in.

Out: every value passes :func:`clean` (C0 control characters other than tab, newline and
carriage return are stripped, as are the few other code points XML 1.0 forbids: lone
surrogates, U+FFFE and U+FFFF) and then :func:`escape` (``& < > " '``). Tab, newline and
carriage return are written as character references so a parser's line-end and attribute
normalisation cannot change them: whatever string goes in comes back out of the parser.

In: :func:`parse` uses an lxml parser that resolves no entities, loads no DTD and touches no
network, and refuses any document that carries a DOCTYPE at all. Intacct's responses never
have one, so a DOCTYPE can only mean a hostile or broken answer (XXE, entity bombs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

# C0 controls except \t \n \r, plus what XML 1.0's Char production excludes beyond them.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = {
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
    "\t": "&#9;", "\n": "&#10;", "\r": "&#13;",
}
_ESCAPE_RE = re.compile("[&<>\"'\t\n\r]")
_TAG = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class Markup(str):
    """Already-built XML. Only :func:`element` makes these; plain strings are always escaped."""


class UnsafeXml(ValueError):
    """The document is not well-formed, or carries a DOCTYPE / entity we refuse to process."""


def clean(value: str) -> str:
    """Strip what XML 1.0 cannot carry (see the module docstring)."""
    return _FORBIDDEN.sub("", value)


def escape(value: str) -> str:
    """Clean, then escape ``& < > " '`` (and write tab, newline, carriage return as references)."""
    return _ESCAPE_RE.sub(lambda m: _TEXT_ESCAPES[m.group(0)], clean(value))


def text_value(value: Any) -> str:
    """A Python value as Intacct text: Decimal without exponent, dates as MM/DD/YYYY, bools lowercase."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("money and quantities must be Decimal, never float")
    if isinstance(value, datetime):
        return value.strftime("%m/%d/%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%m/%d/%Y")
    return str(value)


def element(tag: str, content: Any = None, attrs: Mapping[str, Any] | None = None) -> Markup:
    """``<tag attrs>content</tag>``.

    ``content`` is a value (escaped), a :class:`Markup` or an iterable of them (inserted as
    is), or a mapping (each key a child element; a list value repeats the child). ``None``
    content gives an empty element. Tag names are ours, never data, and are checked.
    """
    if not _TAG.match(tag):
        raise ValueError(f"not an XML tag name: {tag!r}")
    attributes = "".join(
        f' {name}="{escape(text_value(value))}"' for name, value in (attrs or {}).items() if value is not None
    )
    inner = _content(content)
    return Markup(f"<{tag}{attributes}>{inner}</{tag}>" if inner else f"<{tag}{attributes}/>")


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, Markup):
        return content
    if isinstance(content, Mapping):
        parts = []
        for tag, value in content.items():
            values = value if isinstance(value, list) else [value]
            parts.extend(element(tag, item) for item in values if item is not None)
        return "".join(parts)
    if isinstance(content, Iterable) and not isinstance(content, str | bytes):
        return "".join(_content(item) for item in content)
    return escape(text_value(content))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,  # no entity expansion: no XXE, no billion laughs
        no_network=True,         # never fetch anything a document points at
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,         # keep libxml2's depth and size limits
        remove_comments=True,
        remove_pis=True,
    )


def parse(body: bytes | str) -> etree._Element:
    """Parse a response safely; raise :class:`UnsafeXml` for anything we will not read."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"not well-formed XML: {exc}") from None
    if root is None:
        raise UnsafeXml("empty document")
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXml("the document declares a DOCTYPE; refused (entity expansion / XXE risk)")
    # lxml walks the tree in C and yields the entity references alone (a Python loop over every
    # node cost more than the parse on a page of bills)
    for _entity in root.iter(etree.Entity):
        raise UnsafeXml("the document uses an entity reference; refused")
    return root


def child_text(node: etree._Element | None, tag: str, default: str = "") -> str:
    """Text of the first child ``tag`` of ``node`` (empty when absent)."""
    if node is None:
        return default
    found = node.find(tag)
    return (found.text or "") if found is not None else default


def to_python(node: etree._Element, list_tags: frozenset[str] = frozenset()) -> Any:
    """An element as plain data: leaf → text, parent → dict; repeated children → list.

    Children of a tag in ``list_tags`` (e.g. ``APBILLITEMS``) always form a list, however
    many there are, so one line and many lines look alike. Leaves are read in the loop rather
    than by recursion: a page of bills is tens of thousands of them.
    """
    if not len(node):
        return node.text or ""
    if node.tag in list_tags:
        return [to_python(child, list_tags) for child in node]
    data: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in node:
        value = to_python(child, list_tags) if len(child) else (child.text or "")
        tag = child.tag
        if tag not in data:
            data[tag] = value
        elif tag in repeated:
            data[tag].append(value)
        else:
            data[tag] = [data[tag], value]
            repeated.add(tag)
    return data
