"""Cassandra client of the service kit: connect with retry, idempotent schema, awaitable queries.

A service calls `await connect(settings, schema=Path(".../schema.cql"))` at start-up and gets a
`CassandraSession` it can await from asyncio code:

    insert = await session.prepare(
        "INSERT INTO users_by_email (email, id) VALUES (?, ?) IF NOT EXISTS"
    )
    if not applied(await session.execute(insert, (email, user_id))):
        raise AlreadyExists(...)

Choices, and why:

- Connection class: `LibevConnection`. The cassandra-driver 3.29 cp311 wheel bundles libev
  (`cassandra_driver.libs/`), so nothing compiles and nothing is needed from the OS; it is the
  driver's default and best-tested reactor. `AsyncioConnection` in 3.29 cannot connect on
  Python >= 3.9 (its writer uses `with await lock`, fixed upstream only after 3.29, see
  apache/cassandra-python-driver#1270; seen here as "Timed out creating connection"), and
  asyncore is deprecated in 3.11 and gone in 3.12. Every reactor runs its own I/O thread anyway,
  so results come back to asyncio through `loop.call_soon_threadsafe` whichever is used.
- Consistency: LOCAL_QUORUM for reads and writes (a quorum of the one local node here; the same
  code is correct on a three-replica production data centre), LOCAL_SERIAL for the Paxos phase
  of conditional (LWT) statements. Both come from settings when they carry `consistency`.
- Login: the settings' role and password (PasswordAuthenticator) and, with a CA file, TLS.
  A refused login fails at once (`LoginRefused`) instead of being retried like a node that
  is still starting.
- Keyspace: created if missing with the settings' replication (`SimpleStrategy:1` by default;
  `NetworkTopologyStrategy:dc1=3,dc2=3` in production), then used by every statement, so schema
  files and queries never name a keyspace and tests can isolate themselves with a suffix.
  Creating one needs CREATE on all keyspaces, which a service's own role does not have
  (kit.accounts creates its keyspace and grants it that one): an existing keyspace is not
  created again, and a missing one the role may not create is a clear `KeyspaceMissing`.
- Rows are namedtuples (`row.email`); the LWT result column `[applied]` becomes `row.applied`.
  The driver's own factory builds a new namedtuple class for every result set (5-12% of a saga
  service's CPU in the profile of issue 11); `cached_named_tuple_factory` builds one per column
  list and reuses it, with the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections import namedtuple
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cassandra import (
    AuthenticationFailed,
    ConsistencyLevel,
    OperationTimedOut,
    ProtocolVersion,
    Unauthorized,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.io.libevreactor import LibevConnection
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import (
    BatchStatement,
    BatchType,
    BoundStatement,
    PreparedStatement,
    SimpleStatement,
    Statement,
    _clean_column_name,
    named_tuple_factory,
)
from opentelemetry import trace

from kit import retry, telemetry
from kit.config import CassandraSettings, StartRefused

__all__ = [
    "BatchStatement",
    "BoundStatement",
    "CassandraSession",
    "KeyspaceMissing",
    "LoginRefused",
    "PreparedStatement",
    "Row",
    "SchemaDisagreement",
    "applied",
    "connect",
    "connect_cluster",
    "replication_options",
    "split_statements",
]

log = logging.getLogger("emporium.cassandra")
# OpenTelemetry's cassandra-driver instrumentation wraps only the blocking calls; the async
# ones this wrapper makes get their client spans here.
tracer = trace.get_tracer("emporium.cassandra")


def _cql(statement: Any) -> str:
    """The CQL text of a statement, without its values (they may be personal data)."""
    if isinstance(statement, str):
        return statement
    if isinstance(statement, BatchStatement):
        return "BATCH"
    prepared = getattr(statement, "prepared_statement", None)
    return str(getattr(prepared or statement, "query_string", "") or type(statement).__name__)


# A row as the driver's namedtuple factory makes it: fields named after the selected columns.
Row = Any
Query = str | Statement
Params = Sequence[Any] | Mapping[str, Any] | None

# Client-side limit of one request; DDL gets longer because the node flushes schema to disk.
REQUEST_TIMEOUT_SECONDS = 10.0
DDL_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 5.0

# Unquoted CQL identifiers are case-insensitive (folded to lower case); requiring lower case
# means the name we create is the name the driver later `USE`s, without quoting games.
_KEYSPACE_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
_REPLICATION_WORD = re.compile(r"[A-Za-z0-9_.\-]+")
# Errors that mean "not answering yet" while Cassandra starts (15-45 s on two cores).
_NOT_READY = (NoHostAvailable, OperationTimedOut, ConnectionException, OSError)


class LoginRefused(StartRefused):
    """Cassandra refused the role's login (a wrong password, an unknown role): waiting would
    not help, so the service stops at once and says which role and where."""


class KeyspaceMissing(StartRefused):
    """The keyspace does not exist and this role may not create it (kit.accounts does)."""


class SchemaDisagreement(RuntimeError):
    """The nodes did not agree on the schema in time; statements may fail on some of them."""


def replication_options(spec: str | Mapping[str, str | int]) -> dict[str, str]:
    """The replication map of `CREATE KEYSPACE` from "SimpleStrategy:1" or "Strategy:dc=n,...".

    >>> replication_options("NetworkTopologyStrategy:dc1=3")
    {'class': 'NetworkTopologyStrategy', 'dc1': '3'}
    """
    if isinstance(spec, Mapping):
        options = {str(k): str(v) for k, v in spec.items()}
    else:
        strategy, _, rest = spec.strip().partition(":")
        options = {"class": strategy.strip()}
        if strategy.strip() == "SimpleStrategy":
            options["replication_factor"] = rest.strip()
        else:
            for part in filter(None, (p.strip() for p in rest.split(","))):
                dc, _, factor = part.partition("=")
                options[dc.strip()] = factor.strip()
    # Values are spliced into CQL text (DDL cannot take bind markers), so only plain words pass.
    for key, value in options.items():
        if not (_REPLICATION_WORD.fullmatch(key) and _REPLICATION_WORD.fullmatch(value)):
            raise ValueError(f"bad Cassandra replication option {key!r}: {value!r} in {spec!r}")
    if options.get("class") not in ("SimpleStrategy", "NetworkTopologyStrategy"):
        raise ValueError(f"unknown replication strategy in {spec!r}")
    if len(options) < 2:
        raise ValueError(f"replication {spec!r} names no replication factor")
    return options


@functools.lru_cache(maxsize=4096)
def _row_class(colnames: tuple[str, ...]) -> type | None:
    try:
        # The driver's own cleaning ("[applied]" -> "applied"), so rows read the same.
        return namedtuple("Row", [_clean_column_name(c) for c in colnames])
    except Exception:  # a name a namedtuple cannot take: the driver's factory renames it
        return None


def cached_named_tuple_factory(colnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list:
    """The driver's `named_tuple_factory`, with the row class made once per column list."""
    row_class = _row_class(tuple(colnames))
    if row_class is None:
        return named_tuple_factory(colnames, rows)
    return [row_class(*row) for row in rows]


def _consistency(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return ConsistencyLevel.name_to_value[level.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown Cassandra consistency level {level!r}") from None


def applied(rows: Sequence[Row]) -> bool:
    """Whether a conditional statement (`... IF NOT EXISTS`, `... IF version = ?`) took effect.

    When it did not, `rows[0]` also carries the current values of the columns in the condition.
    """
    if not rows:
        raise ValueError("no rows: not the result of a conditional (LWT) statement")
    try:
        return bool(rows[0].applied)
    except AttributeError:
        raise ValueError("no [applied] column: not a conditional (LWT) statement") from None


def split_statements(cql: str) -> list[str]:
    """The statements of a .cql file, without comments, blank lines or the closing semicolons.

    Understands '...' strings (with '' escapes), "..." identifiers, $$...$$ bodies and the
    three comment forms (--, //, /* */), so a ';' inside any of them does not split.
    """
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(cql)
    while i < n:
        two = cql[i : i + 2]
        ch = cql[i]
        if two in ("--", "//"):
            end = cql.find("\n", i)
            i = n if end < 0 else end
        elif two == "/*":
            end = cql.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment in CQL")
            current.append(" ")
            i = end + 2
        elif two == "$$":
            end = cql.find("$$", i + 2)
            if end < 0:
                raise ValueError("unterminated $$ string in CQL")
            current.append(cql[i : end + 2])
            i = end + 2
        elif ch in "'\"":
            j = i + 1
            while True:
                j = cql.find(ch, j)
                if j < 0:
                    raise ValueError(f"unterminated {ch} quote in CQL")
                if cql[j + 1 : j + 2] == ch:  # a doubled quote is an escaped quote
                    j += 2
                    continue
                break
            current.append(cql[i : j + 1])
            i = j + 1
        elif ch == ";":
            statements.append("".join(current))
            current = []
            i += 1
        else:
            current.append(ch)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def _check_schema_statement(statement: str) -> None:
    """Refuse what would make start-up non-idempotent or escape the service's keyspace."""
    upper = " ".join(statement.split()).upper()
    if re.match(r"(CREATE|DROP|ALTER)\s+KEYSPACE\b|USE\b", upper):
        raise ValueError(
            f"schema files must not create, change or use keyspaces (the keyspace comes from "
            f"settings): {statement[:80]!r}"
        )
    if (
        upper.startswith("CREATE ")
        and not upper.startswith("CREATE OR REPLACE ")
        and "IF NOT EXISTS" not in upper
    ):
        raise ValueError(f"CREATE without IF NOT EXISTS is not idempotent: {statement[:80]!r}")


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled; the driver finished anyway
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _rows_of(rf: ResponseFuture, *, all_pages: bool) -> asyncio.Future[list[Row]]:
    """An asyncio future for the rows of `rf`, optionally following every page.

    The driver calls back on its reactor thread, so results cross to the loop with
    `call_soon_threadsafe`; further pages are requested from that thread, as the driver's own
    paging example does.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[Row]] = loop.create_future()
    rows: list[Row] = []

    def hand_over(value: Any, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(_settle, future, value, error)
        except RuntimeError:  # the loop closed while the query ran (a stopped service)
            log.debug("result of a Cassandra query arrived after its event loop closed")

    def on_page(page: list[Row] | None) -> None:
        # Non-row results (INSERT, DDL) arrive as None.
        rows.extend(page or ())
        if all_pages and rf.has_more_pages:
            try:
                rf.start_fetching_next_page()
            except Exception as exc:
                hand_over(None, exc)
        else:
            hand_over(rows, None)

    def on_error(exc: BaseException) -> None:
        hand_over(None, exc)

    rf.add_callbacks(on_page, on_error)
    return future


class CassandraSession:
    """A connected driver session bound to one keyspace, awaited from asyncio."""

    def __init__(
        self,
        cluster: Cluster,
        session: Session,
        keyspace: str,
        *,
        replication: Mapping[str, str],
        consistency: int,
        serial_consistency: int,
    ) -> None:
        self._cluster = cluster
        self._session = session
        self.keyspace = keyspace
        self.replication = dict(replication)
        self.consistency = consistency
        self.serial_consistency = serial_consistency
        self._prepared: dict[str, PreparedStatement] = {}

    @property
    def driver_session(self) -> Session:
        """The driver's own Session, for what this wrapper does not cover (blocking calls!)."""
        return self._session

    async def execute(self, statement: Query, params: Params = None) -> list[Row]:
        """Run one statement and return all its rows (every page: meant for small results).

        `statement` is CQL text (with `%s` placeholders), a PreparedStatement with `params`, a
        BoundStatement or a BatchStatement. Prefer prepared statements for anything repeated.
        """
        with self._span(statement):
            rf = self._session.execute_async(statement, params)
            return await _rows_of(rf, all_pages=True)

    def _span(self, statement: Any) -> Any:
        if not telemetry.in_recorded_span():
            return contextlib.nullcontext()
        cql = _cql(statement)
        return tracer.start_as_current_span(
            f"{cql.split(None, 1)[0].upper() if cql else 'CQL'} {self.keyspace}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "db.system": "cassandra",
                "db.name": self.keyspace,
                "db.statement": cql[:1000],
            },
        )

    async def execute_page(
        self,
        statement: str | SimpleStatement | PreparedStatement | BoundStatement,
        params: Params = None,
        page_size: int = 50,
        paging_state: bytes | None = None,
    ) -> tuple[list[Row], bytes | None]:
        """One page of at most `page_size` rows, and the paging state of the next (None: last).

        The paging state is opaque and tied to the statement and its parameters: hand it back
        with the same ones (kit.paging wraps it in a page token bound to the request's filter).
        A page may come back short, or empty with a state, at page boundaries: keep going until
        the state is None.
        """
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        if isinstance(statement, str):
            statement = SimpleStatement(statement, fetch_size=page_size)
        elif isinstance(statement, PreparedStatement):
            statement = statement.bind(params)
            params = None
        elif isinstance(statement, BatchStatement):
            raise TypeError("a batch has no pages")
        statement.fetch_size = page_size
        with self._span(statement):
            rf = self._session.execute_async(statement, params, paging_state=paging_state)
            rows = await _rows_of(rf, all_pages=False)
        # The callback ran after the driver stored the next page's state, so this does not block.
        return rows, rf.result().paging_state

    async def prepare(self, cql: str) -> PreparedStatement:
        """The prepared statement for `cql`, prepared once per session (then cached)."""
        prepared = self._prepared.get(cql)
        if prepared is None:
            # The driver has no async prepare; its blocking one waits on the reactor thread, so
            # run it off the event loop. Two racing callers may both prepare: harmless.
            prepared = await asyncio.to_thread(self._session.prepare, cql)
            self._prepared[cql] = prepared
        return prepared

    def batch(self) -> BatchStatement:
        """An empty LOGGED batch: its statements all apply or none do (not isolated)."""
        return BatchStatement(
            batch_type=BatchType.LOGGED,
            consistency_level=self.consistency,
            serial_consistency_level=self.serial_consistency,
        )

    async def apply_schema(self, path: Path) -> None:
        """Run every statement of the .cql file at `path` in this keyspace; safe to repeat.

        Every CREATE must say IF NOT EXISTS (or OR REPLACE); keyspace statements are refused
        because the keyspace comes from settings. Waits until all nodes agree on the schema.
        """
        statements = split_statements(await asyncio.to_thread(path.read_text))
        for statement in statements:
            _check_schema_statement(statement)
        await self.create_keyspace_if_missing()
        for statement in statements:
            await self.execute_ddl(statement)
        log.info("applied %d schema statements from %s to %s", len(statements), path, self.keyspace)

    async def drop_keyspace(self, keyspace: str | None = None) -> None:
        """Drop `keyspace` (default: this session's) if it exists: tests clean up with it. A
        schema change: it gets the DDL time limit (a busy node takes more than 10 s)."""
        name = keyspace or self.keyspace
        if not _KEYSPACE_NAME.fullmatch(name):
            raise ValueError(f"keyspace must match {_KEYSPACE_NAME.pattern}, got {name!r}")
        await self.execute_ddl(f"DROP KEYSPACE IF EXISTS {name}")

    async def create_keyspace_if_missing(self) -> None:
        """Create this session's keyspace unless it exists. A service's own role may not create
        keyspaces (CREATE ON ALL KEYSPACES, checked even for IF NOT EXISTS), so an existing one
        is left alone and a missing one it may not create says who creates it."""
        if self.keyspace in self._cluster.metadata.keyspaces:
            return
        try:
            await self._create_keyspace()
        except Unauthorized as exc:
            raise KeyspaceMissing(
                f"keyspace {self.keyspace} does not exist and this role may not create it: "
                f"`python -m kit.accounts cassandra` creates it and grants it ({exc})"
            ) from None

    async def _create_keyspace(self) -> None:
        options = ", ".join(f"'{k}': '{v}'" for k, v in self.replication.items())
        await self.execute_ddl(
            f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {{{options}}}"
        )

    async def execute_ddl(self, statement: str) -> None:
        """Run one schema statement (CREATE, ALTER, DROP): it may take up to DDL_TIMEOUT_SECONDS
        (a busy node takes longer than a request's 10 s), then waits for schema agreement."""
        rf = self._session.execute_async(statement, timeout=DDL_TIMEOUT_SECONDS)
        await _rows_of(rf, all_pages=False)
        # The driver already waited (up to max_schema_agreement_wait) before answering.
        if not rf.is_schema_agreed:
            control = self._cluster.control_connection
            if not await asyncio.to_thread(control.wait_for_schema_agreement):
                raise SchemaDisagreement(f"nodes disagree on the schema after {statement[:80]!r}")

    async def close(self) -> None:
        """Close every connection; the session is unusable afterwards."""
        await asyncio.to_thread(self._cluster.shutdown)


def _new_cluster(settings: CassandraSettings, consistency: int, serial: int) -> Cluster:
    login = {}
    if settings.username and settings.password is not None:
        login["auth_provider"] = PlainTextAuthProvider(
            settings.username, settings.password.get_secret_value()
        )
    profile = ExecutionProfile(
        # Token-aware routing sends each statement to a replica of its partition; DC-aware
        # keeps traffic (and LOCAL_* consistency) in the data centre of the contact points.
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=consistency,
        serial_consistency_level=serial,
        request_timeout=REQUEST_TIMEOUT_SECONDS,
        row_factory=cached_named_tuple_factory,
    )
    return Cluster(
        contact_points=list(settings.hosts),
        port=settings.port,
        connection_class=LibevConnection,
        # Cassandra 4.0+ speaks v5 (5.0 here). Naming it skips the driver's downgrade dance
        # (two refused handshakes and a warning on every start).
        protocol_version=ProtocolVersion.V5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        # The driver's default backs off up to 10 minutes between reconnection attempts: after
        # a Cassandra restart the crash test saw services wait 4.6 minutes with the node long
        # back. 10 s at most keeps the outage about as long as the node's.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        ssl_context=settings.ssl_context(),
        **login,
    )


def _login_refused(error: BaseException) -> AuthenticationFailed | None:
    """The AuthenticationFailed inside a NoHostAvailable (one per contact point), if any."""
    errors = getattr(error, "errors", None) or {}
    for cause in errors.values():
        if isinstance(cause, AuthenticationFailed):
            return cause
    return error if isinstance(error, AuthenticationFailed) else None


async def connect_cluster(
    settings: CassandraSettings,
    *,
    wait_seconds: float = 60,
    consistency: int = ConsistencyLevel.LOCAL_QUORUM,
    serial_consistency: int = ConsistencyLevel.LOCAL_SERIAL,
    retry_refused_login: bool = False,
) -> tuple[Cluster, Session]:
    """A connected cluster and driver session (no keyspace), retrying until the cluster
    answers within `wait_seconds`. A refused login raises LoginRefused at once, unless
    `retry_refused_login` (a new node creates its default superuser shortly after it opens
    the CQL port: the account tool waits for it)."""
    where = f"{', '.join(settings.hosts)}:{settings.port}"
    not_ready = (*_NOT_READY, LoginRefused) if retry_refused_login else _NOT_READY
    try:
        async for attempt in retry.until_up(wait_seconds, not_ready):
            with attempt:
                cluster = _new_cluster(settings, consistency, serial_consistency)
                try:
                    driver_session = await asyncio.to_thread(cluster.connect)
                except _NOT_READY as exc:
                    await asyncio.to_thread(cluster.shutdown)
                    refused = _login_refused(exc)
                    if refused is not None:
                        raise LoginRefused(
                            f"Cassandra at {where} refused the login of role "
                            f"{settings.username!r} (EMPORIUM_CASSANDRA_USERNAME / "
                            f"EMPORIUM_CASSANDRA_PASSWORD): {refused}"
                        ) from None
                    raise
    except LoginRefused:
        raise
    except _NOT_READY as exc:
        raise ConnectionError(
            f"Cassandra at {where} did not answer within {wait_seconds:g} s: {exc}"
        ) from exc
    return cluster, driver_session


async def connect(
    settings: CassandraSettings,
    *,
    schema: Path | None = None,
    wait_seconds: float = 60,
    replication: str | Mapping[str, str | int] | None = None,
    consistency: str | int | None = None,
    serial_consistency: str | int = "LOCAL_SERIAL",
) -> CassandraSession:
    """Connect (retrying until the cluster answers), create the keyspace, apply `schema`.

    Services start at the same time as Cassandra, which needs 15-45 s before it answers, so
    this retries for `wait_seconds` before giving up with ConnectionError. `replication` and
    `consistency` default to the settings' values when they have them, else SimpleStrategy:1
    and LOCAL_QUORUM.
    """
    keyspace = settings.keyspace
    if not _KEYSPACE_NAME.fullmatch(keyspace):
        raise ValueError(f"keyspace must match {_KEYSPACE_NAME.pattern}, got {keyspace!r}")
    replication_map = replication_options(replication or settings.replication)
    level = _consistency(consistency or settings.consistency)
    serial = _consistency(serial_consistency)

    cluster, driver_session = await connect_cluster(
        settings, wait_seconds=wait_seconds, consistency=level, serial_consistency=serial
    )

    session = CassandraSession(
        cluster,
        driver_session,
        keyspace,
        replication=replication_map,
        consistency=level,
        serial_consistency=serial,
    )
    try:
        await session.create_keyspace_if_missing()
        await asyncio.to_thread(driver_session.set_keyspace, keyspace)
        if schema is not None:
            await session.apply_schema(schema)
    except BaseException:
        await session.close()
        raise
    return session
