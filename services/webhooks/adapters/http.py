"""The Sender port over kit.ssrf: every URL and every connection passes the SSRF guard."""

from __future__ import annotations

from kit.ssrf import GuardedHttp, UrlGuard
from services.webhooks.ports import Reply

# Read at most this much of a response: the first 4 KiB are kept, the rest is never read.
MAX_RESPONSE_BYTES = 64 * 1024


class HttpSender:
    def __init__(self, guard: UrlGuard, *, timeout: float, max_connections: int = 100) -> None:
        self.guard = guard
        self.timeout = timeout
        self._http = GuardedHttp(
            guard, max_response_bytes=MAX_RESPONSE_BYTES, max_connections=max_connections
        )

    async def check_url(self, url: str) -> None:
        await self.guard.check(url)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Reply:
        r = await self._http.post(url, body, headers, timeout=self.timeout)
        return Reply(r.status_code, r.body, r.headers, r.latency, r.error)

    async def aclose(self) -> None:
        await self._http.aclose()
