"""Invitations: a tenant's admin adds a person by email and role; the person sets a password by link.

The link is Django's password-reset token (``default_token_generator``): it lasts
``PASSWORD_RESET_TIMEOUT`` (3 days by default) and is spent once the password is set, since the
token hashes the password. A new person gets a user with no usable password until then; a
person who already has an account (same email) gets the membership and a note to sign in.

Rate-limited per inviter, as sign-up is per address, from the audit trail (every process and
restart agrees): at most ``INVITES_PER_HOUR`` invitations by one person in any hour. Past it,
nothing is created, sent or audited, and the admin is told when they may invite again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Membership, Role, Tenant
from accounts.roles import role_name
from accounts.scoping import has_role
from integrations.engine.audit import audit
from integrations.models import AuditEvent
from portal.middleware import request_id

INVITED = "member.invited"
JOINED = "member.joined"
INVITE_WINDOW = timedelta(hours=1)


class InviteError(Exception):
    """An invitation that cannot be made (said to the inviting admin as it is)."""


class TooManyInvitations(InviteError):
    """The inviter sent ``INVITES_PER_HOUR`` invitations in the last hour already."""


def check_invite_rate(by: Any) -> None:
    """Refuse a further invitation by ``by`` while their last hour holds ``INVITES_PER_HOUR`` of them."""
    since = timezone.now() - INVITE_WINDOW
    recent = AuditEvent.objects.filter(action=INVITED, actor_id=by.pk, created_at__gte=since)
    limit = settings.INVITES_PER_HOUR
    if recent.count() < limit:
        return
    oldest = recent.order_by("created_at").values_list("created_at", flat=True).first() or timezone.now()
    again = timezone.localtime(oldest + INVITE_WINDOW)
    raise TooManyInvitations(f"You sent {limit} invitations in the last hour, the most one person may. "
                             f"Invite again after {again:%H:%M} {again.tzname()}.")


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    new_user: bool  # True: the person sets a password by link; False: they sign in as before


def link_days() -> int:
    return max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)


def _free_username(email: str) -> str:
    """The email as user name (Django allows @ . + - _), numbered if another user holds it."""
    users = get_user_model()._default_manager
    base = email[:140]
    name, n = base, 1
    while users.filter(username__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def invite_member(tenant: Tenant, email: str, role: str, by: Any, request_id: str = "") -> Invitation:
    """Make ``email`` a member of ``tenant`` with ``role``; only an admin of that tenant may.

    Reuses the account that has this email, else creates one (staff, to reach the console; no
    usable password until the invitation's link sets one). Audited as ``member.invited``.
    """
    if not has_role(by, tenant.pk, Role.ADMIN):
        raise PermissionDenied(f"Only admins of {tenant.name} may invite members to it.")
    if role not in Role.values:
        raise InviteError(f"No such role: {role}.")
    check_invite_rate(by)
    users = get_user_model()._default_manager
    email = users.normalize_email(email).strip().lower()
    with transaction.atomic():
        matches = list(users.select_for_update().filter(email__iexact=email)[:2])
        if len(matches) > 1:
            raise InviteError("Several accounts use this address: add the member by user name instead.")
        user = matches[0] if matches else None
        if user is not None and Membership.objects.filter(user=user, tenant=tenant).exists():
            raise InviteError(f"{email} is already a member of {tenant.name}.")
        new_user = user is None or not user.has_usable_password()
        if user is None:
            user = users.create_user(_free_username(email), email, password=None, is_staff=True)
        elif not user.is_staff:
            # staff status only opens the console's door; every power in it comes from memberships
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        membership = Membership.objects.create(user=user, tenant=tenant, role=role)
        audit(tenant.pk, INVITED, f"{email} invited to {tenant.name} as {role}", actor=by, request_id=request_id,
              detail={"email": email, "user": user.get_username(), "role": role, "new_user": new_user})
    return Invitation(membership=membership, new_user=new_user)


def invite_link(request: HttpRequest, user: Any) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return request.build_absolute_uri(reverse("invite-accept", args=[uid, token]))


def send_invitation(request: HttpRequest, invitation: Invitation, by: Any) -> None:
    membership = invitation.membership
    user, tenant = membership.user, membership.tenant
    inviter = by.get_full_name() or by.get_username()
    if invitation.new_user:
        body = (f"Hello,\n\n{inviter} invited you to {tenant.name} on ml-connector as "
                f"{role_name(membership.role)}.\n\nOpen this link to set your password "
                f"(valid for {link_days()} days, once):\n\n{invite_link(request, user)}\n\n"
                f"Then sign in with the user name {user.get_username()}.\n\n"
                "If you did not expect this, ignore this message.\n")
    else:
        body = (f"Hello {user.get_username()},\n\n{inviter} added you to {tenant.name} on ml-connector as "
                f"{role_name(membership.role)}.\n\nSign in as before:\n\n"
                f"{request.build_absolute_uri(reverse('admin:index'))}\n")
    send_mail(f"You are invited to {tenant.name} on ml-connector", body, settings.DEFAULT_FROM_EMAIL, [user.email])


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email",
                             help_text="They get a link to set a password (or, with an account already, a note).")
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), label="Organisation", empty_label=None)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def __init__(self, *args: Any, tenants: QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants


class AcceptInviteView(PasswordResetConfirmView):
    """Django's set-password-by-token view in the console's look; signing in comes after."""

    template_name = "accounts/invite_accept.html"
    success_url = reverse_lazy("admin:login")
    reset_url_token = "set-password"  # the token leaves the address bar (and Referer) at once

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(admin.site.each_context(self.request))
        context["title"] = "Set your password" if context.get("validlink") else "Invitation link not valid"
        context["days"] = link_days()
        return context

    def form_valid(self, form: forms.Form) -> HttpResponse:
        response = super().form_valid(form)
        user = form.user
        for tenant_id in Membership.objects.filter(user=user).values_list("tenant_id", flat=True):
            audit(tenant_id, JOINED, f"{user.get_username()} set a password from an invitation", actor=user,
                  request_id=request_id(self.request), detail={"user": user.get_username()})
        messages.success(self.request, f"Password set. Sign in as {user.get_username()}.")
        return response
