"""Argon2id password hashing (argon2-cffi), off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import os

import argon2


class Argon2Hasher:
    """RFC 9106's second recommended profile by default: 64 MiB, 3 passes, 4 lanes.

    Each hash takes tens of milliseconds of CPU and its memory, so hashing runs in worker
    threads (argon2-cffi releases the GIL) and at most `concurrency` at once: a burst of logins
    queues instead of exhausting memory.
    """

    def __init__(self, hasher: argon2.PasswordHasher | None = None, concurrency: int = 0) -> None:
        self.hasher = hasher or argon2.PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency or os.cpu_count() or 2)

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self.hasher.verify, password_hash, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)
