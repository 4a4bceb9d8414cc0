"""Applies services' Cassandra schemas in one go: the Helm chart's schema job.

    python -m kit.schema user catalog order     # creates each keyspace, applies its schema.cql

Each service `<name>` keeps its tables in keyspace `emporium_<name>` (plus
EMPORIUM_KEYSPACE_SUFFIX), created with EMPORIUM_CASSANDRA_REPLICATION, from
services/<name>/schema.cql: the same `kit.cassandra.connect` the service runs at start, so
running both is harmless. Run once before a new version's replicas start, it spares the
cluster their concurrent DDL. It logs in as the administrator (EMPORIUM_CASSANDRA_ADMIN_USERNAME /
_PASSWORD, as `python -m kit.accounts cassandra`), who may create a keyspace that is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace

from kit import accounts, cassandra
from kit.config import ROOT

log = logging.getLogger("emporium.schema")


async def apply(names: list[str], wait_seconds: float = 300) -> None:
    """Applies services/<name>/schema.cql of each service to its keyspace, in order."""
    for name in names:
        path = ROOT / "services" / name / "schema.cql"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: {name!r} has no Cassandra schema")
        settings = replace(accounts.cassandra_admin(), keyspace=accounts.cassandra_keyspace(name))
        session = await cassandra.connect(settings, schema=path, wait_seconds=wait_seconds)
        await session.close()
        log.info("schema of %s applied to keyspace %s", name, settings.keyspace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="+", help="service names (services/<name>/schema.cql)")
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for Cassandra")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    asyncio.run(apply(args.services, args.wait))
    return 0


if __name__ == "__main__":
    sys.exit(main())
