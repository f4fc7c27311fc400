"""fake_runner whose merge step takes ``AEROFS_TEST_MERGE_SECONDS`` and leaves ``dst/merge-<pid>``
(the process that merged), so a test can kill a worker in the middle of a merge."""

from __future__ import annotations

import os
import time
from typing import Any

import fake_runner
from fake_runner import Progress, all_pipelines, get_pipeline, plan_job, run_task

__all__ = ["Progress", "all_pipelines", "get_pipeline", "merge_job", "plan_job", "run_task"]


def merge_job(pipeline: str, params: dict[str, Any], partials: list[dict], workdir: str) -> dict:
    with open(os.path.join(params["dst"], f"merge-{os.getpid()}"), "w") as f:
        f.write(str(time.time()))
    time.sleep(float(os.environ.get("AEROFS_TEST_MERGE_SECONDS", "0")))
    return fake_runner.merge_job(pipeline, params, partials, workdir)
