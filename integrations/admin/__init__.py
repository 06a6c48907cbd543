"""The operator console: one module per concern, each registering its pages on the admin site.

Scoping and role checks live in ``base.TenantScopedAdmin``; the dashboard on the admin index is
built by ``dashboard.build`` and rendered by ``templatetags/console.py``.
"""

from django.contrib import admin

from integrations.admin import (  # noqa: F401  (importing registers the pages)
    alerts,
    audit,
    connections,
    dashboard,
    integrations,
    mappings,
    reconciliation,
    records,
    runs,
    tenants,
    webhooks,
)

admin.site.site_header = "ml-connector console"
admin.site.site_title = "ml-connector"
admin.site.index_title = "Dashboard"
admin.site.site_url = None  # no public site to "view": the console is the product
