"""``python -m jobserver``: the job server standalone (e.g. as a JupyterHub service): a Jupyter server
with only the ``aerofs`` extension. Under JupyterHub, identity comes from the hub's OAuth when
jupyterhub is importable (its single-user identity provider); otherwise from the server's own."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from jupyter_server.serverapp import ServerApp

    args = list(sys.argv[1:] if argv is None else argv)
    args = ["--ServerApp.jpserver_extensions={'jobserver': True}", "--no-browser", *args]
    try:
        import os

        import jupyterhub.singleuser  # noqa: F401

        if os.environ.get("JUPYTERHUB_API_TOKEN"):
            args.insert(
                0,
                "--ServerApp.identity_provider_class=jupyterhub.singleuser.extension.JupyterHubIdentityProvider",
            )
    except ImportError:
        pass
    ServerApp.launch_instance(argv=args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
