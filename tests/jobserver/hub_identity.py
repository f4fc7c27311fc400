"""A stand-in for JupyterHub's identity provider: a token maps to a hub user model (``name``,
``groups``, ``scopes``), and the user object carries it as ``hub_user`` exactly as
``jupyterhub.singleuser.extension.JupyterHubUser`` does. The models come from the environment
(``AEROFS_TEST_HUB_USERS``: JSON ``{token: model}``), so a server started as a subprocess can use it."""

from __future__ import annotations

import json
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User


class FakeHubUser(User):
    hub_user: dict

    def __init__(self, hub_user: dict[str, Any]) -> None:
        self.hub_user = hub_user
        super().__init__(username=hub_user["name"])


class FakeHubIdentityProvider(IdentityProvider):
    def get_user(self, handler):  # type: ignore[no-untyped-def]
        models = json.loads(os.environ.get("AEROFS_TEST_HUB_USERS", "{}"))
        model = models.get(self.get_token(handler) or "")
        if model is None:
            return None
        handler._token_authenticated = True  # an API token, as the hub's are: no XSRF cookie
        return FakeHubUser(model)
