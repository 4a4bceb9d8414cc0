"""Webhooks survive a crash (issue 13, acceptance 4): the service is SIGKILLed while deliveries
wait for their retry, restarted, and carries on; the receiver counts exactly one success per
event.

The test owns this webhooks process (the stack's runner stops everything when one of its
processes dies), started beside the stack's own on a free port, with a database and a queue of
its own, so it consumes the same events as the stack's service without sharing its state. It
is called over gRPC directly, with an admin token from the gateway.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from emporium.webhooks.v1 import (
    webhook_delivery_pb2,
    webhook_endpoint_pb2,
    webhooks_service_pb2,
    webhooks_service_pb2_grpc,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.config import MongoSettings, RabbitSettings
from tests.e2e.checkout_support import admin_headers, product
from tests.e2e.webhook_support import Receiver, until

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 5
D = webhook_delivery_pb2.WebhookDelivery
pb = webhooks_service_pb2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhooksProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["EMPORIUM_WEBHOOKS_GRPC_PORT"])
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.webhooks"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        until(self.serving, 60, "the webhooks process to serve")

    def serving(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, "the webhooks process exited"
        target = f"127.0.0.1:{self.port}"
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def api(gateway_url, service_address):
    for name in ("user", "catalog"):
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


@pytest.fixture
def own_webhooks():
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "EMPORIUM_WEBHOOKS_GRPC_PORT": str(_free_port()),
        "EMPORIUM_MONGO_DATABASE_SUFFIX": f"_restart_{suffix}",
        "EMPORIUM_WEBHOOKS_QUEUE": f"webhooks-restart-{suffix}",
        "EMPORIUM_WEBHOOKS_ALLOWED_CIDRS": "127.0.0.0/8",
        "EMPORIUM_WEBHOOKS_ALLOW_HTTP": "true",
        "EMPORIUM_WEBHOOKS_RETRY_SCHEDULE": "20,3,3",  # the SIGKILL lands in the 20 s wait
        "EMPORIUM_WEBHOOKS_POLL_SECONDS": "0.5",
    }
    process = WebhooksProcess(env)
    yield process
    process.stop()
    _drop(env)


def _drop(env: dict[str, str]) -> None:
    """Removes the process's database and queue (tests leave nothing behind)."""
    import asyncio

    from kit import mongo
    from kit.bus import Bus

    async def drop() -> None:
        db = mongo.connect(MongoSettings.from_env("emporium_webhooks", env))
        await db.client.drop_database(db.name)
        await db.close()
        bus = await Bus.connect(RabbitSettings.from_env(env), source="test")
        await bus.delete_queue(env["EMPORIUM_WEBHOOKS_QUEUE"])
        await bus.close()

    asyncio.run(drop())


def test_deliveries_waiting_for_a_retry_continue_after_a_sigkill(api, own_webhooks):
    admin = admin_headers(api)
    metadata = [("authorization", admin["authorization"])]
    receiver = Receiver(lambda webhook_id, nth: 500 if nth <= 2 else 200)
    own_webhooks.start()
    target = f"127.0.0.1:{own_webhooks.port}"
    try:
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            stub = webhooks_service_pb2_grpc.WebhooksServiceStub(channel)
            endpoint = stub.CreateWebhookEndpoint(
                pb.CreateWebhookEndpointRequest(
                    webhook_endpoint=webhook_endpoint_pb2.WebhookEndpoint(
                        url=receiver.url, event_types=["emporium.catalog.v1.ProductCreated"]
                    )
                ),
                metadata=metadata,
            )
            made = {product(api, admin, stock=0)["id"] for _ in range(EVENTS)}

            def ours() -> list:
                return [
                    d
                    for d in stub.ListWebhookDeliveries(
                        pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint.id, page_size=100),
                        metadata=metadata,
                    ).webhook_deliveries
                    if any(p in d.payload for p in made)
                ]

            waiting = until(
                lambda: (
                    (d := ours())
                    and len(d) == EVENTS
                    and all(x.state == D.STATE_RETRYING and len(x.attempts) == 1 for x in d)
                    and d
                ),
                120,
                "every delivery failed once and waiting for its retry",
            )
            print(f"{len(waiting)} deliveries waiting for a retry: SIGKILL")
        own_webhooks.kill()
        time.sleep(1)
        own_webhooks.start()
        with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
            stub = webhooks_service_pb2_grpc.WebhooksServiceStub(channel)
            done = until(
                lambda: (d := ours()) and all(x.state == D.STATE_SUCCEEDED for x in d) and d,
                150,
                "every delivery to succeed after the restart",
            )
    finally:
        receiver.close()
    event_ids = {d.event_id for d in done}
    assert len(event_ids) == EVENTS  # none lost
    assert {wid: receiver.succeeded[wid] for wid in event_ids} == dict.fromkeys(event_ids, 1)
    for d in done:
        assert [a.response_status_code for a in d.attempts] == [500, 500, 200]
    print("attempts per event:", {wid: receiver.seen[wid] for wid in event_ids})
