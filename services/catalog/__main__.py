"""Starts the catalog service: `python -m services.catalog`."""

from kit import server, telemetry
from services.catalog import bootstrap
from services.catalog.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
