"""The widgets' ESM rendered in jsdom by node (tests/kernel/js/widgets.test.mjs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_widget_esm_in_jsdom() -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "labextension" / "node_modules" / "jsdom").exists():
        pytest.skip("node and labextension/node_modules/jsdom are needed (jlpm install in labextension/)")
    p = subprocess.run([node, str(ROOT / "tests" / "kernel" / "js" / "widgets.test.mjs")], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr + p.stdout
    assert "ok" in p.stdout
