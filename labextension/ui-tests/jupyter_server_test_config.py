"""JupyterLab for the UI tests: Galata's test settings, the AeroFS job server
on its embedded default (SQLite + local worker pool), root allowed."""

import os
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821
configure_jupyter_server(c)

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("AEROFS_UI_PORT", "8891"))
c.ServerApp.allow_root = True
c.ServerApp.root_dir = os.environ["AEROFS_UI_ROOT"]
if os.environ.get("AEROFS_UI_NO_JOBSERVER") != "1":
    c.ServerApp.jpserver_extensions = {"jobserver": True}

# The labextension as built in this checkout (scripts/ui-test.sh links it here).
c.LabServerApp.extra_labextensions_path = [
    str(Path(__import__("jupyterlab.galata").galata.__file__).parent),
    os.environ["AEROFS_UI_LABEXTENSIONS"],
]
