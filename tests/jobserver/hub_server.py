"""A job server as JupyterHub runs it, for tests: its own ``jupyter_server`` process under a service
prefix, identity from tokens (:mod:`hub_identity`, users in ``AEROFS_TEST_HUB_USERS``), SQLite, a local
pool and the fake runner. Used by the thin-client and schemathesis tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def hub_job_server(
    work: Path,
    prefix: str,
    users: dict[str, dict[str, Any]],
    extra_args: list[str] = (),  # type: ignore[assignment]
) -> Iterator[str]:
    """Start the server in ``work`` and yield its base URL (``http://127.0.0.1:PORT{prefix}``) once it
    answers the first token of ``users``; stop its whole process group afterwards."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AEROFS_")},
        "AEROFS_TEST_HUB_USERS": json.dumps(users),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.base_url={prefix}", f"--ServerApp.root_dir={work}",
        "--ServerApp.jpserver_extensions={'jobserver': True}",
        "--ServerApp.identity_provider_class=hub_identity.FakeHubIdentityProvider",
        "--AerofsApp.runner_module=fake_runner", f"--AerofsApp.data_dir={work / 'data'}",
        "--AerofsApp.workers=1", *extra_args,
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    url = f"http://127.0.0.1:{port}{prefix}"
    token = next(iter(users))
    log_path = work / "server.log"
    with open(log_path, "wb") as log:
        # cwd: a job with a relative dst writes under the test's folder, never the checkout
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = httpx.get(url + "aerofs/api/pipelines", headers={"Authorization": f"token {token}"})
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log_path.read_text()[-3000:])
                time.sleep(0.2)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
            if os.environ.get("AEROFS_KEEP_LOG"):
                print(log_path.read_text()[-5000:])
