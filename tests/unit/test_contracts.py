"""The Protobuf contracts keep the platform's API rules (ARCHITECTURE.md section 3)."""

import re
from collections import defaultdict

import pytest
from contracts import Binding, elements, fields, own_files, rpcs
from emporium.access.v1 import access_pb2
from google.protobuf import descriptor_pb2

DOMAINS = ["user", "catalog", "cart", "order", "payment", "shipping", "notification",
           "webhooks", "logging", "file"]  # fmt: skip
CODES = re.compile(
    r"\b(CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|"
    r"PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|"
    r"UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNAUTHENTICATED)\b"
)
MONEY_NAME = re.compile(r"(^|_)(price|amount|total|subtotal|cost|tax|fee)$")
TIMESTAMP = ".google.protobuf.Timestamp"
MONEY = ".google.type.Money"


def test_every_domain_has_one_service_with_rpcs(descriptor_set):
    services = defaultdict(list)
    for f in own_files(descriptor_set):
        for s in f.service:
            services[f.package].append(s.name)
    for domain in DOMAINS:
        names = services[f"emporium.{domain}.v1"]
        assert names == [f"{domain.capitalize()}Service"], f"{domain}: services {names}"


def test_every_rpc_has_an_http_binding(descriptor_set):
    unbound = [rpc.name for rpc in rpcs(descriptor_set) if not rpc.bindings]
    assert not unbound, f"RPCs without google.api.http: {unbound}"


def test_every_rpc_has_one_route_so_openapi_documents_each_once(descriptor_set):
    # Extra routes (additional_bindings) get the same OpenAPI operationId: make another RPC.
    doubled = [rpc.name for rpc in rpcs(descriptor_set) if len(rpc.bindings) > 1]
    assert not doubled, f"RPCs with additional_bindings: {doubled}"


def test_no_two_http_bindings_share_verb_and_path_template(descriptor_set):
    by_shape: dict[tuple[str, str], list[Binding]] = defaultdict(list)
    for rpc in rpcs(descriptor_set):
        for binding in rpc.bindings:
            by_shape[binding.shape].append(binding)
    collisions = {shape: [b.rpc for b in bs] for shape, bs in by_shape.items() if len(bs) > 1}
    assert not collisions, f"colliding bindings: {collisions}"


def test_every_message_field_enum_service_and_rpc_has_a_comment(descriptor_set):
    silent = [f"{e.kind} {e.name} ({e.file})" for e in elements(descriptor_set) if not e.comment]
    assert not silent, "elements without a comment:\n" + "\n".join(silent)


def test_every_rpc_comment_names_the_error_codes_it_returns(descriptor_set):
    vague = [rpc.name for rpc in rpcs(descriptor_set) if not CODES.search(rpc.comment)]
    assert not vague, f"RPC comments naming no error code: {vague}"


def test_every_rpc_declares_who_may_call_it(descriptor_set):
    undeclared = [
        rpc.name for rpc in rpcs(descriptor_set) if rpc.access == access_pb2.ACCESS_UNSPECIFIED
    ]
    assert not undeclared, f"RPCs without (emporium.access.v1.access): {undeclared}"


def test_rpcs_behind_a_token_document_unauthenticated_and_admin_rpcs_permission_denied(
    descriptor_set,
):
    missing = []
    for rpc in rpcs(descriptor_set):
        if rpc.access != access_pb2.ACCESS_PUBLIC and "UNAUTHENTICATED" not in rpc.comment:
            missing.append(f"{rpc.name}: UNAUTHENTICATED")
        if rpc.access == access_pb2.ACCESS_ADMIN and "PERMISSION_DENIED" not in rpc.comment:
            missing.append(f"{rpc.name}: PERMISSION_DENIED")
    assert not missing, f"RPC comments missing error codes: {missing}"


def test_the_promised_rest_routes_exist(descriptor_set, promised_routes):
    bound = {(b.verb, b.path) for rpc in rpcs(descriptor_set) for b in rpc.bindings}
    missing = [route for route in promised_routes if route not in bound]
    assert not missing, f"promised REST routes without a binding: {missing}"


def test_money_fields_are_google_type_money(descriptor_set):
    wrong = [
        f"{msg}.{f.name}"
        for msg, f in fields(descriptor_set)
        if MONEY_NAME.search(f.name) and f.type_name != MONEY
    ]
    assert not wrong, f"money-named fields that are not google.type.Money: {wrong}"


def test_time_fields_are_timestamps_named_time(descriptor_set):
    wrong = [
        f"{msg}.{f.name}"
        for msg, f in fields(descriptor_set)
        if f.name.endswith("_time") != (f.type_name == TIMESTAMP)
    ]
    assert not wrong, f"*_time fields must be Timestamps and Timestamps *_time: {wrong}"


def test_booleans_have_no_is_prefix(descriptor_set):
    wrong = [
        f"{msg}.{f.name}"
        for msg, f in fields(descriptor_set)
        if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_BOOL and f.name.startswith("is_")
    ]
    assert not wrong, f"booleans named is_*: {wrong}"


def test_only_watch_rpcs_stream(descriptor_set):
    for rpc in rpcs(descriptor_set):
        method = rpc.method
        assert not method.client_streaming, f"{rpc.name} streams from the client"
        assert method.server_streaming == method.name.startswith("Watch"), rpc.name


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_imports_only_its_own_protos_access_and_google(descriptor_set, domain):
    allowed = (f"emporium/{domain}/", "emporium/access/", "google/")
    for f in own_files(descriptor_set):
        if f.name.startswith(f"emporium/{domain}/"):
            foreign = [d for d in f.dependency if not d.startswith(allowed)]
            assert not foreign, f"{f.name} imports another domain: {foreign}"


def test_events_carrying_a_token_are_marked_internal(descriptor_set):
    # Webhooks forward every event not marked internal to shop-configured URLs.
    leaking = []
    for f in own_files(descriptor_set):
        if f.name.endswith("_events.proto"):
            for m in f.message_type:
                secret = [
                    fld.name for fld in m.field if "token" in fld.name or "secret" in fld.name
                ]
                if secret and not m.options.Extensions[access_pb2.internal_event]:
                    leaking.append(f"{f.package}.{m.name}: {secret}")
    assert not leaking, f"events with secrets not marked internal_event: {leaking}"


def test_event_files_hold_only_messages(descriptor_set):
    event_files = [f for f in own_files(descriptor_set) if f.name.endswith("_events.proto")]
    assert event_files
    for f in event_files:
        assert not f.service, f"{f.name} declares a service"
        assert f.message_type, f"{f.name} declares no event"
