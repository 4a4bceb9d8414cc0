"""The chart's platform file and compose.yaml follow gateway/services.yaml and services/."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from deploy import generate

ROOT = generate.ROOT


def test_the_generated_deploy_files_are_fresh() -> None:
    assert generate.stale() == [], "run `make deploy-files` and commit"


def _copy_repo_skeleton(tmp_path: Path) -> Path:
    for path in ("gateway/services.yaml", "helm/emporium/values.yaml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    shutil.copytree(ROOT / "services", tmp_path / "services")
    return tmp_path


def test_a_new_service_adds_itself_with_its_servers_and_its_values_env(tmp_path: Path) -> None:
    root = _copy_repo_skeleton(tmp_path)
    package = root / "services/notification"
    package.mkdir(exist_ok=True)
    (package / "__main__.py").write_text("")
    (package / "config.py").write_text(
        "from kit.config import MongoSettings, RabbitSettings, ServerSettings\n"
    )
    values = yaml.safe_load((root / "helm/emporium/values.yaml").read_text())
    values["services"] = {"notification": {"env": {"EMPORIUM_NOTIFICATION_SMTP_HOST": "mailpit"}}}
    (root / "helm/emporium/values.yaml").write_text(yaml.safe_dump(values))

    chart = generate.platform(root)["services"]["notification"]
    compose = generate.compose(root)["services"]

    assert chart == {
        "port": 50057,
        "proto_service": "emporium.notification.v1.NotificationService",
        "servers": ["mongodb", "rabbitmq"],
        "schema": False,
    }
    assert compose["notification"]["command"] == ["python", "-m", "services.notification"]
    assert compose["notification"]["environment"]["EMPORIUM_NOTIFICATION_SMTP_HOST"] == "mailpit"
    assert compose["notification"]["environment"]["EMPORIUM_NOTIFICATION_GRPC_HOST"] == "0.0.0.0"
    assert compose["gateway"]["environment"]["EMPORIUM_NOTIFICATION_GRPC_HOST"] == "notification"
    assert set(compose["notification"]["depends_on"]) == {"mongodb", "rabbitmq"}


def test_a_service_listed_but_not_written_yet_is_left_out() -> None:
    names = set(generate.platform()["services"])
    listed = set(yaml.safe_load((ROOT / "gateway/services.yaml").read_text())["services"])
    assert names == {n for n in listed if (ROOT / "services" / n / "__main__.py").is_file()}
