"""The object store on the S3 API through boto3 (signature v4): versitygw locally, any S3
endpoint in production.

boto3 is synchronous, so each call runs in a worker thread. Presigning is local (no request),
by a second client configured with the endpoint clients use (a signed URL carries its host).
At start `open` creates the bucket if needed and sets its policy: anyone may GET keys under
public/ (product images and their thumbnails); everything else needs a signed request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.file.config import S3Settings
from services.file.ports import SignedPost, StoredObject


def public_read_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadOfPublicPrefix",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/public/*"],
                }
            ],
        }
    )


class S3ObjectStore:
    def __init__(self, settings: S3Settings, client: Any, signer: Any | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.client = client
        self.signer = signer or client

    @classmethod
    def client_for(cls, settings: S3Settings, endpoint: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or settings.endpoint,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=Config(
                signature_version="s3v4",
                # Path style: http://host/bucket/key works with any endpoint, no DNS per bucket.
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
                # The endpoint is ours: never route it through a proxy from the environment.
                proxies={},
            ),
        )

    @classmethod
    async def open(cls, settings: S3Settings, wait_seconds: float = 30.0) -> S3ObjectStore:
        signer = None
        if settings.client_endpoint and settings.client_endpoint != settings.endpoint:
            signer = cls.client_for(settings, settings.client_endpoint)
        store = cls(settings, cls.client_for(settings), signer)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            try:
                await store._ensure_bucket()
                return store
            except ClientError:
                raise
            except Exception:  # the store is still starting: connection refused
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _ensure_bucket(self) -> None:
        def ensure() -> None:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except ClientError as again:  # another replica created it meanwhile
                    code = again.response.get("Error", {}).get("Code")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self.client.put_bucket_policy(
                Bucket=self.bucket, Policy=public_read_policy(self.bucket)
            )

        await asyncio.to_thread(ensure)

    async def signed_post(
        self, key: str, content_type: str, max_bytes: int, expires_seconds: int
    ) -> SignedPost:
        post = await asyncio.to_thread(
            self.signer.generate_presigned_post,
            self.bucket,
            key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_seconds,
        )
        return SignedPost(post["url"], dict(post["fields"]))

    async def signed_get(self, key: str, expires_seconds: int) -> str:
        return await asyncio.to_thread(
            self.signer.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_seconds,
        )

    def public_url(self, key: str) -> str:
        return f"{self.settings.public_url}/{key}"

    async def head(self, key: str) -> StoredObject | None:
        try:
            found = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(int(found["ContentLength"]), found.get("ContentType", ""))

    async def read(self, key: str, max_bytes: int) -> bytes:
        def read() -> bytes:
            body = self.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}"
            )["Body"]
            try:
                return body.read(max_bytes)
            finally:
                body.close()

        return await asyncio.to_thread(read)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            # Every file version has its own key, so public objects never change: cache them.
            CacheControl="public, max-age=31536000, immutable"
            if key.startswith("public/")
            else "private, no-store",
        )

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        await asyncio.to_thread(
            self.client.delete_objects,
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True},
        )
