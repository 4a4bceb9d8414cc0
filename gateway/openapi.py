"""Completes the generated OpenAPI document with what protoc-gen-openapi cannot know.

    python -m gateway.openapi gen/openapi/openapi.yaml gen/descriptor/emporium.binpb

- a bearer JWT security scheme, and on every operation the `security` its RPC's access option
  says (none on ACCESS_PUBLIC ones, so Swagger UI's Authorize applies where it is needed);
- the error responses each RPC can return, each a google.rpc.Status: 400 (any malformed
  request), 401 (a bad token, also on public RPCs when one is sent) and 429 (rate limits)
  everywhere, 403 on admin RPCs and where the RPC's comment names PERMISSION_DENIED, 404 / 409
  where it names NOT_FOUND /
  ALREADY_EXISTS or ABORTED, and 5XX (the service or the gateway failed), in place of the
  generator's catch-all `default`, so a client (and Schemathesis) knows every status to expect;
- server streams (the Watch* feeds) described as what the gateway sends: one JSON object per
  line (newline-delimited), each the documented message, until the client hangs up; the media
  type stays application/json, the Content-Type Envoy's transcoder sends;
- raw bodies (google.api.HttpBody) as the bytes they are over REST: a request body field of
  that type takes the request's bytes of any media type, and an RPC returning one answers with
  its own Content-Type (an image), not a JSON object; the JWK Set as the JSON it is;
- google.type.Date as the object the API speaks ({year, month, day}), not a date string.

`make gen` runs it after the generator, so `make gen-check` covers its output too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gen/python"))

from emporium.access.v1 import access_pb2  # noqa: E402

SCHEME = "bearerAuth"
STATUS = {"$ref": "#/components/schemas/google.rpc.Status"}
ERRORS = {
    "400": "Malformed request or failed precondition (INVALID_ARGUMENT, FAILED_PRECONDITION).",
    "401": "Missing, invalid, expired or revoked access token (UNAUTHENTICATED).",
    "403": "The caller may not do this (PERMISSION_DENIED).",
    "404": "The resource does not exist or is not the caller's (NOT_FOUND).",
    "409": "Conflict with the current state (ALREADY_EXISTS, ABORTED).",
    "429": "Rate limit exceeded; retry after the retry-after header (RESOURCE_EXHAUSTED).",
    "5XX": "The service or the gateway failed (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED).",
}
DATE = "google.type.Date"
DATE_SCHEMA = {
    "type": "object",
    "description": "A calendar day (google.type.Date), as the API speaks it in JSON.",
    "properties": {
        "year": {"type": "integer", "format": "int32", "description": "Year, 1 to 9999."},
        "month": {"type": "integer", "format": "int32", "description": "Month, 1 to 12."},
        "day": {"type": "integer", "format": "int32", "description": "Day of the month."},
    },
}


def _access(descriptor_set: Path) -> dict[str, int]:
    """operationId (`<Service>_<Method>`) -> declared access (ADMIN when undeclared)."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    access: dict[str, int] = {}
    for file in files.file:
        for service in file.service:
            for method in service.method:
                declared = method.options.Extensions[access_pb2.access]
                access[f"{service.name}_{method.name}"] = declared or access_pb2.ACCESS_ADMIN
    return access


def _streams(descriptor_set: Path) -> set[str]:
    """operationIds of the server-streaming RPCs."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    return {
        f"{service.name}_{method.name}"
        for file in files.file
        for service in file.service
        for method in service.method
        if method.server_streaming
    }


HTTP_BODY = ".google.api.HttpBody"
BINARY = {"schema": {"type": "string", "format": "binary"}}
# Raw bodies that are JSON documents of a standard of their own, described as what they are.
JWK_SET = {
    "type": "object",
    "description": "The public keys that verify access tokens (a JWK Set, RFC 7517).",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty", "kid"],
                "properties": {
                    name: {"type": "string"}
                    for name in ("kty", "crv", "x", "y", "kid", "alg", "use")
                },
            },
        }
    },
}
RAW_JSON = {"UserService_GetJwks": JWK_SET}


def _raw_bodies(descriptor_set: Path) -> tuple[set[str], set[str]]:
    """operationIds whose REST request body is an HttpBody field, and those returning one."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    messages = {
        f".{file.package}.{message.name}": message
        for file in files.file
        for message in file.message_type
    }
    requests, responses = set(), set()
    for file in files.file:
        for service in file.service:
            for method in service.method:
                operation = f"{service.name}_{method.name}"
                body = method.options.Extensions[annotations_pb2.http].body
                fields = messages[method.input_type].field if method.input_type in messages else []
                if any(f.name == body and f.type_name == HTTP_BODY for f in fields):
                    requests.add(operation)
                if method.output_type == HTTP_BODY:
                    responses.add(operation)
    return requests, responses


STREAM = (
    "A stream of newline-delimited JSON: one object per line, each of the schema below, sent as"
    " it happens, until the client hangs up."
)


def _errors(access: int, description: str) -> list[str]:
    # 401 everywhere: a public operation checks a token when one is sent (an expired or
    # revoked one is refused), and sign-in answers wrong credentials with it.
    codes = ["400", "401"]
    if access == access_pb2.ACCESS_ADMIN or "PERMISSION_DENIED" in description:
        codes.append("403")
    if "NOT_FOUND" in description:
        codes.append("404")
    if "ALREADY_EXISTS" in description or "ABORTED" in description:
        codes.append("409")
    codes.append("429")
    codes.append("5XX")
    return codes


def _dates(node: Any) -> None:
    """Every `type: string, format: date` schema (the generator's google.type.Date) becomes a
    reference to the object schema, keeping its description."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and value.get("format") == "date":
                described = {"description": value["description"]} if "description" in value else {}
                node[key] = {"allOf": [{"$ref": f"#/components/schemas/{DATE}"}], **described}
            else:
                _dates(value)
    elif isinstance(node, list):
        for item in node:
            _dates(item)


def complete(
    document: dict[str, Any],
    access: dict[str, int],
    streams: frozenset[str] = frozenset(),
    raw: tuple[set[str], set[str]] = (set(), set()),
) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /v1/auth:login (ES256 JWT, 15 minutes).",
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            declared = access.get(operation.get("operationId", ""), access_pb2.ACCESS_ADMIN)
            public = declared == access_pb2.ACCESS_PUBLIC
            operation["security"] = [] if public else [{SCHEME: []}]
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            if operation.get("operationId") in streams and "200" in responses:
                responses["200"]["description"] = STREAM
            if operation.get("operationId") in raw[0] and "requestBody" in operation:
                operation["requestBody"]["content"] = {"*/*": dict(BINARY)}
            if operation.get("operationId") in raw[1] and "200" in responses:
                document_schema = RAW_JSON.get(operation.get("operationId", ""))
                responses["200"]["content"] = (
                    {"application/json": {"schema": document_schema}}
                    if document_schema
                    else {"*/*": dict(BINARY)}
                )
            for code in _errors(declared, operation.get("description", "")):
                responses[code] = {
                    "description": ERRORS[code],
                    "content": {"application/json": {"schema": dict(STATUS)}},
                }
    _dates(document)
    components.setdefault("schemas", {})[DATE] = DATE_SCHEMA
    return document


def main(argv: list[str]) -> None:
    openapi, descriptor_set = Path(argv[0]), Path(argv[1])
    document = complete(
        yaml.safe_load(openapi.read_text()),
        _access(descriptor_set),
        frozenset(_streams(descriptor_set)),
        _raw_bodies(descriptor_set),
    )
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    openapi.write_text(
        "# Generated by protoc-gen-openapi, completed by gateway/openapi.py.\n" + text
    )


if __name__ == "__main__":
    main(sys.argv[1:])
