"""The console header: who the user is where ("Acme Manufacturing · Approver") and the search box."""

from __future__ import annotations

from typing import Any

from django import template
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.roles import header_label

register = template.Library()

SEARCH_TEMPLATE = "console/header_search.html"


@register.simple_tag(takes_context=True)
def console_seat(context: template.Context) -> SafeString:
    """The user's tenant and role; several tenants are listed, or counted with a tooltip naming them."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return SafeString("")
    label, everything = header_label(user)
    if everything:
        return format_html('<span id="console-seat" title="{}">{}</span>', everything, label)
    return format_html('<span id="console-seat">{}</span>', label)


@register.simple_tag(takes_context=True)
def header_search(context: template.Context) -> SafeString | str:
    """The header's search box, once its template exists: a page renders without it until then."""
    try:
        search = get_template(SEARCH_TEMPLATE)
    except TemplateDoesNotExist:
        return ""
    flat: dict[str, Any] = context.flatten()
    return search.render(flat, context.get("request"))
