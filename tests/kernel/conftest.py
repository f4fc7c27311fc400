"""Fixtures of the kernel tests: small real inputs, a big-enough CSV to cancel (S3 on loopback: tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aerofs_kernel.pipelines import _REGISTRY, get_pipeline


@pytest.fixture
def csv_tree(tmp_path: Path) -> Path:
    """in/one.csv, in/sub/two.csv, in/sub/bad.csv (an unterminated quote on line 3), in/notes.md."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "one.csv").write_text("id,name,score\n1,ada,3.5\n2,bob,4.0\n")
    (root / "sub" / "two.csv").write_text("id,name,score\n3,cy,1.25\n")
    (root / "sub" / "bad.csv").write_text('id,name,score\n4,dee,2.0\n5,"eve,1.0\n')
    (root / "notes.md").write_text("not a csv\n")
    return root


@pytest.fixture(scope="session")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~45 MB of CSV (1.5 M rows): big enough that a conversion of 20 links to it runs for seconds."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    with open(path, "w") as f:
        f.write("id,name,value,flag\n")
        chunk = []
        for i in range(1_500_000):
            chunk.append(f"{i},name{i % 1000},{i * 0.5},{i % 2 == 0}\n")
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return path


@pytest.fixture
def many_big(tmp_path: Path, big_csv: Path) -> Path:
    """A folder of 20 hard links to the big CSV (~900 MB to convert, no extra disk)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(20):
        os.link(big_csv, folder / f"part{i:02}.csv")
    return folder


def pipeline_available(name: str) -> bool:
    try:
        get_pipeline(name)
        return True
    except KeyError:
        return False


@pytest.fixture
def register_pipeline() -> Iterator[Any]:
    """Register a test-only Pipeline for the duration of a test."""
    added: list[str] = []

    def reg(spec: Any) -> Any:
        get_pipeline("csv-to-parquet")  # load the real ones first
        _REGISTRY[spec.name] = spec
        added.append(spec.name)
        return spec

    yield reg
    for name in added:
        _REGISTRY.pop(name, None)


def _frontend_msg(widget: Any, content: dict[str, Any]) -> None:
    """Deliver ``content`` to ``widget`` as a frontend's ``model.send(content)`` arrives: a comm message
    with method "custom", through ipywidgets' own message handler."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def frontend_msg() -> Any:
    return _frontend_msg
