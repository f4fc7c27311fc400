"""The real runner (aerofs_kernel.runner) behind the server: csv-to-parquet as a job, and no
credential of the store's URL anywhere the server serves."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import jp_sync, post_job, submit_job, user, wait_state

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def aerofs_config():
    return {"runner_module": ""}


@jp_sync
async def test_csv_to_parquet_job(jp_fetch, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"t{i}.csv").write_text("a,b\n" + "".join(f"{n},{n * i}\n" for n in range(10 + i)))
    jid = await submit_job(
        jp_fetch, {"src": str(src), "dst": str(tmp_path / "out")}, pipeline="csv-to-parquet"
    )
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "SUCCEEDED", job
    assert job["summary"]["files"] == 3 and job["summary"]["rows"] == 33
    rows = sum(pq.read_table(p).num_rows for p in job["outputs"] if str(p).endswith(".parquet"))
    assert rows == 33


@jp_sync
async def test_bad_params_report_paths(jp_fetch):
    body = await post_job(jp_fetch, {"src": 5}, pipeline="csv-to-parquet", expect=400)
    assert {"$", "$.src"} <= {e["path"] for e in body["errors"]}


@pytest.fixture
def pg_config(aerofs_config, pg_url):
    aerofs_config["database_url"] = pg_url
    return pg_url


@pytest.mark.integration
@jp_sync
async def test_no_credentials_anywhere(pg_config, jp_fetch, tmp_path, capfd):
    import uuid

    password = f"s3cr3t{uuid.uuid4().hex[:8]}"
    secret_url = f"redis://:{password}@127.0.0.1:1/0"
    params = {"src": secret_url, "dst": str(tmp_path / "o"), "storage_options": {"password": password}}
    jid = await submit_job(jp_fetch, params, "root", pipeline="csv-to-parquet")
    await wait_state(jp_fetch, jid, "root", {"SUCCEEDED", "FAILED"}, timeout=60)
    served = []
    for path in [("jobs", jid), ("jobs", jid, "logs"), ("jobs", jid, "outputs"), ("jobs",), ("stats",)]:
        served.append((await jp_fetch("aerofs", "api", *path, headers=user("root"))).body.decode())
    served.append((await jp_fetch("aerofs", "metrics", headers=user("root"))).body.decode())
    out, err = capfd.readouterr()
    for text in [*served, out, err]:
        assert password not in text
