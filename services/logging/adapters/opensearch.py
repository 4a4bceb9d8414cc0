"""The document store and search over the Elasticsearch REST API (OpenSearch locally).

Plain HTTP (httpx) on the subset both servers serve: `_index_template` with data streams,
`_bulk` with `create`, `_search` with bool filters, `simple_query_string` and aggregations,
`_data_stream`, `_rollover`. Elastic's own client refuses OpenSearch, and OpenSearch's client
is not meant for Elasticsearch, so neither is used.

Retention (README.md): on Elasticsearch an ILM policy, on OpenSearch with the index-management
plugin an ISM policy, each rolling the backing index over daily and deleting it after the
retention period. A server with neither (the minimal OpenSearch the local stack runs) gets the
same policy from this adapter's `enforce_retention`, which the service runs every few minutes.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kit import errors
from services.logging import domain, mapping
from services.logging.domain import LogEntry, LoggedService, LogQuery, Span, TimeRange, TraceQuery
from services.logging.ports import BulkOutcome, StoreUnavailable

log = logging.getLogger("emporium.logging.store")

POLICY = "emporium-otel-retention"
SEARCH_OPTIONS = {"ignore_unavailable": "true", "allow_no_indices": "true"}
MAX_TRACE_SPANS = 10_000
# A search may take longer than a bulk write on a busy node; the caller's deadline still rules.
SEARCH_TIMEOUT_SECONDS = 30.0
ATTRIBUTE_OBJECTS = ("attributes", "resource.attributes", "scope.attributes")


def _attribute_templates() -> list[dict[str, Any]]:
    # Attribute values of every JSON type are indexed as keywords: the search API matches
    # them exactly as strings, and one key can never conflict between a number and a string.
    out = []
    for path in ATTRIBUTE_OBJECTS:
        for json_type in ("string", "long", "double", "boolean"):
            name = f"{path.replace('.', '_')}_{json_type}"
            out.append(
                {
                    name: {
                        "path_match": f"{path}.*",
                        "match_mapping_type": json_type,
                        "mapping": {"type": "keyword", "ignore_above": 1024},
                    }
                }
            )
    return out


COMMON_PROPERTIES: dict[str, Any] = {
    "@timestamp": {"type": "date_nanos"},
    "data_stream": {
        "properties": {
            "type": {"type": "keyword"},
            "dataset": {"type": "keyword"},
            "namespace": {"type": "keyword"},
        }
    },
    "resource": {
        "properties": {
            "attributes": {"type": "object"},
            "dropped_attributes_count": {"type": "long"},
        }
    },
    "scope": {
        "properties": {
            "name": {"type": "keyword"},
            "version": {"type": "keyword"},
            "attributes": {"type": "object"},
        }
    },
    "attributes": {"type": "object"},
}

SIGNAL_PROPERTIES: dict[str, dict[str, Any]] = {
    "logs": {
        "observed_timestamp": {"type": "date_nanos"},
        "severity_number": {"type": "byte"},
        "severity_text": {"type": "keyword"},
        "body": {
            "properties": {
                "text": {"type": "text"},
                "structured": {"type": "object", "enabled": False},
            }
        },
        "trace_id": {"type": "keyword"},
        "span_id": {"type": "keyword"},
        "event_name": {"type": "keyword"},
        "dropped_attributes_count": {"type": "long"},
    },
    "traces": {
        "trace_id": {"type": "keyword"},
        "span_id": {"type": "keyword"},
        "parent_span_id": {"type": "keyword"},
        "trace_state": {"type": "keyword"},
        "name": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "duration": {"type": "long"},
        "status": {"properties": {"code": {"type": "keyword"}, "message": {"type": "keyword"}}},
        "events": {"type": "object", "enabled": False},
        "links": {"type": "object", "enabled": False},
    },
    "metrics": {
        "start_timestamp": {"type": "date_nanos"},
        "unit": {"type": "keyword"},
        "metrics": {"type": "object"},
    },
}


def index_template(signal: str, namespace: str, settings: dict[str, Any], meta: dict) -> dict:
    """The composable index template of one signal's data stream."""
    dynamic_templates = _attribute_templates()
    if signal == "metrics":
        # A counter's first point may be an integer: map every metric value as a double.
        dynamic_templates.append(
            {
                "metrics_numbers": {
                    "path_match": "metrics.*",
                    "match_mapping_type": "long",
                    "mapping": {"type": "double"},
                }
            }
        )
    return {
        "index_patterns": [f"{signal}-*.otel-{namespace}"],
        "data_stream": {},
        # Above Elasticsearch's built-in logs-otel@template (150), so ours wins for our streams.
        "priority": 250,
        "template": {
            "settings": settings,
            "mappings": {
                "date_detection": False,
                "dynamic_templates": dynamic_templates,
                "properties": {**COMMON_PROPERTIES, **SIGNAL_PROPERTIES[signal]},
            },
        },
        "_meta": meta,
    }


def template_name(signal: str, namespace: str) -> str:
    return f"emporium-{signal}-otel-{namespace}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time_filter(time: TimeRange) -> list[dict[str, Any]]:
    bounds: dict[str, str] = {}
    if time.start is not None:
        bounds["gte"] = _iso(time.start)
    if time.end is not None:
        bounds["lt"] = _iso(time.end)
    return [{"range": {"@timestamp": bounds}}] if bounds else []


def _attribute_filters(pairs: Sequence[tuple[str, str]], scopes: Sequence[str]) -> list[dict]:
    return [
        {
            "bool": {
                "should": [{"term": {f"{scope}.{key}": value}} for scope in scopes],
                "minimum_should_match": 1,
            }
        }
        for key, value in pairs
    ]


def _buckets(found: dict[str, Any], name: str) -> list[dict[str, Any]]:
    # No aggregations at all when no index matched (nothing received yet).
    return ((found.get("aggregations") or {}).get(name) or {}).get("buckets") or []


class OpenSearchStore:
    """DocumentSink and TelemetrySearch over one Elasticsearch-API server."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        retention: timedelta,
        rollover: timedelta,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.namespace = namespace
        self.retention = retention
        self.rollover = rollover
        # trust_env=False: an http_proxy variable must not send loopback traffic elsewhere.
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout_seconds, trust_env=False)
        self._installed = False
        self.lifecycle = ""  # "ilm", "ism" or "service" once installed

    def stream(self, signal: str) -> str:
        return domain.data_stream(signal, self.namespace)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code in (429, 502, 503, 504):
            raise StoreUnavailable(f"{method} {path}: HTTP {response.status_code}")
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise StoreUnavailable(
                f"{method} {path}: HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json()

    # -- installation ---------------------------------------------------------------------

    async def install(self) -> None:
        """Templates, retention policy and data streams; idempotent. Raises StoreUnavailable."""
        about = await self._json("GET", "/")
        distribution = (about.get("version") or {}).get("distribution", "elasticsearch")
        settings: dict[str, Any] = {}
        if distribution != "opensearch":
            lifecycle = "ilm"
            await self._json("PUT", f"/_ilm/policy/{POLICY}", json=self._ilm_policy())
            settings["index.lifecycle.name"] = POLICY
        elif (await self._request("GET", "/_plugins/_ism/policies")).status_code < 400:
            lifecycle = "ism"
            await self._put_ism_policy()
        else:
            lifecycle = "service"
        meta = {
            "managed_by": "emporium-logging",
            "retention_days": self.retention / timedelta(days=1),
            "rollover_hours": self.rollover / timedelta(hours=1),
            "lifecycle": lifecycle,
            "lifecycle_policy": POLICY,
        }
        for signal in domain.SIGNALS:
            await self._json(
                "PUT",
                f"/_index_template/{template_name(signal, self.namespace)}",
                json=index_template(signal, self.namespace, settings, meta),
            )
            response = await self._request("PUT", f"/_data_stream/{self.stream(signal)}")
            if response.status_code >= 400 and "already_exists" not in response.text:
                raise StoreUnavailable(
                    f"cannot create {self.stream(signal)}: {response.text[:300]}"
                )
        self._installed = True
        self.lifecycle = lifecycle
        log.info("index templates and data streams installed (retention by %s)", self.lifecycle)

    def _ilm_policy(self) -> dict[str, Any]:
        hours = int(self.rollover / timedelta(hours=1))
        days = self.retention / timedelta(days=1)
        return {
            "policy": {
                "phases": {
                    "hot": {"actions": {"rollover": {"max_age": f"{hours}h"}}},
                    "delete": {"min_age": f"{days:g}d", "actions": {"delete": {}}},
                },
                "_meta": {"managed_by": "emporium-logging"},
            }
        }

    async def _put_ism_policy(self) -> None:
        hours = int(self.rollover / timedelta(hours=1))
        days = self.retention / timedelta(days=1)
        body = {
            "policy": {
                "description": "Emporium telemetry: roll over daily, delete after retention",
                "default_state": "hot",
                "states": [
                    {
                        "name": "hot",
                        "actions": [{"rollover": {"min_index_age": f"{hours}h"}}],
                        "transitions": [
                            {"state_name": "delete", "conditions": {"min_index_age": f"{days:g}d"}}
                        ],
                    },
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
                ],
                "ism_template": [
                    {
                        "index_patterns": [
                            f".ds-{s}-*.otel-{self.namespace}-*" for s in domain.SIGNALS
                        ],
                        "priority": 100,
                    }
                ],
            }
        }
        existing = await self._request("GET", f"/_plugins/_ism/policies/{POLICY}")
        if existing.status_code == 200:
            found = existing.json()
            params = {"if_seq_no": found["_seq_no"], "if_primary_term": found["_primary_term"]}
            await self._json("PUT", f"/_plugins/_ism/policies/{POLICY}", params=params, json=body)
        else:
            await self._json("PUT", f"/_plugins/_ism/policies/{POLICY}", json=body)

    async def enforce_retention(self, now: datetime | None = None) -> list[str]:
        """Rolls over write indices older than `rollover` and deletes backing indices that
        stopped receiving writes more than `retention` ago; returns the deleted indices.

        Only for a server without ILM or ISM (`lifecycle == "service"`).
        """
        now = now or datetime.now(UTC)
        deleted: list[str] = []
        for signal in domain.SIGNALS:
            stream = self.stream(signal)
            found = await self._json("GET", f"/_data_stream/{stream}")
            indices = [i["index_name"] for i in found["data_streams"][0]["indices"]]
            created = {}
            for index in indices:
                doc = await self._json("GET", f"/{index}/_settings/index.creation_date")
                created[index] = datetime.fromtimestamp(
                    int(doc[index]["settings"]["index"]["creation_date"]) / 1000, UTC
                )
            if now - created[indices[-1]] >= self.rollover:
                await self._json("POST", f"/{stream}/_rollover")
            # An index stopped receiving writes when the next one was created.
            for older, newer in itertools.pairwise(indices):
                if now - created[newer] >= self.retention:
                    await self._json("DELETE", f"/{older}")
                    deleted.append(older)
        if deleted:
            log.info("retention: deleted %s", ", ".join(deleted))
        return deleted

    # -- DocumentSink ---------------------------------------------------------------------

    async def bulk(self, documents: Sequence[tuple[str, bytes]]) -> BulkOutcome:
        if not self._installed:
            await self.install()
        lines = bytearray()
        for stream, body in documents:
            lines += b'{"create":{"_index":"%s"}}\n' % stream.encode()
            lines += body + b"\n"
        response = await self._request(
            "POST",
            "/_bulk",
            content=bytes(lines),
            headers={"content-type": "application/x-ndjson"},
        )
        if response.status_code >= 400:
            raise StoreUnavailable(f"_bulk: HTTP {response.status_code} {response.text[:300]}")
        result = response.json()
        if not result.get("errors"):
            return BulkOutcome()
        retry, rejected, first = [], [], ""
        for position, item in enumerate(result["items"]):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            if status < 300:
                continue
            if status == 429 or status >= 500:
                retry.append(position)
            else:
                rejected.append(position)
                first = first or json.dumps(outcome.get("error"))[:500]
        return BulkOutcome(tuple(retry), tuple(rejected), first)

    # -- TelemetrySearch ------------------------------------------------------------------

    async def _search(self, streams: Sequence[str], body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._request(
                "POST",
                f"/{','.join(streams)}/_search",
                params=SEARCH_OPTIONS,
                json=body,
                timeout=SEARCH_TIMEOUT_SECONDS,
            )
        except StoreUnavailable as exc:
            raise errors.Unavailable(
                "the log store cannot be reached", reason="LOG_STORE_UNAVAILABLE"
            ) from exc
        if response.status_code == 400:
            raise errors.InvalidArgument("query", "the store refused the search")
        if response.status_code >= 400:
            raise errors.Unavailable(
                f"the log store answered {response.status_code}", reason="LOG_STORE_UNAVAILABLE"
            )
        return response.json()

    async def search_logs(self, query: LogQuery, offset: int, limit: int) -> list[LogEntry]:
        filters: list[dict[str, Any]] = _time_filter(query.time)
        if query.service:
            filters.append({"term": {"resource.attributes.service.name": query.service}})
        if query.min_severity:
            filters.append({"range": {"severity_number": {"gte": int(query.min_severity)}}})
        if query.trace_id:
            filters.append({"term": {"trace_id": query.trace_id}})
        if query.span_id:
            filters.append({"term": {"span_id": query.span_id}})
        filters += _attribute_filters(query.attributes, ("attributes", "resource.attributes"))
        must = []
        if query.text:
            must.append(
                {
                    "simple_query_string": {
                        "query": query.text,
                        "fields": ["body.text"],
                        "default_operator": "and",
                    }
                }
            )
        body = {
            "query": {"bool": {"filter": filters, "must": must}},
            "sort": [{"@timestamp": {"order": "asc" if query.oldest_first else "desc"}}],
            "from": offset,
            "size": limit,
            "track_total_hits": False,
        }
        found = await self._search([self.stream("logs")], body)
        return [mapping.log_entry(hit["_source"]) for hit in found["hits"]["hits"]]

    async def trace_spans(self, trace_ids: Sequence[str]) -> list[Span]:
        if not trace_ids:
            return []
        body = {
            "query": {"bool": {"filter": [{"terms": {"trace_id": list(trace_ids)}}]}},
            "sort": [{"@timestamp": {"order": "asc"}}],
            "size": MAX_TRACE_SPANS,
            "track_total_hits": False,
        }
        found = await self._search([self.stream("traces")], body)
        return [mapping.span(hit["_source"]) for hit in found["hits"]["hits"]]

    async def candidate_traces(self, query: TraceQuery, limit: int) -> list[str]:
        filters: list[dict[str, Any]] = _time_filter(query.time)
        if query.service:
            filters.append({"term": {"resource.attributes.service.name": query.service}})
        if query.span_name:
            filters.append({"term": {"name": query.span_name}})
        if query.error_only:
            filters.append({"term": {"status.code": "Error"}})
        filters += _attribute_filters(query.attributes, ("attributes", "resource.attributes"))
        body = {
            "query": {"bool": {"filter": filters}},
            "size": 0,
            "aggs": {
                "traces": {
                    "terms": {
                        "field": "trace_id",
                        "size": limit,
                        "order": {"latest": "desc"},
                        # Few spans match a filter: bucket them directly instead of building
                        # global ordinals over every trace id of the shard first.
                        "execution_hint": "map",
                    },
                    "aggs": {"latest": {"max": {"field": "@timestamp"}}},
                }
            },
        }
        found = await self._search([self.stream("traces")], body)
        return [b["key"] for b in _buckets(found, "traces")]

    async def logged_services(self, time: TimeRange) -> list[LoggedService]:
        logs_filter = {"term": {"data_stream.type": "logs"}}
        body = {
            "query": {"bool": {"filter": _time_filter(time)}},
            "size": 0,
            "aggs": {
                "services": {
                    "terms": {
                        "field": "resource.attributes.service.name",
                        "size": 1000,
                        "order": {"_key": "asc"},
                    },
                    "aggs": {
                        "last": {"max": {"field": "@timestamp"}},
                        "logs": {"filter": logs_filter},
                        "errors": {
                            "filter": {
                                "bool": {
                                    "filter": [
                                        logs_filter,
                                        {"range": {"severity_number": {"gte": 17}}},
                                    ]
                                }
                            }
                        },
                        "spans": {"filter": {"term": {"data_stream.type": "traces"}}},
                        "version": {
                            "terms": {
                                "field": "resource.attributes.service.version",
                                "size": 1,
                                "order": {"newest": "desc"},
                            },
                            "aggs": {"newest": {"max": {"field": "@timestamp"}}},
                        },
                    },
                }
            },
        }
        found = await self._search([self.stream("logs"), self.stream("traces")], body)
        out = []
        for bucket in _buckets(found, "services"):
            last = bucket["last"].get("value_as_string")
            versions = bucket["version"]["buckets"]
            out.append(
                LoggedService(
                    name=bucket["key"],
                    version=versions[0]["key"] if versions else "",
                    last_seen=mapping.parse_time(last) if last else None,
                    log_count=bucket["logs"]["doc_count"],
                    error_log_count=bucket["errors"]["doc_count"],
                    span_count=bucket["spans"]["doc_count"],
                )
            )
        return out
