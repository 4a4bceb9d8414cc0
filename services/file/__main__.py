"""Starts the file service: `python -m services.file`."""

from kit import config, server, telemetry
from services.file import bootstrap
from services.file.config import Settings


def main() -> None:
    settings = config.load(Settings.from_env, "file")
    telemetry.setup(settings.telemetry)
    server.run(settings.server, lambda: bootstrap.build(settings))


if __name__ == "__main__":
    main()
