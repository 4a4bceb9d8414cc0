"""In-memory adapters for unit tests: the file repository and the object store.

`InMemoryFileRepository` passes the same contract tests as the MongoDB one and
`InMemoryObjectStore` the same as the S3 one (tests/integration/test_file_on_servers.py); the
fake store does not check signatures (the real one does, in the integration and e2e tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from kit.events import Event
from kit.outbox import InMemoryOutbox
from services.file.domain import File, State
from services.file.ports import Cursor, SignedPost, StoredObject


def _cursor_key(file: File) -> tuple[int, str]:
    return (int(file.create_time.timestamp() * 1000), file.id)


class InMemoryFileRepository:
    def __init__(self) -> None:
        self.files: dict[str, File] = {}
        self.leases: dict[str, datetime] = {}
        self.holds: dict[str, dict[str, int]] = {}
        self.outbox = InMemoryOutbox()
        self.event_files: dict[str, str] = {}  # event id -> file id (for `stale`)
        self.published: list[Event] = []

    async def insert(self, file: File) -> None:
        self.files[file.id] = file

    async def get(self, file_id: str) -> File | None:
        return self.files.get(file_id)

    async def save(self, file: File, expected: State, events: Sequence[Event]) -> bool:
        stored = self.files.get(file.id)
        if stored is None or stored.state is not expected:
            return False
        self.files[file.id] = file
        self.leases.pop(file.id, None)
        self.outbox.add(events, key=file.id)
        self.published.extend(events)
        self.event_files.update({e.id: file.id for e in events})
        self.outbox.notify()
        return True

    async def remove(self, file_id: str) -> None:
        self.files.pop(file_id, None)
        self.leases.pop(file_id, None)

    async def list(self, owner_id: str, cursor: Cursor | None, limit: int):
        rows = sorted(
            (
                f
                for f in self.files.values()
                if f.owner_id == owner_id and f.state is not State.DELETED
            ),
            key=_cursor_key,
            reverse=True,
        )
        if cursor is not None:
            rows = [f for f in rows if _cursor_key(f) < (cursor["t"], cursor["id"])]
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        t, id_ = _cursor_key(page[-1])
        return page, {"t": t, "id": id_}

    async def claim_processing(self, now: datetime, lease_seconds: float) -> File | None:
        for file in self.files.values():
            lease = self.leases.get(file.id)
            if file.state is State.PROCESSING and (lease is None or lease < now):
                self.leases[file.id] = now + timedelta(seconds=lease_seconds)
                return file
        return None

    async def stale(self, now: datetime, limit: int) -> list[File]:
        unsent = {self.event_files.get(e.id) for e in await self.outbox.pending(10_000)}
        out = []
        for file in self.files.values():
            abandoned = file.state is State.UPLOADING and file.expire_time < now
            purged = file.state is State.DELETED and file.id not in unsent
            if abandoned or purged:
                out.append(file)
        return out[:limit]

    async def reserve(self, owner_id: str, file_id: str, size: int, quota: int) -> bool:
        holds = self.holds.setdefault(owner_id, {})
        if file_id in holds:
            return True
        if sum(holds.values()) + size > quota:
            return False
        holds[file_id] = size
        return True

    async def resize(self, owner_id: str, file_id: str, size: int) -> None:
        holds = self.holds.setdefault(owner_id, {})
        if file_id in holds:
            holds[file_id] = size

    async def release(self, owner_id: str, file_id: str) -> None:
        self.holds.get(owner_id, {}).pop(file_id, None)

    async def usage(self, owner_id: str) -> int:
        return sum(self.holds.get(owner_id, {}).values())


class InMemoryObjectStore:
    """A dict of key -> (bytes, content type); `upload` plays the client's signed POST."""

    def __init__(self, public_base: str = "http://store.test/bucket") -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.forms: dict[str, tuple[str, int]] = {}
        self.public_base = public_base

    async def signed_post(self, key, content_type, max_bytes, expires_seconds) -> SignedPost:
        self.forms[key] = (content_type, max_bytes)
        return SignedPost(f"{self.public_base}", {"key": key, "Content-Type": content_type})

    def upload(self, key: str, data: bytes) -> bool:
        """What the real store does with a POST of the form: refuses a body over the limit."""
        content_type, max_bytes = self.forms[key]
        if not 1 <= len(data) <= max_bytes:
            return False
        self.objects[key] = (data, content_type)
        return True

    async def signed_get(self, key: str, expires_seconds: int) -> str:
        return f"{self.public_base}/{key}?X-Amz-Expires={expires_seconds}&X-Amz-Signature=fake"

    def public_url(self, key: str) -> str:
        return f"{self.public_base}/{key}"

    async def head(self, key: str) -> StoredObject | None:
        found = self.objects.get(key)
        return StoredObject(len(found[0]), found[1]) if found else None

    async def read(self, key: str, max_bytes: int) -> bytes:
        return self.objects[key][0][:max_bytes]

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = (bytes(data), content_type)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)
