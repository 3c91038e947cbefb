"""The Grafana files against Grafana's own schema library, grafana-foundation-sdk.

Grafana cannot be installed or run here, so nothing else loads the dashboard or the provisioning
files: the SDK's models, generated from Grafana's schema (v10.1), are the closest check. A key they
drop on a round trip is a typo or a field Grafana ignores. tests/test_deploy.py checks what the
files say (metrics, PromQL, datasource uids, paths); these tests check their shape.
"""

from __future__ import annotations

import enum
import json
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard, RowPanel

GRAFANA = Path(__file__).resolve().parent.parent / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "crisismon.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "crisismon.yml"
PROMETHEUS = prometheus.variant_config().identifier

OUTSIDE_THE_SCHEMA = {  # keys Grafana itself writes that its v10.1 schema (so the SDK) does not name
    "annotations.list[*].builtIn",  # marks Grafana's own "Annotations & Alerts" query (its TS type has it)
    "templating.list[*].definition",  # the query text the variable editor shows
}
# The keys of Grafana's provisioning structs, apiVersion 1 (pkg/services/provisioning/*/types.go).
DATASOURCE_KEYS = {
    "orgId", "orgName", "version", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData", "secureJsonData",
    "editable", "uid",
}  # fmt: skip
PROVIDER_KEYS = {
    "name", "type", "orgId", "folder", "folderUid", "editable", "options", "disableDeletion",
    "updateIntervalSeconds", "allowUiUpdates",
}  # fmt: skip

register_default_plugins()  # decodes each panel's options and fieldConfig.custom by its type


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def lost_keys(written: Any, encoded: Any, path: str = "") -> Iterator[str]:
    """The paths of the keys in `written` that `encoded` (the SDK's re-encoding) dropped."""
    if isinstance(written, dict) and isinstance(encoded, dict):
        for key, value in written.items():
            yield from (
                lost_keys(value, encoded[key], f"{path}.{key}") if key in encoded else [f"{path}.{key}"]
            )
    elif isinstance(written, list) and isinstance(encoded, list) and len(written) == len(encoded):
        for i, (item, kept) in enumerate(zip(written, encoded, strict=True)):
            yield from lost_keys(item, kept, f"{path}[{i}]")
    elif isinstance(written, dict | list):
        yield path


def schema_misses(document: dict[str, Any]) -> list[str]:
    encoded = json.loads(json.dumps(Dashboard.from_json(document), cls=JSONEncoder))
    lost = (path.lstrip(".") for path in lost_keys(document, encoded))
    return [path for path in lost if re.sub(r"\[\d+\]", "[*]", path) not in OUTSIDE_THE_SCHEMA]


def bad_enum_values(model: object, path: str = "") -> Iterator[str]:
    """Values outside their enum in the schema (the SDK decodes them as written, unchecked)."""
    if isinstance(model, list | dict):
        for key, value in model.items() if isinstance(model, dict) else enumerate(model):
            yield from bad_enum_values(value, f"{path}[{key!r}]")
    elif type(model).__module__.startswith("grafana_foundation_sdk."):
        hints = typing.get_type_hints(type(model))
        for name, value in vars(model).items():
            hint = hints.get(name)
            enums = [
                t for t in (hint, *typing.get_args(hint)) if isinstance(t, type) and issubclass(t, enum.Enum)
            ]
            if enums and value is not None and not any(value in {m.value for m in t} for t in enums):
                yield f"{path}.{name}={value!r}".lstrip(".")
            yield from bad_enum_values(value, f"{path}.{name}")


def test_the_dashboard_keeps_every_key_through_grafanas_schema() -> None:
    assert schema_misses(load(DASHBOARD)) == []
    assert list(bad_enum_values(Dashboard.from_json(load(DASHBOARD)))) == []
    # A misspelled key in a panel's options is noticed, so the check above means something.
    typo = {"panels": [{"type": "timeseries", "options": {"legend": {"showLegnd": True}}}]}
    assert schema_misses(typo) == ["panels[0].options.legend.showLegnd"]
    assert list(bad_enum_values(Dashboard.from_json({"graphTooltip": 7}))) == ["graph_tooltip=7"]


def test_every_panel_is_a_type_grafana_knows_and_queries_prometheus() -> None:
    dashboard = Dashboard.from_json(load(DASHBOARD))
    rows_and_panels = [p for row in dashboard.panels or [] for p in [row, *getattr(row, "panels", [])]]
    panels = [panel for panel in rows_and_panels if not isinstance(panel, RowPanel)]  # "row" decodes to these
    assert panels
    for panel in panels:
        assert runtime.panelcfg_config(panel.type_val), f"{panel.title}: no panel type {panel.type_val!r}"
        assert panel.datasource and panel.datasource.type_val == PROMETHEUS, panel.title
        for target in panel.targets or []:
            assert isinstance(target, prometheus.Dataquery), panel.title
            assert target.datasource == panel.datasource.to_json(), panel.title  # that one, Prometheus
    for variable in (dashboard.templating and dashboard.templating.list_val) or []:
        assert variable.datasource and variable.datasource.type_val == PROMETHEUS, variable.name


def test_provisioning_files_follow_grafanas_format() -> None:
    datasources, providers = load(DATASOURCES), load(DASHBOARD_PROVIDERS)
    assert datasources["apiVersion"] == providers["apiVersion"] == 1
    assert set(datasources) <= {"apiVersion", "datasources", "deleteDatasources"}
    assert set(providers) == {"apiVersion", "providers"}
    for source in datasources["datasources"]:
        assert set(source) <= DATASOURCE_KEYS and {"name", "type"} <= set(source), source
        assert source.get("access", "proxy") in {"proxy", "direct"}
        assert source["type"] in runtime.Runtime().dataquery_variants  # a datasource the SDK knows
    for provider in providers["providers"]:
        assert set(provider) <= PROVIDER_KEYS and provider.get("type", "file") == "file", provider
        options = provider["options"]
        assert "path" in options and set(options) <= {"path", "foldersFromFilesStructure"}, options
