"""Starts the user service: `python -m services.user`."""

from kit import config, server, telemetry
from services.user import bootstrap
from services.user.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "user")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
