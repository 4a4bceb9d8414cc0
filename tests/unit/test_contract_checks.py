"""The contract checks themselves flag what they promise to flag (so they can fail)."""

from importlib import resources
from pathlib import Path

import pytest
from contracts import elements, rpcs
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

WELL_KNOWN = resources.files("grpc_tools") / "_proto"

ROOT = Path(__file__).resolve().parents[2]

BAD_PROTO = """
syntax = "proto3";
package emporium.bad.v1;
import "google/api/annotations.proto";

// A documented message.
message Thing {
  string undocumented_field = 1;
}

message UndocumentedMessage {}

// A service.
service BadService {
  // Gets a thing. Returns NOT_FOUND if it does not exist.
  rpc GetThing(Thing) returns (Thing) {
    option (google.api.http) = {get: "/v1/things/{undocumented_field}"};
  }
  // Finds a thing by another name, at the same route.
  rpc FindThing(Thing) returns (Thing) {
    option (google.api.http) = {get: "/v1/things/{other=*}"};
  }
  rpc Unbound(Thing) returns (Thing);
}
"""


@pytest.fixture
def bad_descriptor_set(tmp_path) -> descriptor_pb2.FileDescriptorSet:
    (tmp_path / "emporium/bad/v1").mkdir(parents=True)
    (tmp_path / "emporium/bad/v1/bad.proto").write_text(BAD_PROTO)
    out = tmp_path / "bad.binpb"
    args = [
        "protoc",
        f"-I{tmp_path}",
        f"-I{ROOT / 'protos/third_party'}",
        f"-I{WELL_KNOWN}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        "emporium/bad/v1/bad.proto",
    ]
    assert protoc.main(args) == 0
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_the_comment_check_finds_undocumented_elements(bad_descriptor_set):
    silent = {e.name for e in elements(bad_descriptor_set) if not e.comment}
    assert silent == {
        "emporium.bad.v1.Thing.undocumented_field",
        "emporium.bad.v1.UndocumentedMessage",
        "emporium.bad.v1.BadService.Unbound",
    }


def test_the_binding_check_finds_unbound_and_colliding_rpcs(bad_descriptor_set):
    found = {rpc.name.rsplit(".", 1)[1]: rpc for rpc in rpcs(bad_descriptor_set)}
    assert found["Unbound"].bindings == []
    get_shape = found["GetThing"].bindings[0].shape
    assert get_shape == found["FindThing"].bindings[0].shape == ("get", "/v1/things/*")
