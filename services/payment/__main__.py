"""Starts the payment service: `python -m services.payment`."""

from kit import server, telemetry
from services.payment import bootstrap
from services.payment.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
