"""Starts the shipping service: `python -m services.shipping`."""

from kit import config, server, telemetry
from services.shipping import bootstrap
from services.shipping.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "shipping")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
