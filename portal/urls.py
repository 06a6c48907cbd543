"""URL configuration: the admin console, the REST API and the webhook receiver."""

from django.contrib import admin
from django.urls import include, path

from accounts import invites, signup
from integrations.console import search
from integrations.webhooks import webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("integrations.api.urls")),
    path("signup/", signup.signup, name="signup"),
    path("signup/verify/<str:token>/", signup.verify, name="signup-verify"),
    path("signup/resend/", signup.resend, name="signup-resend"),
    path("invite/<uidb64>/<token>/", invites.AcceptInviteView.as_view(), name="invite-accept"),
    path("setup/", include("integrations.setup.urls")),
    path("search/", admin.site.admin_view(search.search_view), name="search"),
    path("webhooks/<slug:system>/<slug:tenant>/<str:connection>/", webhook, name="webhook"),
]
