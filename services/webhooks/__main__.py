"""Starts the webhooks service: `python -m services.webhooks`."""

from kit import config, server, telemetry
from services.webhooks import bootstrap
from services.webhooks.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "webhooks")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
