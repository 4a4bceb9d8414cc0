"""Starts the catalog service: `python -m services.catalog`."""

from kit import config, server, telemetry
from services.catalog import bootstrap
from services.catalog.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "catalog")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
