"""Suite-wide pytest configuration.

pytest only honours ``pytest_plugins`` in a conftest it loads at start-up, so the Jupyter server fixtures
(``jp_fetch``, ``jp_ws_fetch``, …) used by tests/jobserver and tests/kernel are registered here, once. The S3
fixtures (a moto server on loopback, started by scripts/services.sh) serve tests/kernel and tests/logs.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


# -- S3 (moto server on loopback) ----------------------------------------------------------------


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    endpoint = os.environ.get("AEROFS_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail('AEROFS_TEST_S3_ENDPOINT is not set: eval "$(scripts/services.sh env)"')
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[tuple[Any, str]]:
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    bucket = f"aerofs-test-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    yield fs, bucket
    with contextlib.suppress(Exception):
        fs.rm(bucket, recursive=True)
