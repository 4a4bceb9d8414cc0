"""The kit's storage clients against the real local servers: Cassandra, FerretDB, Redis.

Each run works in its own Cassandra keyspace and Mongo database (a random suffix, as
EMPORIUM_KEYSPACE_SUFFIX / EMPORIUM_MONGO_DATABASE_SUFFIX give services) and drops them at the
end. A server that does not answer makes these tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pymongo import IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit import cassandra, mongo, paging
from kit import redis as kit_redis
from kit.config import CassandraSettings, MongoSettings, RedisSettings
from kit.errors import InvalidArgument

# One event loop for the module: the clients are connected once and shared by the tests.
pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
ENV = {
    **os.environ,
    "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
    "EMPORIUM_MONGO_DATABASE_SUFFIX": SUFFIX,
}
# Long enough for a Cassandra that is still starting, short enough to fail a CI job promptly.
WAIT_SECONDS = 45

# Comments, blank lines and a ';' inside a string are part of the test: real schema files
# carry them.
SCHEMA = """
-- Users, looked up by id and by email; a user write touches both tables.
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY,
    email text,
    name text,
    version int,
    create_time timestamp
);

CREATE TABLE IF NOT EXISTS users_by_email (email text PRIMARY KEY, user_id uuid);

/* Items of a bucket, newest first: the paged query. */
CREATE TABLE IF NOT EXISTS items_by_bucket (
    bucket text,
    n int,
    label text,
    PRIMARY KEY (bucket, n)
) WITH CLUSTERING ORDER BY (n DESC)
  AND comment = 'paged; newest first';

CREATE TYPE IF NOT EXISTS address (line text, city text);  // a user-defined type
CREATE INDEX IF NOT EXISTS users_by_name ON users (name);
"""


@pytest.fixture(scope="module")
def schema_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cql") / "schema.cql"
    path.write_text(SCHEMA)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cassandra_session(schema_path: Path) -> AsyncIterator[cassandra.CassandraSession]:
    settings = CassandraSettings.from_env("kit_stores", env=ENV)
    session = await cassandra.connect(settings, schema=schema_path, wait_seconds=WAIT_SECONDS)
    try:
        yield session
    finally:
        await session.drop_keyspace()
        await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mongo_db() -> AsyncIterator[mongo.MongoDatabase]:
    database = mongo.connect(MongoSettings.from_env("kit_stores", env=ENV))
    try:
        await database.ping()
        yield database
    finally:
        await database.client.drop_database(database.name)
        await database.close()


# --- Cassandra ---------------------------------------------------------------------------------


async def test_connecting_creates_the_suffixed_keyspace_with_the_schema_in_it(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    assert cassandra_session.keyspace == "kit_stores" + SUFFIX
    tables = await cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (cassandra_session.keyspace,),
    )
    assert {t.table_name for t in tables} == {"users", "users_by_email", "items_by_bucket"}
    (keyspace,) = await cassandra_session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (cassandra_session.keyspace,),
    )
    assert keyspace.replication == {
        "class": "org.apache.cassandra.locator.SimpleStrategy",
        "replication_factor": "1",
    }


async def test_applying_the_schema_again_and_reconnecting_change_nothing(
    cassandra_session: cassandra.CassandraSession, schema_path: Path
) -> None:
    user_id = uuid.uuid4()
    insert = await cassandra_session.prepare("INSERT INTO users (id, name) VALUES (?, ?)")
    await cassandra_session.execute(insert, (user_id, "kept"))

    await cassandra_session.apply_schema(schema_path)
    again = await cassandra.connect(
        CassandraSettings.from_env("kit_stores", env=ENV), schema=schema_path, wait_seconds=5
    )
    try:
        select = await again.prepare("SELECT name FROM users WHERE id = ?")
        assert [row.name for row in await again.execute(select, (user_id,))] == ["kept"]
    finally:
        await again.close()


async def test_a_schema_statement_that_is_not_idempotent_is_refused_before_anything_runs(
    cassandra_session: cassandra.CassandraSession, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.cql"
    bad.write_text(
        "CREATE TABLE IF NOT EXISTS never_created (k int PRIMARY KEY);\n"
        "CREATE TABLE plain (k int PRIMARY KEY);\n"
    )
    with pytest.raises(ValueError, match="IF NOT EXISTS"):
        await cassandra_session.apply_schema(bad)
    tables = await cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (cassandra_session.keyspace,),
    )
    assert "never_created" not in {t.table_name for t in tables}


async def test_a_prepared_insert_reads_back_with_its_cql_types(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    user_id = uuid.uuid4()
    created = datetime(2026, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    insert = await cassandra_session.prepare(
        "INSERT INTO users (id, email, name, version, create_time) VALUES (?, ?, ?, ?, ?)"
    )
    assert await cassandra_session.prepare(insert.query_string) is insert  # cached
    await cassandra_session.execute(insert, (user_id, "ada@example.com", "Ada", 1, created))

    select = await cassandra_session.prepare("SELECT * FROM users WHERE id = ?")
    (row,) = await cassandra_session.execute(select, (user_id,))
    assert (row.id, row.email, row.name, row.version) == (user_id, "ada@example.com", "Ada", 1)
    # Cassandra stores milliseconds and the driver returns naive UTC datetimes.
    assert row.create_time == created.replace(tzinfo=None)
    assert await cassandra_session.execute(select, (uuid.uuid4(),)) == []


async def test_twenty_racing_inserts_if_not_exists_on_one_key_apply_exactly_once(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    email = f"race-{uuid.uuid4()}@example.com"
    claim = await cassandra_session.prepare(
        "INSERT INTO users_by_email (email, user_id) VALUES (?, ?) IF NOT EXISTS"
    )
    contenders = [uuid.uuid4() for _ in range(20)]
    results = await asyncio.gather(
        *(cassandra_session.execute(claim, (email, user_id)) for user_id in contenders)
    )

    winners = [
        user_id
        for user_id, rows in zip(contenders, results, strict=True)
        if cassandra.applied(rows)
    ]
    assert len(winners) == 1
    # Every loser is told who holds the email.
    losers = [rows[0] for rows in results if not cassandra.applied(rows)]
    assert {row.user_id for row in losers} == set(winners)
    select = await cassandra_session.prepare("SELECT user_id FROM users_by_email WHERE email = ?")
    assert [row.user_id for row in await cassandra_session.execute(select, (email,))] == winners


async def test_an_update_with_a_stale_version_is_not_applied_and_shows_the_current_one(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    user_id = uuid.uuid4()
    insert = await cassandra_session.prepare(
        "INSERT INTO users (id, name, version) VALUES (?, ?, 1) IF NOT EXISTS"
    )
    assert cassandra.applied(await cassandra_session.execute(insert, (user_id, "v1")))
    bump = await cassandra_session.prepare(
        "UPDATE users SET name = ?, version = ? WHERE id = ? IF version = ?"
    )

    assert cassandra.applied(await cassandra_session.execute(bump, ("v2", 2, user_id, 1)))
    stale = await cassandra_session.execute(bump, ("lost", 2, user_id, 1))
    assert not cassandra.applied(stale)
    assert stale[0].version == 2


async def test_a_logged_batch_writes_both_tables(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    user_id, email = uuid.uuid4(), f"batch-{uuid.uuid4()}@example.com"
    user = await cassandra_session.prepare("INSERT INTO users (id, email, name) VALUES (?, ?, ?)")
    by_email = await cassandra_session.prepare(
        "INSERT INTO users_by_email (email, user_id) VALUES (?, ?)"
    )
    batch = cassandra_session.batch()
    batch.add(user, (user_id, email, "Grace"))
    batch.add(by_email, (email, user_id))
    assert await cassandra_session.execute(batch) == []

    get_user = await cassandra_session.prepare("SELECT email FROM users WHERE id = ?")
    get_by_email = await cassandra_session.prepare(
        "SELECT user_id FROM users_by_email WHERE email = ?"
    )
    assert [r.email for r in await cassandra_session.execute(get_user, (user_id,))] == [email]
    assert [r.user_id for r in await cassandra_session.execute(get_by_email, (email,))] == [user_id]


async def test_paging_through_three_pages_returns_every_row_exactly_once_in_order(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    bucket = f"b-{uuid.uuid4()}"
    insert = await cassandra_session.prepare(
        "INSERT INTO items_by_bucket (bucket, n, label) VALUES (?, ?, ?)"
    )
    await asyncio.gather(
        *(cassandra_session.execute(insert, (bucket, n, f"item {n}")) for n in range(25))
    )
    select = await cassandra_session.prepare("SELECT n FROM items_by_bucket WHERE bucket = ?")
    request_filter = {"bucket": bucket}

    # As a List RPC does it: the paging state travels to the client inside a page token.
    pages: list[list[int]] = []
    token = ""
    while True:
        state = paging.decode_page_token(token, request_filter)
        assert state is None or isinstance(state, bytes)
        rows, next_state = await cassandra_session.execute_page(select, (bucket,), 10, state)
        pages.append([row.n for row in rows])
        token = paging.encode_page_token(next_state, request_filter)
        if not token:
            break
        with pytest.raises(InvalidArgument):  # the same token with another filter is refused
            paging.decode_page_token(token, {"bucket": "another"})

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [n for page in pages for n in page] == list(range(24, -1, -1))
    assert len(await cassandra_session.execute(select, (bucket,))) == 25


async def test_execute_fetches_every_page_of_a_result_larger_than_one_page(
    cassandra_session: cassandra.CassandraSession,
) -> None:
    bucket = f"big-{uuid.uuid4()}"
    insert = await cassandra_session.prepare(
        "INSERT INTO items_by_bucket (bucket, n, label) VALUES (?, ?, ?)"
    )
    await asyncio.gather(*(cassandra_session.execute(insert, (bucket, n, "")) for n in range(60)))
    select = await cassandra_session.prepare("SELECT n FROM items_by_bucket WHERE bucket = ?")
    bound = select.bind((bucket,))
    bound.fetch_size = 7  # nine pages behind one await

    rows = await cassandra_session.execute(bound)
    assert sorted(row.n for row in rows) == list(range(60))


async def test_a_query_error_reaches_the_awaiting_caller() -> None:
    settings = CassandraSettings.from_env("kit_stores_errors", env=ENV)
    session = await cassandra.connect(settings, wait_seconds=WAIT_SECONDS)
    try:
        with pytest.raises(Exception, match="no_such_table"):
            await session.execute("SELECT * FROM no_such_table")
    finally:
        await session.drop_keyspace()
        await session.close()


async def test_connecting_to_a_cassandra_that_does_not_answer_fails_after_the_wait() -> None:
    nobody = CassandraSettings(keyspace="kit_unreachable", hosts=("127.0.0.1",), port=1)
    with pytest.raises(ConnectionError, match="did not answer within 1 s"):
        await cassandra.connect(nobody, wait_seconds=1)


# --- MongoDB (FerretDB here) -------------------------------------------------------------------

INDEXES = {
    "inbox": [IndexModel([("event_id", 1)], unique=True, name="event_id_unique")],
    "orders": [IndexModel([("user_id", 1), ("create_time", -1)], name="by_user")],
}


async def test_a_unique_index_rejects_a_duplicate_and_declaring_it_twice_is_harmless(
    mongo_db: mongo.MongoDatabase,
) -> None:
    await mongo_db.ensure_indexes(INDEXES)
    await mongo_db.ensure_indexes(INDEXES)
    names = {index["name"] async for index in await mongo_db["inbox"].list_indexes()}
    assert "event_id_unique" in names

    event_id = str(uuid.uuid4())
    await mongo_db["inbox"].insert_one({"event_id": event_id})
    with pytest.raises(DuplicateKeyError):
        await mongo_db["inbox"].insert_one({"event_id": event_id})
    assert await mongo_db["inbox"].count_documents({"event_id": event_id}) == 1


async def test_an_index_option_the_local_server_lacks_is_refused() -> None:
    database = mongo.connect(MongoSettings.from_env("kit_stores_unused", env=ENV))
    try:
        with pytest.raises(ValueError, match="expireAfterSeconds"):
            await database.ensure_indexes(
                {"sessions": [IndexModel([("expire_time", 1)], expireAfterSeconds=0)]}
            )
    finally:
        await database.close()


async def test_racing_compare_and_set_updates_let_exactly_one_win(
    mongo_db: mongo.MongoDatabase,
) -> None:
    orders = mongo_db["orders"]
    order_id = str(uuid.uuid4())
    await orders.insert_one({"_id": order_id, "status": "pending", "version": 0})

    async def claim(worker: int) -> dict | None:
        return await orders.find_one_and_update(
            {"_id": order_id, "version": 0},
            {"$set": {"status": "claimed", "by": worker}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    results = await asyncio.gather(*(claim(worker) for worker in range(20)))
    winners = [doc for doc in results if doc is not None]
    assert len(winners) == 1
    stored = await orders.find_one({"_id": order_id})
    assert stored == winners[0]
    assert stored is not None
    assert stored["version"] == 1


async def test_datetimes_come_back_from_mongo_as_aware_utc(mongo_db: mongo.MongoDatabase) -> None:
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    doc_id = uuid.uuid4()
    await mongo_db["orders"].insert_one({"_id": doc_id, "create_time": when})
    stored = await mongo_db["orders"].find_one({"_id": doc_id})
    assert stored is not None
    assert stored["create_time"] == when
    assert stored["_id"] == doc_id


# --- Redis -------------------------------------------------------------------------------------


async def test_redis_round_trips_bytes_hashes_and_expiry() -> None:
    client = kit_redis.connect(RedisSettings.from_env(env=ENV))
    prefix = f"emporium-test{SUFFIX}:"
    try:
        assert await client.ping()
        blob = bytes(range(256))  # Protobuf bytes must come back untouched
        assert await client.set(prefix + "blob", blob, ex=60)
        assert await client.get(prefix + "blob") == blob
        assert 0 < await client.ttl(prefix + "blob") <= 60

        await client.hset(prefix + "cart", mapping={"sku-1": b"2", "sku-2": b"1"})
        assert await client.hgetall(prefix + "cart") == {b"sku-1": b"2", b"sku-2": b"1"}
        assert await client.hincrby(prefix + "cart", "sku-1", 3) == 5
    finally:
        await client.delete(prefix + "blob", prefix + "cart")
        await client.aclose()


async def test_redis_commands_are_client_spans_inside_a_recorded_call_only(monkeypatch) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    # The module's tracer follows the global provider, which a process can set only once.
    monkeypatch.setattr(kit_redis, "tracer", provider.get_tracer("emporium.redis"))
    client = kit_redis.connect(RedisSettings.from_env(env=ENV))
    key = f"emporium-test{SUFFIX}:traced"
    try:
        await client.set(key, b"secret-value", ex=60)  # a background write: no span
        assert exported.get_finished_spans() == ()
        with provider.get_tracer("server").start_as_current_span("call") as call:
            assert await client.get(key) == b"secret-value"
            async with client.pipeline() as pipe:
                assert await pipe.incr(key + ":n").delete(key + ":n").execute() == [1, 1]
        get, multi, _call = exported.get_finished_spans()
    finally:
        await client.delete(key)
        await client.aclose()
    assert (get.name, get.kind, get.attributes["db.statement"]) == ("GET", SpanKind.CLIENT, "GET ?")
    assert multi.name == "MULTI"
    assert multi.attributes["db.statement"] == "INCRBY ? ?\nDEL ?"  # redis-py: incr is INCRBY
    for span in (get, multi):
        assert span.parent.span_id == call.get_span_context().span_id
        assert span.attributes["db.system"] == "redis"
        assert "secret" not in str(dict(span.attributes))  # names, never values or keys
