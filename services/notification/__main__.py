"""Starts the notification service: `python -m services.notification`."""

from kit import server, telemetry
from services.notification import bootstrap
from services.notification.config import Settings


def main() -> None:
    settings = Settings.from_env()
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
