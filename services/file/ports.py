"""What the file service's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kit.events import Event
from services.file.domain import File, State

# A cursor of a listing (create time in ms and the file id), or None for the first page.
Cursor = dict[str, Any]


class FileRepository(Protocol):
    """File metadata, the events of each change (outbox) and the users' storage usage."""

    async def insert(self, file: File) -> None: ...

    async def get(self, file_id: str) -> File | None:
        """The file, DELETED ones included (handlers hide them)."""
        ...

    async def save(self, file: File, expected: State, events: Sequence[Event]) -> bool:
        """Stores `file` and its events if the stored file is still in state `expected`;
        False (nothing stored) if another write won."""
        ...

    async def remove(self, file_id: str) -> None:
        """Forgets the file entirely (a refused upload, a purged deletion)."""
        ...

    async def list(
        self, owner_id: str, cursor: Cursor | None, limit: int
    ) -> tuple[list[File], Cursor | None]:
        """The owner's files that are not DELETED, newest first, after `cursor`."""
        ...

    async def claim_processing(self, now: datetime, lease_seconds: float) -> File | None:
        """A PROCESSING file nobody works on (or whose worker's lease ran out), leased to the
        caller until now + lease_seconds; None when there is none."""
        ...

    async def stale(self, now: datetime, limit: int) -> list[File]:
        """UPLOADING files past their expire_time, and DELETED files with no pending event."""
        ...

    # Quota: per owner, a total and the hold of each file (so every change is idempotent).

    async def reserve(self, owner_id: str, file_id: str, size: int, quota: int) -> bool:
        """Holds `size` bytes of `owner_id`'s quota for the file unless the total would
        exceed `quota`; False (nothing held) then."""
        ...

    async def resize(self, owner_id: str, file_id: str, size: int) -> None:
        """Sets the file's hold to `size` (its real size once uploaded)."""
        ...

    async def release(self, owner_id: str, file_id: str) -> None:
        """Drops the file's hold, if any."""
        ...

    async def usage(self, owner_id: str) -> int:
        """Bytes held by the owner's files."""
        ...


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str


@dataclass(frozen=True)
class SignedPost:
    url: str
    fields: dict[str, str]


class ObjectStore(Protocol):
    """The bucket of bytes (S3 API). Keys under public/ are readable by anyone."""

    async def signed_post(
        self, key: str, content_type: str, max_bytes: int, expires_seconds: int
    ) -> SignedPost:
        """A form that lets a client POST 1 to max_bytes bytes of content_type to key."""
        ...

    async def signed_get(self, key: str, expires_seconds: int) -> str: ...

    def public_url(self, key: str) -> str: ...

    async def head(self, key: str) -> StoredObject | None: ...

    async def read(self, key: str, max_bytes: int) -> bytes:
        """The object's bytes (at most max_bytes are read)."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Deletes the keys; missing ones are fine."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
