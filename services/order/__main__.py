"""Starts the order service: `python -m services.order`."""

from kit import config, server, telemetry
from services.order import bootstrap
from services.order.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "order")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
