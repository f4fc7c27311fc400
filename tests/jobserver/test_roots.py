"""Per-user allowed roots (team mode): every source and destination of a submitted job must lie under
one of the configured roots, ``{username}`` expanded — local paths and S3 prefixes alike."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import jp_sync, post_job, user

from jobserver.auth import path_allowed

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for name in ("alice", "bob", "alice2"):
        (tmp_path / "data" / name).mkdir(parents=True)
    # a link inside alice's root to bob's: not alice's to use
    os.symlink(tmp_path / "data" / "bob", tmp_path / "data" / "alice" / "to-bob")
    return tmp_path / "data"


@pytest.fixture
def aerofs_config(data: Path) -> dict[str, Any]:
    return {"allowed_roots": [str(data / "{username}"), "s3://team-bucket/{username}/"]}


@jp_sync
async def test_sources_and_destinations_must_be_under_the_users_roots(jp_fetch, data):
    a, b = data / "alice", data / "bob"
    ok = [
        ([f"{a}/in.csv", f"{a}/sub/*.csv"], f"{a}/out"),
        ([f"{a}/x/../in.csv"], str(a)),  # normalised, still inside
        (["s3://team-bucket/alice/in/", "s3://team-bucket/alice"], "s3://team-bucket/alice/out/"),
    ]
    for src, dst in ok:
        doc = await post_job(jp_fetch, {"src": src, "dst": dst, "seconds": 0})
        assert doc["job"]["owner"] == "alice"

    refused = [
        ([f"{b}/in.csv"], f"{a}/out", {"$.src[0]"}),  # another user's folder
        ([f"{a}/in.csv"], f"{b}/out", {"$.dst"}),  # writing into it
        ([f"{a}/../bob/in.csv"], f"{a}/o", {"$.src[0]"}),  # climbing out
        ([f"{a}/to-bob/in.csv"], f"{a}/o", {"$.src[0]"}),  # a symlink out
        ([f"{data}/alice2/in.csv"], f"{a}/o", {"$.src[0]"}),  # a sibling sharing the prefix
        (["relative/in.csv"], f"{a}/o", {"$.src[0]"}),
        (["/etc/passwd", f"{a}/in.csv"], f"{a}/o", {"$.src[0]"}),
        (["s3://team-bucket/bob/in/"], "s3://team-bucket/alice/o/", {"$.src[0]"}),
        (["s3://team-bucket/alice/../bob/x"], f"{a}/o", {"$.src[0]"}),  # S3 keys take ".." literally
        (["s3://other-bucket/alice/x"], "s3://team-bucket/alice2/o", {"$.src[0]", "$.dst"}),
        ([f"file://{a}/in.csv"], f"{a}/o", {"$.src[0]"}),  # other schemes: not configured
    ]
    for src, dst, paths in refused:
        doc = await post_job(jp_fetch, {"src": src, "dst": dst, "seconds": 0}, expect=400)
        assert {e["path"] for e in doc["errors"]} == paths, (src, dst, doc)
        assert "outside your allowed roots" in doc["message"]

    # the same paths are bob's to use
    await post_job(jp_fetch, {"src": [f"{b}/in.csv"], "dst": "s3://team-bucket/bob/o/", "seconds": 0}, "bob")
    # nothing refused was recorded
    r = await jp_fetch("aerofs", "api", "jobs", headers=user("root"))
    assert json.loads(r.body)["total"] == len(ok) + 1


def test_usernames_that_are_paths_do_not_widen_a_root(tmp_path):
    roots = [str(tmp_path / "{username}")]
    assert path_allowed(str(tmp_path / "x"), roots, "x")
    assert not path_allowed(str(tmp_path / "x"), roots, "..")
    assert not path_allowed("/etc/passwd", roots, "../../../..")
    assert not path_allowed(str(tmp_path / "a" / "b"), roots, "a/b")
    assert path_allowed("/anything", [], "nobody")  # no roots configured: the embedded default


@jp_sync
async def test_storage_options_are_refused_where_roots_are_enforced(jp_fetch, data):
    """An endpoint, profile or cache path of the caller's choosing would lead around the roots (the
    same prefix on another server): refused, with the path of the offending field."""
    a = data / "alice"
    for opts in (
        {"endpoint_url": "http://127.0.0.1:9/"},
        {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9/"}},
        {"profile": "admin"},
        {"cache_storage": str(data / "bob")},
        {},
    ):
        params = {"src": ["s3://team-bucket/alice/in/"], "dst": f"{a}/o", "storage_options": opts}
        doc = await post_job(jp_fetch, params, expect=400)
        assert [x["path"] for x in doc["errors"]] == ["$.storage_options"], doc
        assert "9/" not in doc["message"] and "admin" not in doc["message"]
    r = await jp_fetch("aerofs", "api", "jobs", headers=user("alice"))
    assert json.loads(r.body)["jobs"] == []  # nothing was recorded
