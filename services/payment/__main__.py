"""Starts the payment service: `python -m services.payment`."""

from kit import config, server, telemetry
from services.payment import bootstrap
from services.payment.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "payment")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
