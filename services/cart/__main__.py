"""Starts the cart service: `python -m services.cart`."""

from kit import config, server, telemetry
from services.cart import bootstrap
from services.cart.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "cart")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
