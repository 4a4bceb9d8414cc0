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
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from kit import topology
from kit.config import ConfigError, development
from kit.events import owner

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
    name = f"EMPORIUM_RABBITMQ_PASSWORD_{service.upper()}"
    value = env.get(name, "")
    if value:
        return value
    if development(env):
        return f"dev-{service}"
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
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m kit.accounts", description=__doc__)
    parser.add_argument("systems", nargs="+", choices=["rabbitmq"])
    parser.add_argument("--vhost", default=os.environ.get("EMPORIUM_RABBITMQ_VHOST", "/"))
    args = parser.parse_args(argv)
    if "rabbitmq" in args.systems:
        users = asyncio.run(apply_rabbitmq(management_url(), args.vhost))
        print(f"rabbitmq: {len(users)} users on vhost {args.vhost}: {' '.join(users)}")
        asyncio.run(declare_topology())
        print(f"rabbitmq: topology declared ({len(topology.QUEUES)} queues)")
    return 0


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
