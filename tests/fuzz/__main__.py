"""Schemathesis against the gateway's OpenAPI document (issue 15 item 9): `make test-fuzz`.

    EMPORIUM_PORT_OFFSET=4900 EMPORIUM_VAR=var/fuzz infra/local/stack with -- \
        uv run --frozen -- python -m tests.fuzz [--seconds 90]

Runs inside a stack of its own (the Makefile's `test-fuzz` starts one on offset 4900 with its own
data and deletes that data first): with an admin token Schemathesis takes real ids from list
responses and deletes or disables what it finds, so it must never see a shared stack.

It signs in the development admin, runs Schemathesis (its CLI, every phase, bounded by
--max-time) with the admin's token, then registers a shopper and runs it again with the
shopper's token. The checks: no 5xx (not_a_server_error), every response's status declared
(status_code_conformance) and its body matching the document (response_schema_conformance).
Prints one summary line per run and exits non-zero on any failure or error; the JSON reports
and a pytest file reproducing each failure are left in $EMPORIUM_VAR/fuzz/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from gateway import render

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# A few reads are slow under the fuzzer's load on 2 shared cores (the logging service's searches
# on OpenSearch); Envoy's own route timeout (15 s, a 504) still bounds them and counts as a 5xx.
REQUEST_TIMEOUT_SECONDS = 30


def _sign_in(api: httpx.Client, credentials: dict[str, str]) -> str:
    response = api.post("/v1/auth:login", json=credentials)
    response.raise_for_status()
    return response.json()["access_token"]


def _shopper(api: httpx.Client) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.com"
    password = "fuzzing shopper password"
    response = api.post(
        "/v1/users:register",
        json={"email": email, "password": password, "display_name": "Fuzz Shopper"},
    )
    response.raise_for_status()
    return _sign_in(api, {"email": email, "password": password})


# The Watch* feeds never end (until the client hangs up): every request would run into the
# request timeout. tests/integration/test_gateway.py and the e2e flows cover them.
EXCLUDED = "_Watch"
# The shopper deleting their own account revokes the token the whole run uses: every request
# after it is a 401 and the run tests nothing else (tests/e2e/test_user_flows.py covers it).
SHOPPER_EXCLUDED = f"{EXCLUDED}|^UserService_DeleteMe$"


def _run(name: str, url: str, token: str, seconds: int, out: Path, exclude: str = EXCLUDED) -> dict:
    """One Schemathesis run; returns its JSON report."""
    report = out / f"{name}.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-time",
        str(seconds),
        "--request-timeout",
        str(REQUEST_TIMEOUT_SECONDS),
        "--exclude-operation-id-regex",
        exclude,
        "--workers",
        "1",
        "--seed",
        "15",
        "--suppress-health-check",
        "all",
        "--report",
        "json,pytest",
        "--report-json-path",
        str(report),
        "--report-pytest-path",
        str(out / f"test_{name}_failures.py"),
        "--output-truncate",
        "true",
        "--warnings",
        "off",
    ]
    started = time.monotonic()
    print(f"\n== Schemathesis as {name} ({seconds} s) ==", flush=True)
    subprocess.run(command, cwd=out, check=False)
    wall = time.monotonic() - started
    document = json.loads(report.read_text())
    document["wall_seconds"] = round(wall)
    return document


def _summary(name: str, document: dict) -> tuple[str, bool]:
    operations, cases = document["operations"], document["test_cases"]
    failures = sum(group["count"] for group in document["failures"])
    errors = sum(group["count"] for group in document["errors"])
    line = (
        f"{name}: {cases['generated']} test cases, {operations['tested']}/{operations['selected']}"
        f" operations tested, {failures} failures, {errors} errors,"
        f" {document['wall_seconds']} s (exit {document['exit_code']})"
    )
    detail = [
        f"  failure {g['title']} x{g['count']}: {', '.join(g['operations'])}"
        for g in document["failures"]
    ] + [f"  error {g['title']} x{g['count']}" for g in document["errors"]]
    ok = failures == 0 and errors == 0 and document["exit_code"] == 0
    return "\n".join([line, *detail]), ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--seconds", type=int, default=90, help="time budget of each run")
    args = parser.parse_args(argv)
    url = f"http://127.0.0.1:{render.load().port}"
    out = Path(os.environ.get("EMPORIUM_VAR") or ROOT / "var") / "fuzz"
    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=url, timeout=30) as api:
        admin = _sign_in(api, ADMIN)
    reports = {"admin": _run("admin", url, admin, args.seconds, out)}
    # The shopper is registered after the admin's run, which may disable or delete any user.
    with httpx.Client(base_url=url, timeout=30) as api:
        shopper = _shopper(api)
    reports["shopper"] = _run("shopper", url, shopper, args.seconds, out, SHOPPER_EXCLUDED)

    print("\n== Schemathesis summary ==")
    ok = True
    for name, document in reports.items():
        line, passed = _summary(name, document)
        print(line)
        ok = ok and passed
    print(f"reports: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
