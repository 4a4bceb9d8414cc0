"""kit.server workers: several processes serve one port, and SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc

from bench.edge import _free_port, _wait_serving
from kit.config import ConfigError, ServerSettings

ROOT = Path(__file__).resolve().parents[2]


async def test_two_workers_share_one_port_and_stop_together():
    port = _free_port()
    env = {**os.environ, "EMPORIUM_WORKERS": "2"}
    env.pop("EMPORIUM_WORKER_INDEX", None)
    argv = [sys.executable, "-m", "bench.edge", "serve", "kit", str(port)]
    supervisor = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await _wait_serving(f"127.0.0.1:{port}", supervisor)
        pids: set[str] = set()
        deadline = time.monotonic() + 30
        # The kernel spreads new connections over the workers: fresh channels reach both.
        while len(pids) < 2 and time.monotonic() < deadline:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
                reply = await stub.GetProduct(catalog_service_pb2.GetProductRequest(id="x"))
                pids.add(reply.id)
        assert len(pids) == 2
        assert str(supervisor.pid) not in pids
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), 30) == 0
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()


def test_the_number_of_workers_comes_from_the_environment():
    env = {"EMPORIUM_ENV": "development"}
    assert ServerSettings.from_env("catalog", env).workers == 1
    assert ServerSettings.from_env("catalog", {**env, "EMPORIUM_WORKERS": "3"}).workers == 3
    cores = len(os.sched_getaffinity(0))
    assert ServerSettings.from_env("catalog", {**env, "EMPORIUM_WORKERS": "auto"}).workers == cores
    with pytest.raises(ConfigError):
        ServerSettings.from_env("catalog", {**env, "EMPORIUM_WORKERS": "0"})
