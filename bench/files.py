"""Uploads through the file service and the time from completion to thumbnails ready.

    uv run --frozen python -m bench.files [--gateway 127.0.0.1:8080] [--seconds 10]
        [--concurrency 8] [--width 1600 --height 1200]

Needs the platform running (`make run`). Registers a user, then for `--seconds` keeps
`--concurrency` uploads in flight, each the whole client flow: CreateUpload (REST through
Envoy), the signed POST of a JPEG straight to the object store, CompleteUpload (the service
reads the object back and checks it). Prints uploads/s with p50/p99 of that flow, then waits
for every file to be READY and prints p50/p99 of completion -> thumbnails ready, measured on
the service's own clock (File.update_time at PROCESSING and at READY). The files are deleted
afterwards. The load generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
import statistics
import time
from datetime import datetime

import httpx
from PIL import Image

from bench.harness import HEADER, drive

PASSWORD = "bench files password"


def _jpeg(width: int, height: int) -> bytes:
    # A gradient, so the encoder and the thumbnailer have real work (not one flat colour).
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def main(gateway: str, seconds: float, concurrency: int, width: int, height: int) -> None:
    picture = _jpeg(width, height)
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with (
        httpx.AsyncClient(base_url=f"http://{gateway}", limits=limits, timeout=60) as api,
        httpx.AsyncClient(trust_env=False, limits=limits, timeout=60) as store,
    ):
        email = f"bench-files-{secrets.token_hex(4)}@example.com"
        registered = await api.post(
            "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "B"}
        )
        registered.raise_for_status()
        login = await api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        user = {"authorization": f"Bearer {login.json()['access_token']}"}
        completed: list[dict] = []

        async def one_upload() -> None:
            started = await api.post(
                "/v1/uploads",
                json={
                    "purpose": "PURPOSE_USER_UPLOAD",
                    "filename": "bench.jpg",
                    "content_type": "image/jpeg",
                    "size_bytes": str(len(picture)),
                },
                headers=user,
            )
            started.raise_for_status()
            form = started.json()
            sent = await store.post(
                form["url"], data=form["fields"], files={"file": ("b.jpg", picture, "image/jpeg")}
            )
            sent.raise_for_status()
            done = await api.post(f"/v1/files/{form['file']['id']}:complete", json={}, headers=user)
            done.raise_for_status()
            completed.append(done.json())

        uploads = await drive("upload (create+POST+complete)", one_upload, seconds, concurrency)
        waits: list[float] = []
        deadline = time.monotonic() + 300
        pending = list(completed)
        while pending and time.monotonic() < deadline:
            still = []
            for file in pending:
                got = (await api.get(f"/v1/files/{file['id']}", headers=user)).json()
                if got.get("state") == "STATE_READY":
                    waits.append(
                        (_time(got["update_time"]) - _time(file["update_time"])).total_seconds()
                    )
                else:
                    still.append(file)
            pending = still
            if pending:
                await asyncio.sleep(0.2)
        for file in completed:
            await api.delete(f"/v1/files/{file['id']}", headers=user)
    print(f"image {width}x{height} JPEG, {len(picture)} bytes, 3 thumbnails (128/256/512 WebP)")
    print(HEADER)
    print(uploads.row())
    ordered = sorted(waits) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{'completion -> thumbnails':<26} {'':>9} {statistics.median(ordered) * 1000:>9.1f} "
        f"{p99 * 1000:>9.1f} {len(pending):>7}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", default="127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args()
    asyncio.run(main(args.gateway, args.seconds, args.concurrency, args.width, args.height))
