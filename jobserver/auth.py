"""Who is asking, whether they are an admin, and which paths they may touch."""

from __future__ import annotations

import functools
import getpass
import os
from typing import Any

ADMIN_GROUP = "aerofs-admins"
ADMIN_SCOPE = "custom:aerofs:admin"
# jupyter_server's own providers: one shared token or password, no per-user identity.
_SHARED_SECRET_PROVIDERS = (
    "jupyter_server.auth.identity.IdentityProvider",
    "jupyter_server.auth.identity.PasswordIdentityProvider",
)


def username(user: Any) -> str | None:
    if user is None:
        return None
    if isinstance(user, str):
        return user
    if isinstance(user, dict):
        return user.get("name") or user.get("username")
    return getattr(user, "username", None) or getattr(user, "name", None)


def hub_model(user: Any) -> dict[str, Any] | None:
    """The JupyterHub user model (``name``, ``groups``, ``scopes``...) behind ``user``, if any:
    jupyterhub's identity provider returns a ``JupyterHubUser`` whose ``hub_user`` is that model."""
    model = user if isinstance(user, dict) else getattr(user, "hub_user", None)
    return model if isinstance(model, dict) else None


def _names(value: Any) -> set[str]:
    """Group or scope names from a hub model field: a list of names, or of ``{"name": ...}`` objects."""
    if isinstance(value, str):
        return {value}
    out = set()
    for v in value or []:
        name = v.get("name") if isinstance(v, dict) else v
        if isinstance(name, str):
            out.add(name)
    return out


def is_admin(user: Any, admin_users: set[str], admin_group: str = ADMIN_GROUP) -> bool:
    """A configured admin user, a member of ``admin_group`` or a holder of the ``custom:aerofs:admin``
    scope (both from the hub's user model)."""
    name = username(user)
    if name and name in admin_users:
        return True
    model = hub_model(user)
    if model is not None:
        if admin_group and admin_group in _names(model.get("groups")):
            return True
        if ADMIN_SCOPE in _names(model.get("scopes")):
            return True
    return False


def shared_secret_server(handler: Any) -> bool:
    """True when the server authenticates with jupyter_server's own shared token or password: a
    personal server, where whoever holds the token is the server's owner."""
    provider = handler.settings.get("identity_provider")
    cls = type(provider)
    return f"{cls.__module__}.{cls.__qualname__}" in _SHARED_SECRET_PROVIDERS


@functools.cache
def local_owner() -> str:
    """The owner of a personal server: the hub user it was spawned for, else the OS user (looked up
    once: ``getpass.getuser`` asks the password database, 0.2 ms a request under load)."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def caller(handler: Any, admin_users: set[str], admin_group: str) -> tuple[str | None, bool]:
    """``(username, admin)`` of an authenticated request (``(None, False)`` when anonymous).

    On a personal server (shared token/password) jupyter_server makes up a random anonymous user per
    cookie-less request, so a kernel's jobs and the browser's would belong to different nobodies. There
    every authenticated caller is the server's owner, and the owner is admin of their own embedded job
    server (``GET stats`` works in a notebook). Everywhere else the identity provider decides."""
    user = handler.current_user
    if not user:
        return None, False
    if shared_secret_server(handler):
        return local_owner(), True
    return username(user), is_admin(user, admin_users, admin_group)


def _norm(p: str) -> str | None:
    """A comparable form of a path or URL; None when it cannot be judged safely.

    URLs (``s3://bucket/key``) are compared as written: an object store takes ``..`` literally, so a
    key with a ``..`` segment is refused rather than normalised into someone else's prefix. Local
    paths are normalised and symlinks resolved (a link inside your root to another's is not yours)."""
    if "://" in p:
        scheme, rest = p.split("://", 1)
        if any(seg in ("..", ".") for seg in rest.split("/")):
            return None
        return f"{scheme.lower()}://{rest.lstrip('/')}"
    if not p.startswith("/"):
        return None  # relative to what? the worker's folder is nobody's root
    return os.path.realpath(p)


def path_allowed(path: str, roots: list[str], user: str) -> bool:
    """True when ``path`` (local or a URL such as ``s3://``) lies under one of ``roots`` (``{username}``
    expanded). No roots configured: everything is allowed (the embedded default)."""
    if not roots:
        return True
    target = _norm(str(path))
    if target is None:
        return False
    # A name that is a path of its own ("..", "a/b") must not widen a templated root.
    safe_name = bool(user) and "/" not in user and "\\" not in user and user not in (".", "..")
    for root in roots:
        if "{username}" in root and not safe_name:
            continue
        r = _norm(root.replace("{username}", user))
        if r is None:
            continue
        r = r.rstrip("/")
        if target == r or target.startswith(r + "/"):
            return True
    return False


# ``storage_options`` never reach a worker (credentials are not stored: see redact_params), so in
# the embedded default they are accepted and dropped. Where allowed roots are enforced they are
# refused outright: the roots only mean something with the workers' own storage configuration, and an
# endpoint_url, profile, client_kwargs or local cache path of the caller's choosing would lead around
# them (the same s3://bucket/alice/ prefix on another server, another profile's buckets, files
# written outside the roots); silently dropping them would run the job against other storage than
# the caller asked for.
STORAGE_OPTIONS_REFUSED = (
    "storage_options are not accepted by this job server: workers reach storage with their own "
    "configuration (credentials, endpoint), which the allowed roots are checked against"
)


def check_roots(params: dict[str, Any], roots: list[str], user: str) -> list[dict[str, str]]:
    """Errors ``[{path, message}]`` for each src/dst outside the user's allowed roots."""
    errs = []
    for key in ("src", "dst"):
        val = params.get(key)
        vals = val if isinstance(val, list) else [val] if val else []
        for i, v in enumerate(vals):
            if isinstance(v, str) and not path_allowed(v, roots, user):
                where = f"$.{key}[{i}]" if isinstance(val, list) else f"$.{key}"
                errs.append({"path": where, "message": f"{v!r} is outside your allowed roots"})
    return errs
