"""The generated OpenAPI document is valid and documents the promised REST surface."""

import yaml
from openapi_spec_validator import validate


def test_the_openapi_document_is_valid_openapi_3(openapi_path):
    document = yaml.safe_load(openapi_path.read_text())
    assert document["openapi"].startswith("3.")
    validate(document)


def test_the_openapi_document_contains_every_promised_route(openapi_path, promised_routes):
    paths = yaml.safe_load(openapi_path.read_text())["paths"]
    missing = [(verb, path) for verb, path in promised_routes if verb not in paths.get(path, {})]
    assert not missing, f"promised routes missing from OpenAPI: {missing}"


def test_every_operation_documents_its_errors_as_google_rpc_status(openapi_path):
    paths = yaml.safe_load(openapi_path.read_text())["paths"]
    for path, operations in paths.items():
        for verb, operation in operations.items():
            error = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("google.rpc.Status"), f"{verb} {path}"
