"""Starts the logging service: `python -m services.logging`."""

from kit import server, telemetry
from services.logging import bootstrap
from services.logging.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
