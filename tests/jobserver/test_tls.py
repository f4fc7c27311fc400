"""Redis over TLS on loopback: a CA and a server certificate made in the test (openssl), redis-server
with ``--tls-port`` and a password, a job through ``rediss://`` with the CA file, and the Redis
password nowhere a user or an operator can see it (job records, events, logs, metrics, errors)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RedisServer, Workers, jp_sync, submit_job, user, wait_state

from jobserver.queue import redis_connection
from jobserver.redact import redact

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]
PASSWORD = "Tls-S3cret-pw"


def make_certs(d: Path) -> dict[str, str]:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    d.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=aerofs test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return {"cert": str(d / "server.pem"), "key": str(d / "server.key"), "ca": str(d / "ca.pem")}


@pytest.fixture
def tls_redis(tmp_path: Path) -> Any:
    certs = make_certs(tmp_path / "certs")
    r = RedisServer(tmp_path / "redis", tls=certs, password=PASSWORD).start()
    yield r, certs["ca"]
    r.stop()


@pytest.fixture
def aerofs_config(pg_url: str, tls_redis: Any) -> dict[str, Any]:
    r, ca = tls_redis
    return {"database_url": pg_url, "redis_url": r.url, "redis_ca_file": ca, "local_pool": False}


def test_redis_urls_are_redacted() -> None:
    for url in (
        f"rediss://default:{PASSWORD}@cache:6380/0",
        f"redis://:{PASSWORD}@cache:6379",
        f"redis://aerofs:{PASSWORD}@cache/1?ssl_ca_certs=/ca.pem",
    ):
        out = redact(f"could not connect to {url}")
        assert PASSWORD not in out and "***@cache" in out


def test_tls_is_required_and_verified(tls_redis: Any) -> None:
    r, ca = tls_redis
    assert r.url.startswith("rediss://")
    assert redis_connection(r.url, ca).ping()
    for bad in (r.url.replace("rediss://", "redis://"), r.url):  # plain text; TLS without our CA
        with pytest.raises(Exception) as e:
            redis_connection(bad, ca_file=None if bad == r.url else ca, socket_timeout=3).ping()
        assert PASSWORD not in str(e.value)


@jp_sync
async def test_job_through_rediss_and_no_credential_leaks(
    jp_fetch, jp_serverapp, tls_redis, pg_url, tmp_path, capfd
):
    r, ca = tls_redis
    workers = Workers(pg_url, r.url, tmp_path / "w", AEROFS_REDIS_CA_FILE=ca).start(1)
    try:
        jid = await submit_job(jp_fetch, {"src": ["t1", "t2"], "dst": str(tmp_path / "o"), "seconds": 0.3})
        job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
        assert job["state"] == "SUCCEEDED", job
        js = jp_serverapp.web_app.settings["aerofs_jobserver"]
        assert js.team and js.queue.redis.connection_pool.connection_kwargs["ssl_ca_certs"] == ca
        seen = [json.dumps(job)]
        for path in (("jobs", jid, "logs"), ("jobs",), ("stats",)):
            resp = await jp_fetch("aerofs", "api", *path, headers=user("root"))
            seen.append(resp.body.decode())
        resp = await jp_fetch("aerofs", "metrics", headers=user("root"))
        seen.append(resp.body.decode())
        seen.append(json.dumps(js.store.events_since(0)))
        seen.append(workers.output())
        out, err = capfd.readouterr()
        seen += [out, err]
        for text in seen:
            assert PASSWORD not in text
        assert "aerofs_workers_idle" in seen[4]
    finally:
        workers.stop()
