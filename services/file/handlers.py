"""The file service's use cases: uploads, their completion, reads, deletion, thumbnails, sweeps.

An upload goes to a staging key (`uploads/<id>`) that only the signed form can write. At
completion the service reads those bytes, checks them (domain.inspect) and writes exactly the
bytes it checked to the file's final key, then drops the staging object: a client re-posting
the still-valid form after completion can change nothing that is served. A refused upload
leaves nothing behind: no object, no metadata, no quota held.

Quota holds are taken before the form is signed and are idempotent per file (ports), so a
crash anywhere leaves at worst an UPLOADING file past its expiry, which the sweeper removes
with its hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kit import errors
from kit.auth import Principal
from services.file import domain, mapping
from services.file.config import Limits
from services.file.domain import File, Purpose, Refused, State
from services.file.ports import Clock, Cursor, FileRepository, ObjectStore, SignedPost

log = logging.getLogger("emporium.file")

QUOTA_NAME = "storage_bytes_per_user"
MIN_TTL, MAX_TTL, DEFAULT_TTL = 1, 3600, 300
LEASE_SECONDS = 60.0


def staging_key(file_id: str) -> str:
    return f"uploads/{file_id}"


@dataclass(frozen=True)
class CreateUpload:
    purpose: Purpose | None
    filename: str
    content_type: str
    size_bytes: int
    product_id: str = ""
    alt_text: str = ""


@dataclass(frozen=True)
class StartedUpload:
    file: File
    form: SignedPost
    max_size_bytes: int
    expire_time: datetime


class FileHandlers:
    def __init__(
        self, *, files: FileRepository, store: ObjectStore, clock: Clock, limits: Limits
    ) -> None:
        self.files = files
        self.store = store
        self.clock = clock
        self.limits = limits
        self.work = asyncio.Event()  # set when a file waits for its thumbnails

    # --- uploads ------------------------------------------------------------------------------

    async def create_upload(self, caller: Principal, request: CreateUpload) -> StartedUpload:
        bad = domain.upload_problems(
            purpose=request.purpose,
            filename=request.filename,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            product_id=request.product_id,
            alt_text=request.alt_text,
            max_bytes=self.limits.max_bytes,
        )
        if bad:
            raise errors.InvalidArgument(violations=bad)
        assert request.purpose is not None
        if request.purpose is Purpose.PRODUCT_IMAGE and not caller.admin:
            raise errors.PermissionDenied("only admins upload product images")
        now = self.clock.now()
        ttl = self.limits.upload_ttl_seconds
        file = domain.new_file(
            owner_id=caller.user_id,
            purpose=request.purpose,
            filename=request.filename,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            product_id=request.product_id.strip(),
            alt_text=request.alt_text,
            now=now,
            expire_time=now + timedelta(seconds=ttl),
        )
        # The file first, then its hold: a crash between leaves an expiring file, never a hold
        # without a file.
        await self.files.insert(file)
        quota = self.limits.quota_bytes
        if not await self.files.reserve(file.owner_id, file.id, file.size_bytes, quota):
            await self.files.remove(file.id)
            used = await self.files.usage(file.owner_id)
            raise errors.ResourceExhausted(
                f"storage quota exceeded: {QUOTA_NAME} is {quota} bytes, {used} are used and "
                f"this upload needs {file.size_bytes}",
                reason="STORAGE_QUOTA_EXCEEDED",
                metadata={"quota": QUOTA_NAME, "limit": str(quota), "used": str(used)},
            )
        form = await self.store.signed_post(
            staging_key(file.id), file.content_type, file.size_bytes, ttl
        )
        return StartedUpload(file, form, file.size_bytes, file.expire_time)

    async def complete_upload(self, caller: Principal, file_id: str) -> File:
        file = await self._visible(caller, file_id)
        if file.state is not State.UPLOADING:
            return file
        staged = await self.store.head(staging_key(file.id))
        if staged is None:
            raise errors.FailedPrecondition(
                "the bytes have not arrived: POST them with the upload form first",
                reason="UPLOAD_MISSING",
            )
        data = await self.store.read(staging_key(file.id), file.size_bytes + 1)
        try:
            if len(data) > file.size_bytes:
                raise Refused("TOO_LARGE", f"the upload is larger than {file.size_bytes} bytes")
            inspection = await asyncio.to_thread(
                domain.inspect, data, file.content_type, self.limits.max_image_pixels
            )
        except Refused as refused:
            await self._forget(file)
            error = errors.InvalidArgument("content", refused.message)
            error.reason = refused.reason
            raise error from None
        done = domain.completed(
            file, inspection, len(data), hashlib.sha256(data).hexdigest(), self.clock.now()
        )
        await self.store.put(done.object_key(), data, done.content_type)
        ready = done.state is State.READY
        events = [mapping.uploaded(done, self.store.public_url)] if ready else []
        if not await self.files.save(done, State.UPLOADING, events):
            current = await self.files.get(file.id)
            if current is None or current.state in (State.UPLOADING, State.DELETED):
                raise errors.NotFound(f"file {file_id} does not exist")
            return current
        await self.files.resize(done.owner_id, done.id, done.size_bytes)
        await self.store.delete([staging_key(file.id)])
        if done.state is State.PROCESSING:
            self.work.set()
        return done

    def _keys(self, file: File) -> list[str]:
        """Every object the file may have: staged, original, each thumbnail size (a worker
        may have written thumbnails the record does not list yet)."""
        sizes = {t.size for t in file.thumbnails} | set(self.limits.thumbnail_sizes)
        return [
            staging_key(file.id),
            file.object_key(),
            *(file.object_key(s) for s in sorted(sizes)),
        ]

    async def _forget(self, file: File) -> None:
        """Removes every trace of a refused, abandoned or deleted file."""
        await self.store.delete(self._keys(file))
        await self.files.release(file.owner_id, file.id)
        await self.files.remove(file.id)

    # --- reads --------------------------------------------------------------------------------

    async def _visible(self, caller: Principal, file_id: str) -> File:
        file = await self.files.get(file_id) if file_id.strip() else None
        if file is None or not file.visible_to(caller.user_id, caller.admin):
            raise errors.NotFound(f"file {file_id} does not exist")
        return file

    async def get_file(self, caller: Principal, file_id: str) -> File:
        if not file_id.strip():
            raise errors.InvalidArgument("id", "is required")
        return await self._visible(caller, file_id)

    async def list_files(
        self, caller: Principal, cursor: Cursor | None, limit: int
    ) -> tuple[list[File], Cursor | None]:
        return await self.files.list(caller.user_id, cursor, limit)

    async def download_url(
        self, caller: Principal, file_id: str, thumbnail_size: int, ttl_seconds: float | None
    ) -> tuple[str, datetime]:
        ttl = DEFAULT_TTL if ttl_seconds is None else ttl_seconds
        if not MIN_TTL <= ttl <= MAX_TTL:
            raise errors.InvalidArgument("ttl", f"must be between {MIN_TTL} s and {MAX_TTL} s")
        file = await self._visible(caller, file_id)
        if file.state is State.UPLOADING:
            raise errors.FailedPrecondition("the upload is not complete", reason="NOT_UPLOADED")
        if thumbnail_size and thumbnail_size not in {t.size for t in file.thumbnails}:
            raise errors.NotFound(f"file {file_id} has no {thumbnail_size} px thumbnail")
        seconds = int(ttl)
        url = await self.store.signed_get(file.object_key(thumbnail_size), seconds)
        return url, self.clock.now() + timedelta(seconds=seconds)

    # --- deletion -----------------------------------------------------------------------------

    async def delete_file(self, caller: Principal, file_id: str) -> None:
        for _ in range(10):
            file = await self._visible(caller, file_id)
            if file.purpose is Purpose.PRODUCT_IMAGE and not caller.admin:
                raise errors.PermissionDenied("only admins delete product images")
            gone = replace(file, state=State.DELETED, update_time=self.clock.now())
            if await self.files.save(gone, file.state, [mapping.deleted(gone)]):
                # The objects and the hold go now; the record stays until the sweeper sees its
                # FileDeleted published (a crash here leaves that work to it as well).
                await self.store.delete(self._keys(gone))
                await self.files.release(gone.owner_id, gone.id)
                return
        raise errors.Aborted("the file kept changing; retry", reason="FILE_BUSY")

    # --- background work ----------------------------------------------------------------------

    async def make_thumbnails(self) -> bool:
        """Makes the thumbnails of one PROCESSING image and publishes FileUploaded; False when
        there was nothing to do."""
        file = await self.files.claim_processing(self.clock.now(), LEASE_SECONDS)
        if file is None:
            return False
        data = await self.store.read(file.object_key(), file.size_bytes)
        made = await asyncio.to_thread(domain.thumbnails, data, self.limits.thumbnail_sizes)
        for thumbnail, body in made:
            await self.store.put(file.object_key(thumbnail.size), body, thumbnail.content_type)
        ready = replace(
            file,
            state=State.READY,
            thumbnails=tuple(t for t, _ in made),
            update_time=self.clock.now(),
        )
        event = mapping.uploaded(ready, self.store.public_url)
        if not await self.files.save(ready, State.PROCESSING, [event]):
            # Deleted meanwhile (or finished by another worker): drop what this one wrote
            # unless the file is READY with these very objects.
            current = await self.files.get(file.id)
            if current is None or current.state is not State.READY:
                await self.store.delete([file.object_key(t.size) for t, _ in made])
        return True

    async def thumbnail_worker(self, idle_seconds: float) -> None:
        """Runs for ever: thumbnails as soon as CompleteUpload announces work, and at least
        every idle_seconds for work a crashed replica left behind."""
        while True:
            self.work.clear()
            try:
                while await self.make_thumbnails():
                    pass
            except Exception:
                log.exception("thumbnails failed; retrying after the lease")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.work.wait(), idle_seconds)

    async def sweep(self) -> int:
        """Removes abandoned uploads and purges deleted files whose event has been published."""
        stale = await self.files.stale(self.clock.now(), 100)
        for file in stale:
            await self._forget(file)
        return len(stale)
