"""The file service's adapters on the real servers: MongoDB-wire metadata and S3 (versitygw).

Each contract test runs on the in-memory fake and on the real adapter, so the fakes the unit
tests use behave like the real thing. The S3 tests then prove what only the real store can:
it refuses a body over the signed size, a tampered or expired signature (403), and anonymous
reads outside public/.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import file_samples as samples
import httpx
import pytest
import pytest_asyncio

from kit import events, mongo
from kit.config import MongoSettings
from services.file import domain, mapping
from services.file.adapters.memory import InMemoryFileRepository, InMemoryObjectStore
from services.file.adapters.mongo import MongoFileRepository
from services.file.adapters.s3 import S3ObjectStore
from services.file.config import S3Settings
from services.file.domain import File, Purpose, State

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _file(owner: str = "u1", minutes: int = 0, **fields) -> File:
    now = NOW + timedelta(minutes=minutes)
    return domain.new_file(
        owner_id=owner,
        purpose=fields.pop("purpose", Purpose.USER_UPLOAD),
        filename="a.png",
        content_type="image/png",
        size_bytes=fields.pop("size_bytes", 100),
        product_id="",
        alt_text="",
        now=now,
        expire_time=fields.pop("expire_time", now + timedelta(minutes=15)),
    )


def _event(file: File) -> events.Event:
    return mapping.deleted(file)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mongo_db(mongo_url: str) -> AsyncIterator[mongo.MongoDatabase]:
    database = mongo.connect(
        MongoSettings.from_env("file", {**os.environ, "EMPORIUM_MONGO_DATABASE_SUFFIX": SUFFIX})
    )
    try:
        yield database
    finally:
        await database.client.drop_database(database.name)
        await database.close()


@pytest_asyncio.fixture(params=["memory", "mongo"], loop_scope="module")
async def files(request, mongo_db):
    if request.param == "memory":
        return InMemoryFileRepository()
    repo = await MongoFileRepository.open(mongo_db)
    await mongo_db["files"].delete_many({})
    await mongo_db["usage"].delete_many({})
    return repo


def _s3_settings(endpoint: str) -> S3Settings:
    return S3Settings.from_env(
        {**os.environ, "EMPORIUM_S3_ENDPOINT": endpoint, "EMPORIUM_S3_BUCKET": "test" + SUFFIX[2:]}
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def s3(s3_endpoint: str) -> AsyncIterator[S3ObjectStore]:
    store = await S3ObjectStore.open(_s3_settings(s3_endpoint))
    yield store
    client = store.client
    listed = await asyncio.to_thread(client.list_objects_v2, Bucket=store.bucket)
    await store.delete([o["Key"] for o in listed.get("Contents", [])])
    await asyncio.to_thread(client.delete_bucket, Bucket=store.bucket)


@pytest.fixture(params=["memory", "s3"])
def store(request, s3):
    return InMemoryObjectStore() if request.param == "memory" else s3


@pytest.fixture
def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def _post(http: httpx.Client, store, form, data: bytes, content_type: str) -> bool:
    """What a client does with the signed form; True when the store accepted the bytes."""
    if isinstance(store, InMemoryObjectStore):
        return store.upload(form.fields["key"], data)
    answer = http.post(form.url, data=form.fields, files={"file": ("f", data, content_type)})
    return answer.status_code in (200, 201, 204)


# --- repository contract ---------------------------------------------------------------------


async def test_a_saved_change_applies_only_from_the_expected_state(files):
    file = _file()
    await files.insert(file)
    processing = domain.completed(file, domain.Inspection("image/png", 2, 3), 90, "ab", NOW)
    assert await files.save(processing, State.UPLOADING, [])
    assert not await files.save(processing, State.UPLOADING, [])
    stored = await files.get(file.id)
    assert (stored.state, stored.width, stored.size_bytes) == (State.PROCESSING, 2, 90)
    assert stored.create_time == file.create_time


async def test_events_saved_with_a_change_wait_in_the_outbox(files):
    file = _file()
    await files.insert(file)
    gone = replace(file, state=State.DELETED)
    event = _event(gone)
    assert await files.save(gone, State.UPLOADING, [event])
    pending = await files.outbox.pending(100)
    assert [e.id for e in pending] == [event.id]
    # Not purgeable before its event is published; purgeable after.
    assert file.id not in [f.id for f in await files.stale(NOW, 10)]
    await files.outbox.mark_sent(pending)
    assert file.id in [f.id for f in await files.stale(NOW, 10)]


async def test_listing_is_per_owner_newest_first_in_pages_without_deleted_files(files):
    mine = [_file("me", minutes=i) for i in range(5)]
    for f in [*mine, _file("other")]:
        await files.insert(f)
    await files.save(replace(mine[0], state=State.DELETED), State.UPLOADING, [])
    page, cursor = await files.list("me", None, 2)
    rest, end = await files.list("me", cursor, 10)
    assert [f.id for f in page + rest] == [f.id for f in reversed(mine[1:])]
    assert end is None


async def test_a_processing_file_is_claimed_by_one_worker_until_its_lease_ends(files):
    file = _file()
    await files.insert(file)
    done = domain.completed(file, domain.Inspection("image/png", 2, 3), 90, "ab", NOW)
    await files.save(done, State.UPLOADING, [])
    assert (await files.claim_processing(NOW, 60)).id == file.id
    assert await files.claim_processing(NOW + timedelta(seconds=30), 60) is None
    assert (await files.claim_processing(NOW + timedelta(seconds=61), 60)).id == file.id


async def test_expired_uploads_are_stale(files):
    old = _file(expire_time=NOW - timedelta(seconds=1))
    fresh = _file()
    await files.insert(old)
    await files.insert(fresh)
    assert [f.id for f in await files.stale(NOW, 10)] == [old.id]


async def test_quota_holds_never_overshoot_and_each_change_applies_once(files):
    assert await files.reserve("q", "f1", 600, 1000)
    assert await files.reserve("q", "f1", 600, 1000)  # a retry holds nothing more
    assert not await files.reserve("q", "f2", 500, 1000)
    assert await files.usage("q") == 600
    await files.resize("q", "f1", 400)
    await files.resize("q", "f1", 400)
    assert await files.reserve("q", "f2", 500, 1000)
    assert await files.usage("q") == 900
    await files.release("q", "f1")
    await files.release("q", "f1")
    assert await files.usage("q") == 500
    assert not await files.reserve("r", "f3", 1001, 1000)
    assert await files.usage("r") == 0


async def test_racing_reservations_stay_within_the_quota(files):
    results = await asyncio.gather(*(files.reserve("race", f"f{i}", 300, 1000) for i in range(8)))
    assert sum(results) == 3
    assert await files.usage("race") == 900


# --- object store contract -------------------------------------------------------------------


async def test_a_signed_post_stores_the_bytes_and_head_read_delete_follow(store, http):
    key = f"uploads/{uuid.uuid4()}"
    data = samples.png()
    form = await store.signed_post(key, "image/png", len(data), 60)
    assert await asyncio.to_thread(_post, http, store, form, data, "image/png")
    head = await store.head(key)
    assert (head.size, head.content_type) == (len(data), "image/png")
    assert await store.read(key, len(data) + 1) == data
    assert await store.read(key, 10) == data[:10]
    await store.delete([key, "uploads/missing"])
    assert await store.head(key) is None


async def test_a_body_above_the_signed_size_is_refused_by_the_store(store, http):
    key = f"uploads/{uuid.uuid4()}"
    form = await store.signed_post(key, "image/png", 100, 60)
    assert not await asyncio.to_thread(_post, http, store, form, b"x" * 101, "image/png")
    assert await store.head(key) is None


# --- what only the real store proves ---------------------------------------------------------


async def test_the_store_refuses_a_post_to_another_key_than_the_signed_one(s3, http):
    form = await s3.signed_post(f"uploads/{uuid.uuid4()}", "image/png", 100, 60)
    forged = {**form.fields, "key": "public/forged/original"}
    answer = http.post(form.url, data=forged, files={"file": ("f", b"x", "image/png")})
    assert answer.status_code == 403
    assert await s3.head("public/forged/original") is None


async def test_public_keys_are_readable_by_anyone_private_ones_only_signed(s3, http):
    await s3.put("public/p1/original", b"public bytes", "image/png")
    await s3.put("private/p1/original", b"private bytes", "image/png")
    answer = http.get(s3.public_url("public/p1/original"))
    assert (answer.status_code, answer.content) == (200, b"public bytes")
    assert answer.headers["content-type"] == "image/png"
    assert http.get(s3.public_url("private/p1/original")).status_code == 403
    signed = await s3.signed_get("private/p1/original", 60)
    assert http.get(signed).content == b"private bytes"


async def test_signed_urls_and_forms_carry_the_endpoint_clients_use_and_work_there(
    s3, s3_endpoint, http
):
    # The service reaches the store as 127.0.0.1; its clients know it as localhost (in
    # Compose or Kubernetes: an internal service name and a public host).
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    settings = replace(_s3_settings(s3_endpoint), client_endpoint=public)
    store = await S3ObjectStore.open(settings)
    await store.put("private/c1/original", b"for the client", "text/plain")
    signed = await store.signed_get("private/c1/original", 60)
    assert signed.startswith(public + "/")
    assert http.get(signed).content == b"for the client"
    form = await store.signed_post("private/c2/original", "text/plain", 100, 60)
    assert form.url.startswith(public + "/")
    assert _post(http, store, form, b"uploaded", "text/plain")
    assert await store.read("private/c2/original", 100) == b"uploaded"


async def test_a_tampered_or_expired_signed_url_gets_403_from_the_store(s3, http):
    await s3.put("private/p2/original", b"secret", "application/pdf")
    await s3.put("private/p3/original", b"other", "application/pdf")
    signed = await s3.signed_get("private/p2/original", 1)
    assert http.get(signed.replace("private/p2/", "private/p3/")).status_code == 403
    assert http.get(signed.replace("X-Amz-Expires=1", "X-Amz-Expires=9")).status_code == 403
    await asyncio.sleep(2.2)
    expired = http.get(signed)
    assert expired.status_code == 403
    assert b"expired" in expired.content.lower()
