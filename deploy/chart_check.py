"""Checks the Helm chart offline: renders it with the default and the production values,
validates every object against the Kubernetes schemas (kubernetes-validate), and checks what
the chart promises for every service of files/platform.yaml and the gateway.

    uv run --frozen python -m deploy.chart_check --helm .tools/helm-v3.21.4/helm  # chart-check
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from deploy.generate import CHART, platform

KUBE_VERSION = "1.33.0"
RELEASE = "emporium"
PER_COMPONENT = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def render(helm: str, values: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "-f", str(values)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _containers(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            pod = obj["spec"]["template"]["spec"]
            for container in pod["containers"]:
                yield obj["metadata"]["name"], {**container, "_pod": pod}


def problems(objects: list[dict[str, Any]], production: bool) -> list[str]:
    found: list[str] = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            found.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    prefix = f"{RELEASE}-"
    for component in [*platform()["services"], "gateway"]:
        for kind in (*PER_COMPONENT, "NetworkPolicy"):
            if (kind, prefix + component) not in names:
                found.append(f"{component}: no {kind}")
    for name, container in _containers(objects):
        security = container.get("securityContext", {})
        pod_security = container["_pod"].get("securityContext", {})
        if not (security.get("readOnlyRootFilesystem") and pod_security.get("runAsNonRoot")):
            found.append(f"{name}: not a non-root, read-only container")
        if container["_pod"].get("restartPolicy") != "OnFailure" and not (
            container.get("readinessProbe") and container.get("livenessProbe")
        ):
            found.append(f"{name}: no readiness and liveness probes")
        if not container.get("resources", {}).get("limits"):
            found.append(f"{name}: no resource limits")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if production and "EMPORIUM_CASSANDRA_REPLICATION" in env:
            if env["EMPORIUM_CASSANDRA_REPLICATION"] != "NetworkTopologyStrategy:dc1=3":
                found.append(f"{name}: production replication is not 3")
            if env["EMPORIUM_CASSANDRA_CONSISTENCY"] != "LOCAL_QUORUM":
                found.append(f"{name}: production consistency is not LOCAL_QUORUM")
    # Each Cassandra service logs in as its own role, with the password from a Secret, and the
    # accounts Job creates those roles (kit.accounts cassandra).
    containers = dict(_containers(objects))
    for service, spec in platform()["services"].items():
        if "cassandra" not in spec.get("servers", ()):
            continue
        env = {e["name"]: e for e in containers.get(prefix + service, {}).get("env", [])}
        if env.get("EMPORIUM_CASSANDRA_USERNAME", {}).get("value") != f"emporium_{service}":
            found.append(f"{service}: does not log in to Cassandra as emporium_{service}")
        if "secretKeyRef" not in env.get("EMPORIUM_CASSANDRA_PASSWORD", {}).get("valueFrom", {}):
            found.append(f"{service}: no Cassandra password from a Secret")
    accounts = [c for n, c in containers.items() if n.startswith(prefix + "accounts-")]
    if not any("cassandra" in c.get("command", []) for c in accounts):
        found.append("the accounts Job creates no Cassandra roles")
    if not any(kind == "Job" for kind, _ in names):
        found.append("no schema job")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", required=True, help="the helm binary")
    args = parser.parse_args(argv)
    failed = False
    for values in ("values.yaml", "values-production.yaml"):
        objects = render(args.helm, CHART / values)
        found = problems(objects, production=values == "values-production.yaml")
        kinds = len({o["kind"] for o in objects})
        print(f"{values}: {len(objects)} objects of {kinds} kinds, {len(found)} problems")
        for problem in found:
            print(f"  {problem}", file=sys.stderr)
        failed |= bool(found)
    if not failed:
        print(f"chart: every object valid for Kubernetes {KUBE_VERSION}; every service complete.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
