"""The file service over real gRPC, with the in-memory repository and object store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import file_samples as samples
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.file.v1 import file_events_pb2, file_pb2, file_service_pb2, file_service_pb2_grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from kit import auth, server
from kit.auth import Principal
from kit.clock import SystemClock
from services.file import bootstrap
from services.file.adapters.memory import InMemoryFileRepository, InMemoryObjectStore
from services.file.config import Limits, Settings
from services.file.domain import Purpose, State
from services.file.handlers import CreateUpload, FileHandlers, staging_key

ISSUER, AUDIENCE = "emporium-user", "emporium"
F = file_pb2.File
QUOTA = 1_000_000


class Tokens:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}

    async def source(self) -> bytes:
        return json.dumps(self.jwks).encode()

    def token(self, user_id: str, admin: bool = False) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
                  "roles": ["customer", "admin"] if admin else ["customer"]}  # fmt: skip
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})


class User:
    def __init__(self, world: World, admin: bool = False) -> None:
        self.world = world
        self.id = str(uuid.uuid4())
        self.metadata = [("authorization", f"Bearer {world.tokens.token(self.id, admin)}")]

    async def create(self, data: bytes = b"", **fields: Any) -> file_pb2.Upload:
        request = file_service_pb2.CreateUploadRequest(
            purpose=fields.pop("purpose", F.PURPOSE_USER_UPLOAD),
            filename=fields.pop("filename", "picture.png"),
            content_type=fields.pop("content_type", "image/png"),
            size_bytes=fields.pop("size_bytes", len(data) or 1000),
            **fields,
        )
        return await self.world.stub.CreateUpload(request, metadata=self.metadata)

    async def upload(self, data: bytes, **fields: Any) -> file_pb2.File:
        """Creates an upload, POSTs the bytes as the client would, completes it."""
        started = await self.create(data, **fields)
        assert self.world.store.upload(started.fields["key"], data)
        return await self.complete(started.file.id)

    async def complete(self, file_id: str) -> file_pb2.File:
        return await self.world.stub.CompleteUpload(
            file_service_pb2.CompleteUploadRequest(id=file_id), metadata=self.metadata
        )

    async def get(self, file_id: str) -> file_pb2.File:
        return await self.world.stub.GetFile(
            file_service_pb2.GetFileRequest(id=file_id), metadata=self.metadata
        )

    async def list(self, **fields: Any) -> file_service_pb2.ListFilesResponse:
        return await self.world.stub.ListFiles(
            file_service_pb2.ListFilesRequest(**fields), metadata=self.metadata
        )

    async def delete(self, file_id: str) -> None:
        await self.world.stub.DeleteFile(
            file_service_pb2.DeleteFileRequest(id=file_id), metadata=self.metadata
        )

    async def download(self, file_id: str, **fields: Any):
        return await self.world.stub.GenerateDownloadUrl(
            file_service_pb2.GenerateDownloadUrlRequest(id=file_id, **fields),
            metadata=self.metadata,
        )


class World:
    def __init__(self, channel, tokens, files, store, handlers) -> None:
        self.handlers: FileHandlers = handlers
        self.stub = file_service_pb2_grpc.FileServiceStub(channel)
        self.tokens = tokens
        self.files: InMemoryFileRepository = files
        self.store: InMemoryObjectStore = store

    def user(self, admin: bool = False) -> User:
        return User(self, admin)

    async def ready(self, user: User, file_id: str) -> file_pb2.File:
        for _ in range(200):
            file = await user.get(file_id)
            if file.state == F.STATE_READY:
                return file
            await asyncio.sleep(0.02)
        raise AssertionError(f"file {file_id} never became READY")

    def events(self, type_) -> list:
        name = type_.DESCRIPTOR.full_name
        return [e.decode() for e in self.files.published if e.type == name]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_FILE_GRPC_PORT": "0",
            "EMPORIUM_S3_ACCESS_KEY": "test",
            "EMPORIUM_S3_SECRET_KEY": "test",
            "EMPORIUM_FILE_QUOTA_BYTES": str(QUOTA),
            "EMPORIUM_FILE_MAX_BYTES": "500000",
            "EMPORIUM_FILE_MAX_IMAGE_PIXELS": "4000000",
        }
    )
    tokens = Tokens()
    files, store = InMemoryFileRepository(), InMemoryObjectStore()
    app = await bootstrap.build(
        settings,
        bus=None,
        files=files,
        store=store,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    # The thumbnail workers and the sweeper, as kit.server.serve runs them.
    tasks = [asyncio.create_task(work()) for work in app.background]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, files, store, app.handlers)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _details(error: grpc.aio.AioRpcError) -> tuple[dict[str, str], list[str]]:
    """(ErrorInfo reason + metadata, the BadRequest fields) of a rich error."""
    status = rpc_status.from_call(error)
    info, fields = {}, []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            unpacked = error_details_pb2.ErrorInfo()
            detail.Unpack(unpacked)
            info = {"reason": unpacked.reason, **unpacked.metadata}
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            unpacked = error_details_pb2.BadRequest()
            detail.Unpack(unpacked)
            fields = [v.field for v in unpacked.field_violations]
    return info, fields


async def test_an_upload_hands_out_a_form_limited_to_the_declared_size_and_type(world):
    user = world.user()
    started = await user.create(size_bytes=2000, content_type="image/png")
    assert started.method == "POST"
    assert started.max_size_bytes == 2000
    assert started.file.state == F.STATE_UPLOADING
    assert started.fields["key"] == staging_key(started.file.id)
    assert not world.store.upload(started.fields["key"], b"x" * 2001)


async def test_a_completed_private_image_gets_thumbnails_and_publishes_file_uploaded(world):
    user = world.user()
    file = await user.upload(samples.jpeg(800, 600), content_type="image/jpeg")
    assert file.state == F.STATE_PROCESSING
    assert (file.width, file.height) == (800, 600)
    ready = await world.ready(user, file.id)
    assert [(t.size, t.width, t.height) for t in ready.thumbnails] == [
        (128, 128, 96), (256, 256, 192), (512, 512, 384)]  # fmt: skip
    assert ready.uri == ""
    assert all(t.uri == "" for t in ready.thumbnails)
    [event] = world.events(file_events_pb2.FileUploaded)
    assert event.file.id == file.id
    assert len(event.file.thumbnails) == 3
    # The staging object is gone; the checked bytes and the thumbnails are stored.
    keys = set(world.store.objects)
    assert staging_key(file.id) not in keys
    assert f"private/{file.id}/original" in keys
    assert f"private/{file.id}/thumb-128.webp" in keys


async def test_completing_twice_returns_the_file_unchanged(world):
    user = world.user()
    file = await user.upload(samples.png())
    again = await user.complete(file.id)
    assert again.id == file.id
    assert again.state in (F.STATE_PROCESSING, F.STATE_READY)


async def test_a_pdf_is_ready_at_once_without_thumbnails(world):
    user = world.user()
    file = await user.upload(samples.pdf(), content_type="application/pdf", filename="a.pdf")
    assert file.state == F.STATE_READY
    assert not file.thumbnails


async def test_completing_before_the_bytes_arrived_fails_precondition(world):
    user = world.user()
    started = await user.create(samples.png())
    error = await _error(user.complete(started.file.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (samples.not_an_image(), "image/png", "CONTENT_TYPE_MISMATCH"),
        (samples.jpeg(), "image/png", "CONTENT_TYPE_MISMATCH"),
        (samples.bomb(3000), "image/png", "IMAGE_TOO_LARGE"),
        (samples.zip_polyglot(), "image/png", "POLYGLOT"),
        (samples.html_polyglot(), "image/png", "POLYGLOT"),
    ],
    ids=["not-an-image", "lying-type", "bomb", "zip-polyglot", "html-polyglot"],
)
async def test_refused_bytes_leave_no_object_no_file_and_no_quota_behind(
    world, data, content_type, reason
):
    user = world.user()
    started = await user.create(data, content_type=content_type)
    assert world.store.upload(started.fields["key"], data)
    error = await _error(user.complete(started.file.id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, fields = _details(error)
    assert info["reason"] == reason
    assert fields == ["content"]
    assert world.store.objects == {}
    assert (await _error(user.get(started.file.id))).code() == grpc.StatusCode.NOT_FOUND
    assert await world.files.usage(user.id) == 0
    assert world.events(file_events_pb2.FileUploaded) == []


async def test_bad_upload_requests_name_every_bad_field(world):
    user = world.user()
    error = await _error(
        user.create(
            purpose=F.PURPOSE_UNSPECIFIED,
            filename="../etc/passwd",
            content_type="text/html",
            size_bytes=0,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, fields = _details(error)
    assert fields == ["purpose", "filename", "content_type", "size_bytes"]


async def test_a_file_above_the_per_file_limit_is_refused(world):
    error = await _error(world.user().create(size_bytes=500_001))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(error)[1] == ["size_bytes"]


async def test_an_upload_past_the_quota_is_resource_exhausted_naming_the_quota(world):
    user = world.user()
    await user.create(size_bytes=400_000)
    await user.create(size_bytes=400_000)
    error = await _error(user.create(size_bytes=400_000))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info, _ = _details(error)
    assert info["reason"] == "STORAGE_QUOTA_EXCEEDED"
    assert info["quota"] == "storage_bytes_per_user"
    assert info["limit"] == str(QUOTA)
    assert "storage_bytes_per_user" in error.details()
    # Another user has a quota of their own.
    await world.user().create(size_bytes=400_000)


async def test_deleting_a_file_releases_its_quota_and_publishes_file_deleted(world):
    user = world.user()
    file = await user.upload(samples.png())
    await world.ready(user, file.id)
    assert await world.files.usage(user.id) == file.size_bytes
    await user.delete(file.id)
    assert await world.files.usage(user.id) == 0
    assert (await _error(user.get(file.id))).code() == grpc.StatusCode.NOT_FOUND
    assert [e.file_id for e in world.events(file_events_pb2.FileDeleted)] == [file.id]
    assert world.store.objects == {}


async def test_another_user_cannot_read_list_delete_or_download_a_file(world):
    alice, bob = world.user(), world.user()
    file = await alice.upload(samples.png())
    for call in (bob.get(file.id), bob.delete(file.id), bob.download(file.id),
                 bob.complete(file.id)):  # fmt: skip
        assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND
    assert (await bob.list()).files == []
    assert [f.id for f in (await alice.list()).files] == [file.id]
    # Admins reach every file.
    assert (await world.user(admin=True).get(file.id)).id == file.id


async def test_only_admins_create_product_images_which_are_public(world):
    user, admin = world.user(), world.user(admin=True)
    fields = {"purpose": F.PURPOSE_PRODUCT_IMAGE, "product_id": "p1", "alt_text": "Red mug"}
    error = await _error(user.create(samples.png(), **fields))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    file = await admin.upload(samples.png(), **fields)
    ready = await world.ready(admin, file.id)
    assert ready.uri == f"http://store.test/bucket/public/{file.id}/original"
    assert ready.thumbnails[0].uri.endswith(f"public/{file.id}/thumb-128.webp")
    assert ready.product_id == "p1"
    assert ready.alt_text == "Red mug"


async def test_a_product_image_needs_a_product(world):
    error = await _error(world.user(admin=True).create(purpose=F.PURPOSE_PRODUCT_IMAGE))
    assert _details(error)[1] == ["product_id"]


async def test_download_urls_are_signed_for_a_bounded_time(world):
    user = world.user()
    file = await user.upload(samples.png())
    answer = await user.download(file.id, ttl=duration_pb2.Duration(seconds=60))
    assert f"private/{file.id}/original" in answer.url
    assert "X-Amz-Expires=60" in answer.url
    error = await _error(user.download(file.id, ttl=duration_pb2.Duration(seconds=7200)))
    assert _details(error)[1] == ["ttl"]
    error = await _error(user.download(file.id, thumbnail_size=999))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_listing_pages_newest_first(world):
    user = world.user()
    ids = [(await user.create(size_bytes=10)).file.id for _ in range(5)]
    first = await user.list(page_size=2)
    second = await user.list(page_size=2, page_token=first.next_page_token)
    third = await user.list(page_size=2, page_token=second.next_page_token)
    seen = [f.id for page in (first, second, third) for f in page.files]
    assert sorted(seen) == sorted(ids)
    assert third.next_page_token == ""


async def test_an_abandoned_upload_is_swept_with_its_bytes_and_its_hold(world):
    user = world.user()
    started = await user.create(samples.png())
    world.store.upload(started.fields["key"], samples.png())
    stored = world.files.files[started.file.id]
    world.files.files[stored.id] = replace(stored, expire_time=stored.create_time - timedelta(1))
    assert await world.files.usage(user.id) > 0
    assert await world.handlers.sweep() == 1
    assert await world.files.usage(user.id) == 0
    assert world.store.objects == {}
    assert world.files.files == {}


async def test_a_deleted_file_is_purged_once_its_event_is_published(world):
    user = world.user()
    file = await user.upload(samples.pdf(), content_type="application/pdf", filename="a.pdf")
    await user.delete(file.id)
    assert await world.handlers.sweep() == 0  # FileUploaded/FileDeleted still in the outbox
    await world.files.outbox.mark_sent(await world.files.outbox.pending())
    assert await world.handlers.sweep() == 1
    assert world.files.files == {}


async def test_a_file_deleted_while_its_thumbnails_are_made_leaves_no_object_behind():
    files, store = InMemoryFileRepository(), InMemoryObjectStore()
    handlers = FileHandlers(files=files, store=store, clock=SystemClock(), limits=Limits())
    owner = Principal("owner-1")
    data = samples.png()
    started = await handlers.create_upload(
        owner, CreateUpload(Purpose.USER_UPLOAD, "a.png", "image/png", len(data))
    )
    store.upload(started.form.fields["key"], data)
    await handlers.complete_upload(owner, started.file.id)
    put = store.put

    async def put_then_delete(key: str, body: bytes, content_type: str) -> None:
        await put(key, body, content_type)
        if key.endswith("thumb-128.webp"):  # the owner deletes it mid-way
            await handlers.delete_file(owner, started.file.id)

    store.put = put_then_delete  # type: ignore[method-assign]
    assert await handlers.make_thumbnails()
    assert store.objects == {}
    assert files.files[started.file.id].state is State.DELETED
