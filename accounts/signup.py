"""Sign-up: a new organisation (tenant) and its first admin, signed in at once, email confirmed by link.

Rate-limited per address: attempts per network address in a window (the cache), and organisations
created per address in a window (the audit trail, so every process and restart agrees). The new
admin belongs to the new tenant only; everything else in the portal stays out of sight.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, login, password_validation
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Membership, Role, Tenant
from integrations.engine.audit import audit
from integrations.models import AuditEvent
from portal.middleware import request_id
from portal.throttling import client_ip

SIGNED_UP = "tenant.signed_up"
VERIFIED = "account.email_verified"
VERIFY_SALT = "accounts.signup.verify-email"
VERIFY_MAX_AGE = 3 * 24 * 3600


class SignupForm(forms.Form):
    organisation = forms.CharField(max_length=200, label="Your organisation",
                                   help_text="The company whose systems you connect, e.g. Acme Manufacturing.")
    username = forms.CharField(max_length=150, label="Your user name",
                               help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(max_length=254, label="Your work email",
                             help_text="We send a link to confirm it before anything is written to your systems.")
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=" ".join(password_validation.password_validators_help_texts()))
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_username(self) -> str:
        user_model = get_user_model()
        username = user_model.normalize_username(self.cleaned_data["username"])
        user_model.username_validator(username)
        if user_model.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("This user name is taken; choose another.")
        return username

    def clean_email(self) -> str:
        email = get_user_model().objects.normalize_email(self.cleaned_data["email"]).lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            # the same answer whoever owns it: the address is not confirmed as someone's here
            raise forms.ValidationError("An account already uses this email address: sign in instead.")
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            probe = get_user_model()(username=data.get("username") or "", email=data.get("email") or "")
            try:
                password_validation.validate_password(first, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


def _window_start():
    return timezone.now() - timedelta(minutes=settings.SIGNUP_RATE_WINDOW_MINUTES)


def rate_limited(request: HttpRequest) -> bool:
    """Too many attempts, or too many organisations created, from this address in the window."""
    address = client_ip(request) or "unknown"
    key = f"signup-attempts:{address}"
    attempts = cache.get_or_set(key, 0, timeout=settings.SIGNUP_RATE_WINDOW_MINUTES * 60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # expired in between
        cache.set(key, 1, timeout=settings.SIGNUP_RATE_WINDOW_MINUTES * 60)
        attempts = 1
    if attempts > settings.SIGNUP_ATTEMPTS_PER_ADDRESS:
        return True
    created = AuditEvent.objects.filter(action=SIGNED_UP, created_at__gte=_window_start(),
                                        detail__address=address).count()
    return created >= settings.SIGNUP_TENANTS_PER_ADDRESS


def unique_slug(name: str) -> str:
    base = (slugify(name) or "org")[:56]
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), **extra}


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("setup:start")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if rate_limited(request):
            return TemplateResponse(request, "setup/signup.html", _context(
                request, form=form, title="Too many sign-ups", limited=True), status=429)
        if form.is_valid():
            user = create_account(form.cleaned_data, client_ip(request) or "unknown", request_id(request))
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            send_verification(request, user)
            messages.success(request, f"Welcome! We sent a link to {user.email}: open it to confirm your address.")
            return redirect("setup:start")
    return TemplateResponse(request, "setup/signup.html", _context(request, form=form, title="Try it free"))


def create_account(data: dict[str, Any], address: str, req_id: str = "") -> Any:
    """The tenant, its first admin (staff, to reach the console) and the membership, in one transaction."""
    with transaction.atomic():
        tenant = Tenant.objects.create(slug=unique_slug(data["organisation"]), name=data["organisation"])
        user = get_user_model().objects.create_user(data["username"], data["email"], data["password1"],
                                                    is_staff=True)
        Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
        audit(tenant.pk, SIGNED_UP, f"{tenant.name} signed up; {user.username} is its admin", actor=user,
              request_id=req_id, detail={"address": address, "tenant": tenant.slug})
    return user


def verification_link(request: HttpRequest, user: Any) -> str:
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT)
    return request.build_absolute_uri(reverse("signup-verify", args=[token]))


def send_verification(request: HttpRequest, user: Any) -> None:
    send_mail(
        "Confirm your email address for ml-connector",
        f"Hello {user.username},\n\nOpen this link to confirm your address (valid for 3 days):\n\n"
        f"{verification_link(request, user)}\n\nIf you did not sign up, ignore this message.\n",
        settings.DEFAULT_FROM_EMAIL, [user.email])


def email_verified(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.email:
        return False
    return AuditEvent.objects.filter(action=VERIFIED, actor=user, detail__email=user.email).exists()


def needs_verification(user: Any) -> bool:
    """A user who signed up here and has not confirmed their address yet (accounts made by an
    operator, in the console or a tenant document, were vouched for by that operator)."""
    signed_up = AuditEvent.objects.filter(action=SIGNED_UP, actor=user).exists()
    return signed_up and not email_verified(user)


@require_http_methods(["GET"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
        user = get_user_model().objects.get(pk=data["u"])
    except (signing.BadSignature, get_user_model().DoesNotExist, KeyError, TypeError):
        return TemplateResponse(request, "setup/verified.html", _context(request, ok=False, title="Link not valid"),
                                status=400)
    ok = user.email == data.get("e")
    if ok and not email_verified(user):
        for tenant_id in Membership.objects.filter(user=user).values_list("tenant_id", flat=True):
            audit(tenant_id, VERIFIED, f"{user.username} confirmed {user.email}", actor=user,
                  request_id=request_id(request), detail={"email": user.email})
    return TemplateResponse(request, "setup/verified.html",
                            _context(request, ok=ok, title="Email confirmed" if ok else "Link not valid"),
                            status=200 if ok else 400)


@require_POST
def resend(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("signup")
    if rate_limited(request):
        messages.error(request, "Too many requests from your address; try again later.")
    else:
        send_verification(request, request.user)
        messages.success(request, f"We sent the link again to {request.user.email}.")
    return redirect("setup:start")
