"""Who is asking, whether they are an admin, and which paths they may touch."""

from __future__ import annotations

import posixpath
from typing import Any

ADMIN_GROUP = "aerofs-admins"
ADMIN_SCOPE = "custom:aerofs:admin"


def username(user: Any) -> str | None:
    if user is None:
        return None
    if isinstance(user, str):
        return user
    if isinstance(user, dict):
        return user.get("name") or user.get("username")
    return getattr(user, "username", None) or getattr(user, "name", None)


def is_admin(user: Any, admin_users: set[str], admin_group: str = ADMIN_GROUP) -> bool:
    name = username(user)
    if name and name in admin_users:
        return True
    model = user if isinstance(user, dict) else getattr(user, "hub_user", None)
    if isinstance(model, dict):
        if admin_group in (model.get("groups") or []):
            return True
        if ADMIN_SCOPE in (model.get("scopes") or []):
            return True
    return False


def _norm(p: str) -> str:
    if "://" in p:
        scheme, rest = p.split("://", 1)
        return f"{scheme}://{posixpath.normpath('/' + rest)[1:]}"
    return posixpath.normpath(p)


def path_allowed(path: str, roots: list[str], user: str) -> bool:
    """True when ``path`` (local or ``s3://``) lies under one of ``roots`` (``{username}`` expanded).
    No roots configured: everything is allowed (embedded mode)."""
    if not roots:
        return True
    target = _norm(str(path))
    for root in roots:
        r = _norm(root.replace("{username}", user)).rstrip("/")
        if target == r or target.startswith(r + "/"):
            return True
    return False


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
