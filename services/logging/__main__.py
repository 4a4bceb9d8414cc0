"""Starts the logging service: `python -m services.logging`."""

from kit import config, server, telemetry
from services.logging import bootstrap
from services.logging.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "logging")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
