"""How API requests authenticate with a token: django-rest-knox's, hashed and expiring.

Kept apart from the views: DRF imports the classes named in its settings while the views'
modules are still being imported.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth as knox_auth
from rest_framework.exceptions import AuthenticationFailed


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's token authentication, answering 401 (not 500) to a token that is not ASCII."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        try:
            token.decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class TokenScheme(KnoxTokenScheme):
    """The schema's security scheme for it (knox's own does not match subclasses)."""

    target_class = TokenAuthentication
