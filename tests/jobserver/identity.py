"""Test identity provider: the user is the ``X-Test-User`` header (absent: anonymous). Requests that
also carry the server token count as token-authenticated (no XSRF cookie needed, as for API clients)."""

from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User


class HeaderIdentityProvider(IdentityProvider):
    def get_user(self, handler):  # type: ignore[no-untyped-def]
        name = handler.request.headers.get("X-Test-User") or handler.get_query_argument("user", None)
        if not name:
            return None
        if self.get_token(handler) == self.token:
            handler._token_authenticated = True
        return User(username=name)


class CountingHeaderIdentityProvider(HeaderIdentityProvider):
    """:class:`HeaderIdentityProvider` that counts how often the server asks it (class-wide)."""

    calls = 0

    def get_user(self, handler):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().get_user(handler)
