"""URL configuration: the admin console, the REST API and the webhook receiver."""

from django.contrib import admin
from django.urls import include, path

from integrations.webhooks import webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("integrations.api.urls")),
    path("webhooks/<slug:system>/<slug:tenant>/<str:connection>/", webhook, name="webhook"),
]
