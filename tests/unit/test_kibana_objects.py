"""The Kibana saved objects (services/logging/kibana/emporium.ndjson) are well formed, refer only
to objects in the file, and use only fields the logging service's index templates define."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.logging.adapters.opensearch import index_template

NDJSON = Path(__file__).resolve().parents[2] / "services/logging/kibana/emporium.ndjson"
KINDS = {"index-pattern", "search", "visualization", "dashboard"}
# Which data stream each data view reads.
SIGNAL_OF_TITLE = {"logs-*.otel-*": "logs", "traces-*.otel-*": "traces"}


def objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]


def _fields(properties: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        out.add(path)
        out |= _fields(spec.get("properties", {}), f"{path}.")
    return out


def field_exists(signal: str, field: str) -> bool:
    """Declared in the template's properties, or matched by one of its dynamic templates."""
    mappings = index_template(signal, "default", {}, {})["template"]["mappings"]
    if field in _fields(mappings["properties"]):
        return True
    patterns = [next(iter(t.values()))["path_match"] for t in mappings["dynamic_templates"]]
    return any(fnmatch.fnmatchcase(field, p) for p in patterns)


def _by_id() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["type"], o["id"]): o for o in objects()}


def _data_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The data view an object reads (directly or through its saved search)."""
    index = _by_id()
    for ref in obj["references"]:
        target = index[(ref["type"], ref["id"])]
        if ref["type"] == "index-pattern":
            return target
        if ref["type"] == "search":
            return _data_view(target)
    raise AssertionError(f"{obj['id']} reads no data view")


def _kql_fields(query: str) -> list[str]:
    return re.findall(r"([A-Za-z_@][\w.@]*)\s*(?::|>=|<=|>|<)", query)


def test_every_line_is_a_saved_object_of_a_known_kind_with_a_unique_id():
    objs = objects()
    assert {o["type"] for o in objs} == KINDS
    assert len({(o["type"], o["id"]) for o in objs}) == len(objs)
    for obj in objs:
        assert obj["attributes"]["title"]
        assert isinstance(obj["references"], list)


def test_every_reference_points_to_an_object_in_the_file():
    index = _by_id()
    for obj in objects():
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in index, f"{obj['id']} -> {ref}"
        attributes = obj["attributes"]
        named = {r["name"] for r in obj["references"]}
        source = json.loads(
            attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}")
        )
        if "indexRefName" in source:
            assert source["indexRefName"] in named
        if "savedSearchRefName" in attributes:
            assert attributes["savedSearchRefName"] in named
        for panel in json.loads(attributes.get("panelsJSON", "[]")):
            assert panel["panelRefName"] in named


def test_the_data_views_cover_the_logs_and_traces_streams_by_their_time_field():
    views = [o for o in objects() if o["type"] == "index-pattern"]
    assert sorted(v["attributes"]["title"] for v in views) == sorted(SIGNAL_OF_TITLE)
    for view in views:
        signal = SIGNAL_OF_TITLE[view["attributes"]["title"]]
        assert field_exists(signal, view["attributes"]["timeFieldName"])


def test_the_dashboard_shows_errors_and_latency_by_service():
    [dashboard] = [o for o in objects() if o["type"] == "dashboard"]
    targets = {r["id"] for r in dashboard["references"]}
    assert targets == {
        "emporium-errors-by-service",
        "emporium-latency-by-service",
        "emporium-errors",
    }


@pytest.mark.parametrize(
    "obj", [o for o in objects() if o["type"] != "index-pattern"], ids=lambda o: o["id"]
)
def test_every_field_an_object_uses_exists_in_the_index_templates(obj):
    signal = SIGNAL_OF_TITLE[_data_view(obj)["attributes"]["title"]]
    attributes = obj["attributes"]
    used: list[str] = list(attributes.get("columns", []))
    used += [field for field, _ in attributes.get("sort", [])]
    source = json.loads(attributes.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON", "{}"))
    used += _kql_fields(source.get("query", {}).get("query", ""))
    if "visState" in attributes:
        for agg in json.loads(attributes["visState"])["aggs"]:
            if "field" in agg["params"]:
                used.append(agg["params"]["field"])
    missing = [f for f in used if not field_exists(signal, f)]
    assert not missing, f"{obj['id']} uses fields the {signal} template lacks: {missing}"


def test_a_field_the_templates_lack_is_caught():
    assert not field_exists("logs", "service.name")
    assert not field_exists("traces", "body.text")
