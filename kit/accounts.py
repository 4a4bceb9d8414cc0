"""Per-service broker accounts derived from the topology table, and who may claim which source.

Each service connects to RabbitMQ as its own user, `emporium-<service>`, whose rights follow
from `kit.topology.QUEUES` and the event types it owns (`kit.events.owner`):

    configure  its own queues (`<queue>`, `<queue>.retry.<i>`, `<queue>.dlq`) and the three
               platform exchanges (re-declaring an existing exchange needs configure rights)
    write      the events exchange and the dead-letter exchange, its own queues (a failed
               message is parked in its own retry queue through the default exchange)
    read       its own queues, and the events / dead-letter exchanges (binding its queue)
    topic      on `emporium.events` it may publish only the routing keys of the events it owns,
               and bind its queues only to the keys the topology gives them

A publish carries the AMQP `user_id` property (kit.bus sets it to the connection's user), and
RabbitMQ refuses a publish whose `user_id` differs from the authenticated user. So a consumer
takes an event's source from `user_id` (`trusted_source`): only the payment service's account
can say that a payment succeeded, whatever `app_id` it writes. A copy a consumer parks in its
own retry queue is published by the consumer's account; it carries the original source in the
`x-emporium-source` header, trusted only when the copy comes from the queue's own service.

`python -m kit.accounts rabbitmq` creates or updates the users and permissions through the
management HTTP API with the administrator's login (EMPORIUM_RABBITMQ_ADMIN_URL, e.g.
http://guest:guest@127.0.0.1:15672; in development the local broker's management port), then
declares the exchanges and the whole topology over AMQP as the administrator
(EMPORIUM_RABBITMQ_URL), which the service accounts may not. Passwords come from
EMPORIUM_RABBITMQ_PASSWORD_<SERVICE>; under EMPORIUM_ENV=development a missing one defaults
to the known development password `dev-<service>`, in production a missing one is an error.

Each service that keeps data in Cassandra (it has a `services/<name>/schema.cql`) logs in as
its own role, named after its keyspace: `emporium_<service>` (plus EMPORIUM_KEYSPACE_SUFFIX),
which may do everything in that keyspace and nothing anywhere else:

    CREATE ROLE IF NOT EXISTS emporium_catalog WITH LOGIN = true AND PASSWORD = '...'
    CREATE KEYSPACE IF NOT EXISTS emporium_catalog WITH replication = {...}
    GRANT ALL PERMISSIONS ON KEYSPACE emporium_catalog TO emporium_catalog

The keyspace is created here, by the administrator, because creating one needs CREATE on all
keyspaces, which no service gets; the service creates its tables in it at start.
`python -m kit.accounts cassandra` runs these as the administrator
(EMPORIUM_CASSANDRA_ADMIN_USERNAME / EMPORIUM_CASSANDRA_ADMIN_PASSWORD; development: Cassandra's
default superuser cassandra / cassandra), with passwords from
EMPORIUM_CASSANDRA_PASSWORD_<SERVICE>, defaulting to `dev-<service>` only under
EMPORIUM_ENV=development, and sets the password again on every run (a rotation is: change the
Secret, run the job, restart the service).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from kit import topology
from kit.config import (
    CASSANDRA_KEYSPACE_PREFIX,
    ROOT,
    CassandraSettings,
    ConfigError,
    cassandra_development_password,
    development,
    string,
)
from kit.events import owner

if TYPE_CHECKING:
    from cassandra.cluster import Session

USER_PREFIX = "emporium-"
SOURCE_HEADER = "x-emporium-source"
EVENTS_EXCHANGE = "emporium.events"
DEAD_LETTER_EXCHANGE = "emporium.dlx"
UNROUTED_EXCHANGE = "emporium.unrouted"


def services(queues: Mapping[str, Iterable[str]] = topology.QUEUES) -> tuple[str, ...]:
    """Every service with a broker account: the topology's consumers and the events' owners."""
    owners = {owner(t) for t in topology.all_events()} - {""}
    return tuple(sorted(set(queues) | owners))


def rabbitmq_user(service: str) -> str:
    """The broker user of `service`."""
    return f"{USER_PREFIX}{service}"


def service_of(user: str | None, known: Iterable[str] | None = None) -> str | None:
    """The service whose broker account is `user`; None for any other account (an operator)."""
    if not user or not user.startswith(USER_PREFIX):
        return None
    service = user[len(USER_PREFIX) :]
    return service if service in (services() if known is None else known) else None


def trusted_source(
    user_id: str | None,
    app_id: str | None,
    headers: Mapping[str, object],
    own_service: str | None,
) -> str:
    """The source a consumer of `own_service` may believe for a delivered message.

    - published by a service account: that service (its `app_id` is not believed), except a
      retry copy the consumer's own service parked, whose `x-emporium-source` header holds the
      source established when it first arrived;
    - published by another account with a `user_id` (the administrator: only it creates
      accounts; operators replay dead letters and tests publish with it): its `app_id`;
    - no `user_id`: "" (anyone could have sent it), which `kit.events.dispatch` refuses for an
      emporium event.
    """
    if not user_id:
        return ""
    service = service_of(user_id)
    if service is None:
        return str(app_id or "")
    if own_service is not None and service == own_service:
        claimed = headers.get(SOURCE_HEADER)
        if isinstance(claimed, str) and claimed:
            return claimed
    return service


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(names))


@dataclass(frozen=True)
class RabbitPermissions:
    """The vhost permissions (regular expressions over resource names) of one broker user."""

    configure: str
    write: str
    read: str
    # Routing keys it may publish to the events exchange, and bind its queues to (RabbitMQ
    # topic permissions: a binding's key is checked against read).
    topic_write: str
    topic_read: str = "^$"


def rabbitmq_permissions(
    service: str, queues: Mapping[str, Iterable[str]] = topology.QUEUES
) -> RabbitPermissions:
    """What `service`'s broker user may do, derived from the topology and the event owners.

    A service account declares the exchanges passively (no configure right on them; the
    administrator's `python -m kit.accounts rabbitmq` declares them and the whole topology) and
    only its own queues. Writing to `emporium.dlx` is what declaring a queue that dead-letters
    there requires. Writing to `amq.default` (the default exchange) parks a failed message
    in its retry queue; a copy it puts into another queue that way carries its own user_id.
    """
    own = [rf"{re.escape(service)}(\.retry\.[0-9]+|\.dlq)?"] if service in queues else []
    owned = sorted(t for t in topology.all_events() if owner(t) == service)
    consumed = sorted(queues.get(service, ()))
    exchanges = [re.escape(EVENTS_EXCHANGE)]
    if own:
        exchanges.append(re.escape(DEAD_LETTER_EXCHANGE))

    def either(patterns: list[str]) -> str:
        return f"^({'|'.join(patterns)})$" if patterns else "^$"

    return RabbitPermissions(
        configure=either(own),
        # The dead-letter exchange: declaring a queue that dead-letters to it needs write.
        write=either([*exchanges, *(["amq\\.default"] if own else []), *own]),
        read=either([*exchanges, *own] if own else []),
        topic_write=f"^({_alternatives(owned)})$" if owned else "^$",
        # Binding a queue to a topic exchange is checked against topic read: its own keys.
        topic_read=f"^({_alternatives(consumed)})$" if consumed else "^$",
    )


def rabbitmq_password(service: str, env: Mapping[str, str] = os.environ) -> str:
    """The broker password of `service` (see the module docstring)."""
    return _password("RABBITMQ", service, env, f"dev-{service}")


def _password(server: str, service: str, env: Mapping[str, str], development_default: str) -> str:
    """EMPORIUM_<server>_PASSWORD_<SERVICE>; its development default only in development."""
    name = f"EMPORIUM_{server}_PASSWORD_{service.upper()}"
    value = env.get(name, "")
    if value:
        return value
    if development(env):
        return development_default
    raise ConfigError(f"{name} is required outside EMPORIUM_ENV=development")


def service_url(admin_amqp_url: str, service: str, password: str) -> str:
    """The AMQP URL of `service`: the administrator's URL with the service's login."""
    parts = urlsplit(admin_amqp_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(rabbitmq_user(service), safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def apply_rabbitmq(
    management_url: str,
    vhost: str = "/",
    env: Mapping[str, str] = os.environ,
    only: Sequence[str] | None = None,
) -> list[str]:
    """Creates or updates every service's broker user and permissions; returns the users.

    `management_url` is the management API's base URL with the administrator's login in it.
    """
    import httpx

    parts = urlsplit(management_url)
    base = urlunsplit(
        (parts.scheme, f"{parts.hostname}:{parts.port or 15672}", parts.path.rstrip("/"), "", "")
    )
    auth = (parts.username or "guest", parts.password or "guest")
    v = quote(vhost, safe="")
    done: list[str] = []
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30.0) as http:
        for service in only or services():
            user = rabbitmq_user(service)
            u = quote(user, safe="")
            perms = rabbitmq_permissions(service)
            for method, path, body in (
                (
                    "PUT",
                    f"/api/users/{u}",
                    {"password": rabbitmq_password(service, env), "tags": ""},
                ),
                (
                    "PUT",
                    f"/api/permissions/{v}/{u}",
                    {"configure": perms.configure, "write": perms.write, "read": perms.read},
                ),
                (
                    "PUT",
                    f"/api/topic-permissions/{v}/{u}",
                    {
                        "exchange": EVENTS_EXCHANGE,
                        "write": perms.topic_write,
                        "read": perms.topic_read,
                    },
                ),
            ):
                response = await http.request(method, path, json=body)
                if response.status_code >= 300:
                    raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            done.append(user)
    return done


def management_url(env: Mapping[str, str] = os.environ) -> str:
    """The management API URL with the administrator's login (EMPORIUM_RABBITMQ_ADMIN_URL)."""
    url = env.get("EMPORIUM_RABBITMQ_ADMIN_URL", "")
    if url:
        return url
    if development(env) and env.get("RABBITMQ_MANAGEMENT_PORT"):
        return f"http://guest:guest@127.0.0.1:{env['RABBITMQ_MANAGEMENT_PORT']}"
    raise ConfigError("EMPORIUM_RABBITMQ_ADMIN_URL is required (management API, admin login)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.accounts", description=__doc__)
    parser.add_argument("systems", nargs="+", choices=["rabbitmq", "cassandra"])
    parser.add_argument("--vhost", default=os.environ.get("EMPORIUM_RABBITMQ_VHOST", "/"))
    parser.add_argument(
        "--wait", type=float, default=300, help="seconds to wait for Cassandra (default 300)"
    )
    args = parser.parse_args(argv)
    if "cassandra" in args.systems:
        roles = asyncio.run(apply_cassandra(wait_seconds=args.wait))
        print(f"cassandra: {len(roles)} roles, each on its own keyspace: {' '.join(roles)}")
    if "rabbitmq" in args.systems:
        users = asyncio.run(apply_rabbitmq(management_url(), args.vhost))
        print(f"rabbitmq: {len(users)} users on vhost {args.vhost}: {' '.join(users)}")
        asyncio.run(declare_topology())
        print(f"rabbitmq: topology declared ({len(topology.QUEUES)} queues)")
    return 0


# --- Cassandra ---------------------------------------------------------------------------------

_CQL_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


def cassandra_services(root: Path = ROOT) -> tuple[str, ...]:
    """Every service that keeps data in Cassandra: those with a services/<name>/schema.cql."""
    return tuple(sorted(p.parent.name for p in (root / "services").glob("*/schema.cql")))


def cassandra_keyspace(service: str, env: Mapping[str, str] = os.environ) -> str:
    """The keyspace of `service` (EMPORIUM_KEYSPACE_SUFFIX appended), also its role's name."""
    name = CASSANDRA_KEYSPACE_PREFIX + service + string(env, "EMPORIUM_KEYSPACE_SUFFIX", "")
    if not _CQL_NAME.fullmatch(name):
        raise ConfigError(f"keyspace/role name must match {_CQL_NAME.pattern}, got {name!r}")
    return name


def cassandra_role(service: str, env: Mapping[str, str] = os.environ) -> str:
    """The Cassandra role of `service`: named after the keyspace it owns."""
    return cassandra_keyspace(service, env)


def cassandra_password(service: str, env: Mapping[str, str] = os.environ) -> str:
    """The Cassandra password of `service` (see the module docstring)."""
    development_default = cassandra_development_password(CASSANDRA_KEYSPACE_PREFIX + service)
    return _password("CASSANDRA", service, env, development_default)


def _cql_string(value: str) -> str:
    """A CQL string literal (role options take no bind markers)."""
    return "'" + value.replace("'", "''") + "'"


def cassandra_statements(
    service: str,
    password: str,
    replication: Mapping[str, str],
    env: Mapping[str, str] = os.environ,
    *,
    role_exists: bool = False,
) -> list[str]:
    """The CQL that gives `service` its role, its keyspace and rights on that keyspace only.

    Safe to repeat: an existing role gets its password set again (a rotation; Cassandra 5
    refuses a second change within 5 s, so a role just created is not altered), the keyspace
    and the grant are idempotent.
    """
    keyspace = cassandra_keyspace(service, env)
    role = cassandra_role(service, env)
    options = ", ".join(f"{_cql_string(k)}: {_cql_string(v)}" for k, v in replication.items())
    secret = _cql_string(password)
    login = (
        f"ALTER ROLE {role} WITH LOGIN = true AND PASSWORD = {secret}"
        if role_exists
        else f"CREATE ROLE IF NOT EXISTS {role} WITH LOGIN = true AND PASSWORD = {secret}"
    )
    return [
        login,
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{{options}}}",
        f"GRANT ALL PERMISSIONS ON KEYSPACE {keyspace} TO {role}",
    ]


def cassandra_admin(env: Mapping[str, str] = os.environ) -> CassandraSettings:
    """Where Cassandra is, with the administrator's login: EMPORIUM_CASSANDRA_ADMIN_USERNAME and
    _PASSWORD (development: the default superuser cassandra / cassandra)."""
    username = string(env, "EMPORIUM_CASSANDRA_ADMIN_USERNAME", "")
    password = string(env, "EMPORIUM_CASSANDRA_ADMIN_PASSWORD", "")
    if not (username and password):
        if not development(env):
            raise ConfigError(
                "EMPORIUM_CASSANDRA_ADMIN_USERNAME and EMPORIUM_CASSANDRA_ADMIN_PASSWORD are "
                "required outside EMPORIUM_ENV=development (a role that may create roles, "
                "keyspaces and grants)"
            )
        username, password = username or "cassandra", password or "cassandra"
    login = {
        "EMPORIUM_CASSANDRA_USERNAME": username,
        "EMPORIUM_CASSANDRA_PASSWORD": password,
        "EMPORIUM_KEYSPACE_SUFFIX": "",
    }
    return CassandraSettings.from_env("system", {**env, **login})


async def apply_cassandra(
    env: Mapping[str, str] = os.environ,
    only: Sequence[str] | None = None,
    wait_seconds: float = 300,
) -> list[str]:
    """Creates or updates every Cassandra service's role, keyspace and grant; returns the roles.

    Under EMPORIUM_ENV=development a refused administrator login is retried for `wait_seconds`:
    a new node creates its default superuser only after it opened the CQL port.
    """
    from kit import cassandra

    admin = cassandra_admin(env)
    replication = cassandra.replication_options(admin.replication)
    cluster, session = await cassandra.connect_cluster(
        admin, wait_seconds=wait_seconds, retry_refused_login=development(env)
    )
    done: list[str] = []
    try:
        for service in only or cassandra_services():
            role = cassandra_role(service, env)
            found = await asyncio.to_thread(
                session.execute, "SELECT role FROM system_auth.roles WHERE role = %s", (role,)
            )
            statements = cassandra_statements(
                service,
                cassandra_password(service, env),
                replication,
                env,
                role_exists=bool(list(found)),
            )
            for statement in statements:
                await _execute_admin(session, statement)
            done.append(role)
    finally:
        await asyncio.to_thread(cluster.shutdown)
    return done


async def _execute_admin(session: Session, statement: str) -> None:
    """One administrator statement; a password changed again within Cassandra's 5 s limit (two
    runs in a row) is retried once the limit has passed."""
    from cassandra import OperationTimedOut
    from cassandra.cluster import NoHostAvailable

    for attempt in range(3):
        try:
            await asyncio.to_thread(session.execute, statement, timeout=60.0)
            return
        except (NoHostAvailable, OperationTimedOut) as exc:
            if "can only be changed every" not in str(exc) or attempt == 2:
                raise
            await asyncio.sleep(5.5)


async def drop_cassandra(
    services_: Sequence[str], env: Mapping[str, str] = os.environ, wait_seconds: float = 60
) -> None:
    """Drops the roles and keyspaces of `services_` (tests clean up with it)."""
    from kit import cassandra

    admin = cassandra_admin(env)
    cluster, session = await cassandra.connect_cluster(admin, wait_seconds=wait_seconds)
    try:
        for service in services_:
            for statement in (
                f"DROP KEYSPACE IF EXISTS {cassandra_keyspace(service, env)}",
                f"DROP ROLE IF EXISTS {cassandra_role(service, env)}",
            ):
                await asyncio.to_thread(session.execute, statement, timeout=60.0)
    finally:
        await asyncio.to_thread(cluster.shutdown)


async def declare_topology() -> None:
    """Declares the exchanges and every queue of the topology with the administrator's AMQP
    login (EMPORIUM_RABBITMQ_URL): the service accounts may not."""
    from kit.bus import Bus
    from kit.config import RabbitSettings

    settings = RabbitSettings.from_env()
    if service_of(urlsplit(settings.url).username) is not None:
        raise ConfigError("EMPORIUM_RABBITMQ_URL must be the administrator's, not a service's")
    async with await Bus.connect(settings, "accounts") as bus:
        await bus.declare_topology()


if __name__ == "__main__":
    sys.exit(main())
