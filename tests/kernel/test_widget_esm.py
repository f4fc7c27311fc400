"""The widgets run in any anywidget host, not only JupyterLab and Notebook 7: VS Code's Jupyter extension
renders a widget from its synced state alone (anywidget's front end, from the kernel environment's
nbextensions folder or a CDN, evaluates the ``_esm`` source it finds there), with none of JupyterLab's
packages or page globals. VS Code itself cannot run here (docs/testing.md, "Where it runs"); these tests
check what it depends on, and that the browser stand-in for it (``scripts/ui-test.sh widget-host``) renders
with the same front end a local kernel gives VS Code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anywidget
import pytest

import aerofs_kernel.widgets  # noqa: F401  (defines the widget classes found below)

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tests" / "kernel" / "js" / "esm-portability.mjs"
ESM_FILES = sorted((ROOT / "aerofs_kernel" / "widgets").glob("*.js"))


def _widget_classes(cls: type = anywidget.AnyWidget) -> Iterator[type]:
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("aerofs_kernel"):
            yield sub
        yield from _widget_classes(sub)


WIDGETS = sorted(set(_widget_classes()), key=lambda c: c.__name__)
# Widgets whose constructor needs arguments.
FACTORIES: dict[str, Any] = {"JobForm": lambda cls: cls("word-count")}


def _check(files: list[Path]) -> dict[str, list[str]]:
    node = shutil.which("node")
    if node is None or not (ROOT / "labextension" / "node_modules" / "eslint").exists():
        pytest.skip("node and labextension/node_modules/eslint are needed (npm ci in labextension/)")
    p = subprocess.run([node, str(CHECKER), *map(str, files)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_every_esm_file_belongs_to_a_widget() -> None:
    # The checks below read the files; this ties them to what the widgets actually ship.
    shipped = {str(cls._esm) for cls in WIDGETS}
    assert WIDGETS, "no anywidget classes found in aerofs_kernel"
    assert shipped == {f.read_text() for f in ESM_FILES}


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_state_carries_the_esm_source_for_anywidgets_front_end(cls: type) -> None:
    widget = FACTORIES.get(cls.__name__, lambda c: c())(cls)
    state = widget.get_state()
    # The source itself travels with the state (hosts never see our files), under anywidget's own
    # front-end module, which every host loads by name and version.
    assert state["_esm"] == str(cls._esm)
    assert state["_esm"].lstrip().startswith("//")  # source text, not a path or URL
    assert (state["_model_module"], state["_view_module"]) == ("anywidget", "anywidget")
    assert (state["_model_name"], state["_view_name"]) == ("AnyModel", "AnyView")
    major_minor = ".".join(anywidget.__version__.split(".")[:2])
    assert state["_model_module_version"] == state["_view_module_version"] == f"~{major_minor}.*"
    widget.close()


def test_anywidgets_front_end_is_in_the_environment() -> None:
    # VS Code looks for a widget module's front end in the kernel environment's nbextensions folder
    # (then on a CDN, if the user allows one): for a local kernel that is where anywidget's comes from.
    index = Path(sys.prefix) / "share" / "jupyter" / "nbextensions" / "anywidget" / "index.js"
    assert index.is_file(), index


UI_TESTS = ROOT / "labextension" / "ui-tests"


def test_widget_host_pins_the_kernels_anywidget() -> None:
    # The widget host suite takes anywidget's front end from the npm package of the same version as the
    # kernel's anywidget (an older or newer one would test a front end no host of this kernel loads).
    lock = json.loads((UI_TESTS / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/anywidget"]["version"] == anywidget.__version__


def test_widget_host_front_end_is_the_one_vs_code_loads() -> None:
    # ...and that package's file is, byte for byte, the nbextension VS Code loads for a local kernel.
    npm = UI_TESTS / "node_modules" / "anywidget" / "dist" / "index.js"
    if not npm.is_file():
        pytest.skip("labextension/ui-tests/node_modules is not installed (scripts/ui-test.sh runs npm ci)")
    nbextension = Path(sys.prefix) / "share" / "jupyter" / "nbextensions" / "anywidget" / "index.js"
    assert npm.read_bytes() == nbextension.read_bytes()


def test_esm_uses_only_anywidget_and_the_browser() -> None:
    report = _check(ESM_FILES)
    assert set(report) == {str(f) for f in ESM_FILES}
    assert report == {str(f): [] for f in ESM_FILES}


def test_checker_flags_host_specific_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.js"
    bad.write_text(
        'import { ServiceManager } from "@jupyterlab/services";\n'
        'import d3 from "https://esm.sh/d3@7";\n'
        "const lab = window.jupyterapp;\n"
        "const shared = globalThis._JUPYTERLAB;\n"
        'const ns = require("base/js/namespace");\n'
        "async function render({ model, el }) {\n"
        '  model.widget_manager.get_model("x");\n'
        '  el.textContent = document.title + model.get("a");\n'
        '  await import("@jupyter-widgets/base");\n'
        "}\n"
        "export default { render };\n"
    )
    problems = "\n".join(_check([bad])[str(bad)])
    assert "bad.js:1:1: imports @jupyterlab/services" in problems
    assert "esm.sh" not in problems  # an https URL loads anywhere
    assert "bad.js:3:13: window.jupyterapp is not a browser global" in problems
    assert "globalThis._JUPYTERLAB is not a browser global" in problems
    assert "bad.js:5:12: 'require' is not defined" in problems
    assert "model.widget_manager is not part of anywidget's model API" in problems
    assert "imports @jupyter-widgets/base" in problems
    assert "document" not in problems and "model.get" not in problems

    named = tmp_path / "named.js"
    named.write_text("export function render({ model, el }) {}\n")
    assert _check([named])[str(named)] == ["named.js:1:1: no default export (anywidget loads `default`)"]


@pytest.mark.parametrize("esm", ESM_FILES, ids=lambda f: f.name)
def test_theme_variables_have_fallbacks(esm: Path) -> None:
    # JupyterLab's --jp-* theme variables are not defined by other hosts: each use needs a fallback.
    bare = re.findall(r"var\(\s*--jp-[\w-]+\s*\)", esm.read_text())
    assert bare == [], f"{esm.name}: {bare}"
