"""The guided setup, mounted at /setup/ (see portal/urls.py)."""

from django.urls import path

from integrations.setup import views

app_name = "setup"

urlpatterns = [
    path("", views.start, name="start"),
    path("new/<str:kind>/", views.edit, name="new"),
    path("<int:pk>/", views.hub, name="hub"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/ping/<str:side>/", views.ping, name="ping"),
    path("<int:pk>/fit/", views.fit, name="fit"),
    path("<int:pk>/fit.csv", views.fit_csv, name="fit-csv"),
    path("<int:pk>/approve/", views.approve_suggestions, name="approve"),
    path("<int:pk>/preview/", views.preview_view, name="preview"),
    path("<int:pk>/start/", views.start_sync, name="start-sync"),
]
