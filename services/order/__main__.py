"""Starts the order service: `python -m services.order`."""

from kit import server, telemetry
from services.order import bootstrap
from services.order.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
