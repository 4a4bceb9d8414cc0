"""Starts the shipping service: `python -m services.shipping`."""

from kit import server, telemetry
from services.shipping import bootstrap
from services.shipping.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
