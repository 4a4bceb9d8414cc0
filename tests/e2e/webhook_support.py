"""Webhook receivers on 127.0.0.1 for the e2e tests, and the admin calls they make."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from tests.e2e.checkout_support import ok


class Receiver:
    """An HTTP server on 127.0.0.1 that records each request and answers by a rule.

    `answer(webhook_id, nth)` gives the status for the nth request (1-based) of a webhook-id;
    200 by default. `delay` seconds are slept before answering.
    """

    def __init__(self, answer: Callable[[str, int], int] | None = None, delay: float = 0.0) -> None:
        self.answer = answer or (lambda webhook_id, nth: 200)
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.succeeded: Counter[str] = Counter()  # 2xx answers per webhook-id
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived, wall = time.monotonic(), time.time()
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                webhook_id = headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.seen[webhook_id] += 1
                    status = receiver.answer(webhook_id, receiver.seen[webhook_id])
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver.lock:
                    if 200 <= status < 300:
                        receiver.succeeded[webhook_id] += 1
                    receiver.requests.append(
                        {
                            "headers": headers,
                            "body": body,
                            "status": status,
                            "arrived": arrived,
                            "arrived_wall": wall,
                            "answered": time.monotonic(),
                        }
                    )

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payloads(
        self, secret: str, where: dict[str, Any] | None = None
    ) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(headers, verified payload) of every request whose data has the `where` values, by
        dotted path (`{"product.id": ...}`)."""
        with self.lock:
            requests = list(self.requests)
        out = []
        for r in requests:
            data = Webhook(secret).verify(r["body"], r["headers"])
            if all(_at(data["data"], path) == v for path, v in (where or {}).items()):
                out.append((r["headers"], data))
        return out


def _at(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def until(condition: Callable[[], Any], seconds: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {seconds} s"
        time.sleep(0.2)


class Webhooks:
    """The admin's REST calls to the webhooks service through the gateway."""

    def __init__(self, api: httpx.Client, admin: dict[str, str]) -> None:
        self.api = api
        self.admin = admin
        self.created: list[str] = []

    def create(self, url: str, event_types: list[str], **fields: Any) -> dict[str, Any]:
        endpoint = ok(
            self.api.post(
                "/v1/webhooks/endpoints",
                params={"request_id": str(uuid.uuid4())},
                json={"url": url, "event_types": event_types, **fields},
                headers=self.admin,
            )
        )
        self.created.append(endpoint["id"])
        return endpoint

    def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return ok(self.api.get(f"/v1/webhooks/endpoints/{endpoint_id}", headers=self.admin))

    def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        reply = self.api.get(
            f"/v1/webhooks/endpoints/{endpoint_id}/deliveries",
            params={"page_size": 100, **params},
            headers=self.admin,
        )
        return ok(reply).get("webhook_deliveries", [])

    def delivery(self, delivery_id: str) -> dict[str, Any]:
        return ok(self.api.get(f"/v1/webhooks/deliveries/{delivery_id}", headers=self.admin))

    def event_types(self, domain: str) -> list[str]:
        reply = ok(
            self.api.get(
                "/v1/webhooks/event-types",
                params={"domain": domain, "page_size": 100},
                headers=self.admin,
            )
        )
        return [t["name"] for t in reply["webhook_event_types"]]

    def delete_all(self) -> None:
        for endpoint_id in self.created:
            self.api.delete(f"/v1/webhooks/endpoints/{endpoint_id}", headers=self.admin)
