"""The Jupyter server of the UI tests, for JupyterLab (Galata) and Notebook 7 alike: no auth, loopback,
root allowed, the scratch folder of scripts/ui-test.sh as root, the AeroFS job server on its embedded
default (SQLite + local worker pool) and the labextension as built in this checkout."""

import os
from pathlib import Path

import jupyterlab

c = get_config()  # noqa: F821

lab = os.environ.get("AEROFS_UI_APP", "lab") == "lab"
extensions = [os.environ["AEROFS_UI_LABEXTENSIONS"]]
if lab:
    from jupyterlab.galata import configure_jupyter_server

    configure_jupyter_server(c)
    # Galata's helper extension drives JupyterLab only: Notebook 7 pages would just log its failure to
    # activate (it needs JupyterLab's shell).
    extensions.insert(0, str(Path(jupyterlab.__file__).parent / "galata"))
else:
    c.ServerApp.open_browser = False
    c.IdentityProvider.token = ""
    c.ServerApp.password = ""
    c.ServerApp.disable_check_xsrf = True
    # window.jupyterapp, as Galata gets in JupyterLab: the tests wait on the kernel connection itself.
    c.JupyterNotebookApp.expose_app_in_browser = True

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ["AEROFS_UI_PORT"])
c.ServerApp.port_retries = 0
c.ServerApp.allow_root = True
c.ServerApp.root_dir = os.environ["AEROFS_UI_ROOT"]
c.LabServerApp.extra_labextensions_path = extensions
c.ServerApp.jpserver_extensions = {"jobserver": True}
