"""REST API routes, mounted at /api/ (see portal/urls.py)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from integrations.api import views
from integrations.api.views.auth import ObtainTokenView, RevokeAllTokensView, RevokeTokenView
from integrations.api.views.fitcheck import FitCheckView

router = DefaultRouter()
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register("runs", views.RunViewSet, basename="run")
router.register("records", views.RecordViewSet, basename="record")
router.register("mappings", views.MappingViewSet, basename="mapping")
router.register("audit", views.AuditEventViewSet, basename="audit")
router.register("reconciliations", views.ReconciliationViewSet, basename="reconciliation")

app_name = "api"

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="token"),
    path("auth/token/revoke/", RevokeTokenView.as_view(), name="token-revoke"),
    path("auth/token/revoke-all/", RevokeAllTokensView.as_view(), name="token-revoke-all"),
    path("me/", views.MeView.as_view(), name="me"),
    path("fit-check/", FitCheckView.as_view(), name="fit-check"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's assets come from drf-spectacular-sidecar (static files), never from a CDN; its
    # start-up script is inline, so our template gives it the Content-Security-Policy nonce.
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
         name="docs"),
    *router.urls,
]
