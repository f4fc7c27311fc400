"""A short-lived cache of who a request is, in front of Jupyter's identity provider.

Under load the provider was most of the job server's CPU per request: jupyter_server's default
provider verifies the signed login cookie twice per request (once inside the token check, once on
its own: an HMAC and a JSON parse each), a hub provider does its own lookups. A client polling a
job's status sends the same credentials every time, so the answer is remembered for ``ttl`` seconds.

It stays exact for every provider that decides from the request's headers, query and peer address
(all of them do; none reads the body, which has not arrived when ``prepare`` runs):

- the key is every request header except those that cannot carry identity and differ per request
  (:data:`_NOT_IDENTITY`), the query arguments (JupyterLab's cache buster aside), the peer address
  and the provider's own token (so changing the server token drops every entry);
- a result is only remembered when it came without side effects on the response: no cookie set
  (a token request without the login cookie gets a new one each time, as before), and a user found;
- the attributes the provider put on the handler (``_token_authenticated``, a hub user) are
  replayed on a hit, so XSRF and origin checks see what they saw;
- ``ttl`` bounds how long a revoked token or a logged-out cookie still works here: JupyterHub's own
  token cache keeps a hub answer for 5 minutes, this adds at most ``ttl`` (10 s by default: at 2 s
  every polling client's entry expired every 2 s and one poll in 20 took the full handler at twice the
  cost; docs/operations.md, "The identity cache's TTL").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

# Headers that never identify the caller and often change between a client's requests.
_NOT_IDENTITY = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-length",
        "content-type",
        "idempotency-key",
        "if-none-match",
        "keep-alive",
        "pragma",
        "x-correlation-id",
    }
)


def _canonical(name: str) -> str:
    """A header name as tornado's ``HTTPHeaders`` stores it (``accept-encoding`` -> ``Accept-Encoding``)."""
    return "-".join(w.capitalize() for w in name.split("-"))


# The same names as tornado spells them: the key is built from ``headers.get_all()`` as it comes, with
# no per-header lowercasing or sorting (that was a third of the cache's cost per request). A client
# that sends its headers in another order only misses the cache.
_NOT_IDENTITY_CANONICAL = frozenset(_canonical(n) for n in _NOT_IDENTITY)


def _query_key(args: dict[str, list[bytes]]) -> tuple:
    # JupyterLab appends `?<milliseconds>` to every GET: a cache buster, never a credential.
    return tuple(
        sorted((k, tuple(v)) for k, v in args.items() if not (k.isdigit() and all(x == b"" for x in v)))
    )


class IdentityCache:
    def __init__(self, ttl: float = 10.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[tuple, tuple[float, Any, dict[str, Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def key(self, handler: Any, provider: Any) -> tuple:
        req = handler.request
        headers = tuple(kv for kv in req.headers.get_all() if kv[0] not in _NOT_IDENTITY_CANONICAL)
        return (
            id(provider),
            getattr(provider, "token", None),
            req.remote_ip,
            headers,
            _query_key(req.query_arguments),
        )

    def get(self, key: tuple, count_miss: bool = True) -> tuple[Any, dict[str, Any]] | None:
        """The remembered ``(user, attrs)``, or None. ``count_miss=False``: a look that the handler's
        own look will follow on a miss (the status poll's fast path), so a miss is counted once."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += count_miss
            return None
        expires, user, attrs = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            self.misses += count_miss
            return None
        self.hits += 1
        return user, attrs

    def put(self, key: tuple, user: Any, attrs: dict[str, Any]) -> None:
        self._entries[key] = (time.monotonic() + self.ttl, user, attrs)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class CachingProvider:
    """Stands in for the server's identity provider in one handler: ``get_user`` goes through the
    cache, everything else is the real provider's."""

    def __init__(self, real: Any, cache: IdentityCache) -> None:
        self._real = real
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def get_user(self, handler: Any) -> Any:
        cache = self._cache
        key = cache.key(handler, self._real)
        hit = cache.get(key)
        if hit is not None:
            user, attrs = hit
            for k, v in attrs.items():
                setattr(handler, k, v)
            return user
        before = set(vars(handler))
        cookies_before = len(getattr(handler, "_new_cookie", None) or ())
        user = self._real.get_user(handler)
        if hasattr(user, "__await__"):
            user = await user
        cookies_after = len(getattr(handler, "_new_cookie", None) or ())
        if user and cookies_after == cookies_before:
            attrs = {k: getattr(handler, k) for k in set(vars(handler)) - before if k != "_new_cookie"}
            cache.put(key, user, attrs)
        return user
