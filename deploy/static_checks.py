"""Static checks of the container files, which cannot be built here (no container registry is
reachable, so no base image can be pulled; see the README): hadolint on the Dockerfile,
compose.yaml against the Compose specification's JSON schema, and the pins both share with the
rest of the repository.

    uv run --frozen python -m deploy.static_checks    # make deploy-check (part of make test)

The schema is the one compose-go (Docker Compose's own loader) embeds; the Makefile fetches it
with `go mod download` and passes its path in EMPORIUM_COMPOSE_SCHEMA.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from deploy.generate import COMPOSE_FILE, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> list[str]:
    """hadolint's findings on the Dockerfile (warnings and errors fail)."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    result = subprocess.run(
        [binary, "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    return [line for line in result.stdout.splitlines() if line] or (
        [f"hadolint failed: {result.stderr.strip()}"] if result.returncode else []
    )


def compose_schema_errors(schema_path: Path) -> list[str]:
    """compose.yaml's violations of the Compose specification."""
    schema = json.loads(schema_path.read_text())
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"compose.yaml {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def pin_errors() -> list[str]:
    """Versions the Dockerfile repeats must equal the repository's own pins."""
    dockerfile = DOCKERFILE.read_text()
    errors = []
    uv_pin = re.search(r'required-version = "==(.+)"', (ROOT / "pyproject.toml").read_text())
    uv_image = re.search(r"astral-sh/uv:(\S+)", dockerfile)
    if not uv_pin or not uv_image or uv_pin[1] != uv_image[1]:
        errors.append("Dockerfile: the uv image must be the version pyproject.toml pins")
    swagger = yaml.safe_load((ROOT / "gateway/services.yaml").read_text())["gateway"][
        "swagger_ui_version"
    ]
    for found in re.findall(r"SWAGGER_UI_VERSION=(\S+)|swagger-ui-([0-9][0-9.]*)", dockerfile):
        version = found[0] or found[1]
        if version != str(swagger):
            errors.append(f"Dockerfile: Swagger UI {version}, services.yaml says {swagger}")
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, spec in services.items():
        command = spec.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = ROOT / Path(*command[2].split("."))
            if not (module / "__main__.py").is_file():
                errors.append(f"compose.yaml {name}: {command[2]} is not a runnable package")
    return errors


def main() -> int:
    schema = os.environ.get("EMPORIUM_COMPOSE_SCHEMA")
    if not schema or not Path(schema).is_file():
        print("EMPORIUM_COMPOSE_SCHEMA must name compose-spec.json (make deploy-check)")
        return 1
    problems = [*hadolint(), *compose_schema_errors(Path(schema)), *pin_errors()]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print("Dockerfile (hadolint), compose.yaml (Compose specification schema) and pins: fine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
