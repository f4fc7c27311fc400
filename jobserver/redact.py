"""Strip credentials from anything that leaves the process (job records, logs, errors, metrics)."""

from __future__ import annotations

import re
from typing import Any

_URL_CRED = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s:]*:[^/@\s]*@")
_KV = re.compile(r"(?i)\b(password|passwd|secret|token|key|sslpassword)=([^\s&;]+)")
SECRET_KEYS = {
    "storage_options",
    "password",
    "secret",
    "token",
    "key",
    "aws_secret_access_key",
    "credentials",
}


def redact(text: str) -> str:
    """``postgresql://u:pw@h/db`` -> ``postgresql://***@h/db``; ``password=x`` -> ``password=***``."""
    text = _URL_CRED.sub(lambda m: f"{m.group('scheme')}***@", str(text))
    return _KV.sub(lambda m: f"{m.group(1)}=***", text)


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as stored and served: secret-looking keys dropped, strings scrubbed."""

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            return redact(v)
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k.lower() not in SECRET_KEYS}
        return v

    return clean(params)
