"""The file service end to end: REST through Envoy, bytes straight to the real object store
(versitygw), product images recorded by the catalog from FileUploaded.

Each test is one acceptance item of the file service's issue; the timings they print are what
the machine did, not what is asserted.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import boto3
import file_samples as samples
import httpx
import pytest
from botocore.config import Config

from tests.e2e.test_catalog_flows import admin, api, create, gateway, shopper  # noqa: F401

MIB = 1024 * 1024
# Under load on 2 cores the catalog's consumer may take a while; polling, not a looser assert.
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def store() -> httpx.Client:
    """A plain HTTP client for the object store: no credentials, no proxy."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def bucket():
    """The object store as an operator sees it, to prove that nothing was left behind."""
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["EMPORIUM_S3_ENDPOINT"],
        region_name=os.environ.get("EMPORIUM_S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ["EMPORIUM_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["EMPORIUM_S3_SECRET_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, proxies={}),
    )

    def keys_of(file_id: str) -> list[str]:
        found = []
        for prefix in (f"uploads/{file_id}", f"public/{file_id}/", f"private/{file_id}/"):
            listed = client.list_objects_v2(Bucket="emporium-files", Prefix=prefix)
            found += [o["Key"] for o in listed.get("Contents", [])]
        return found

    return keys_of


@pytest.fixture
def user(api) -> dict[str, str]:  # noqa: F811
    """A freshly registered user (a quota of their own)."""
    from tests.e2e.test_catalog_flows import PASSWORD

    email = f"files-{uuid.uuid4().hex[:10]}@example.com"
    registered = api.post(
        "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "Bo"}
    )
    assert registered.status_code == 200, registered.text
    tokens = api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return {"authorization": f"Bearer {tokens.json()['access_token']}"}


def start(api, headers, data: bytes, **fields: Any) -> dict:  # noqa: F811
    body = {
        "purpose": "PURPOSE_USER_UPLOAD",
        "filename": "picture.png",
        "content_type": "image/png",
        "size_bytes": str(len(data)),
        **fields,
    }
    answer = api.post("/v1/uploads", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(store, upload: dict, data: bytes, content_type: str = "image/png") -> httpx.Response:
    """What a browser does with the signed form."""
    return store.post(
        upload["url"], data=upload["fields"], files={"file": ("upload", data, content_type)}
    )


def upload(api, store, headers, data: bytes, **fields: Any) -> tuple[dict, httpx.Response]:  # noqa: F811
    started = start(api, headers, data, **fields)
    sent = post(store, started, data, fields.get("content_type", "image/png"))
    assert sent.status_code in (200, 201, 204), sent.text
    done = api.post(f"/v1/files/{started['file']['id']}:complete", json={}, headers=headers)
    return started, done


def test_an_admin_uploads_a_product_image_and_the_product_shows_it_with_thumbnails(
    api,  # noqa: F811
    admin,  # noqa: F811
    store,
):
    product = create(api, admin).json()
    assert api.get(f"/v1/products/{product['id']}").json().get("images", []) == []  # cached
    picture = samples.jpeg(1200, 900)
    fields = {
        "purpose": "PURPOSE_PRODUCT_IMAGE",
        "product_id": product["id"],
        "alt_text": "Lamp, front",
        "content_type": "image/jpeg",
        "filename": "lamp.jpg",
    }
    started, done = upload(api, store, admin, picture, **fields)
    assert done.status_code == 200, done.text
    completed = time.monotonic()
    shown: list[dict] = []
    while time.monotonic() - completed < WAIT_SECONDS:
        shown = api.get(f"/v1/products/{product['id']}").json().get("images", [])
        if shown:
            break
        time.sleep(0.1)
    seconds = time.monotonic() - completed
    print(f"\nproduct shows the image {seconds:.2f} s after CompleteUpload")
    assert len(shown) == 1, "the product never showed the image"
    image = shown[0]
    assert image["id"] == started["file"]["id"]
    assert (image["width"], image["height"], image["alt_text"]) == (1200, 900, "Lamp, front")
    assert [t["size"] for t in image["thumbnails"]] == [128, 256, 512]
    # The cached product was refreshed: an uncached read agrees with the cached one.
    direct = api.get(f"/v1/products/{product['id']}", headers={"cache-control": "no-cache"})
    assert direct.json()["images"] == shown
    # Anyone fetches the bytes from the store, without credentials.
    original = store.get(image["url"])
    assert original.status_code == 200
    assert original.content == picture
    assert original.headers["content-type"] == "image/jpeg"
    for thumbnail in image["thumbnails"]:
        got = store.get(thumbnail["url"])
        assert got.status_code == 200
        assert got.headers["content-type"] == "image/webp"
        assert got.content[:4] == b"RIFF"


def test_a_user_cannot_attach_an_image_to_a_product(api, user):  # noqa: F811
    body = {"purpose": "PURPOSE_PRODUCT_IMAGE", "product_id": str(uuid.uuid4()),
            "filename": "x.png", "content_type": "image/png", "size_bytes": "100"}  # fmt: skip
    assert api.post("/v1/uploads", json=body, headers=user).status_code == 403


def test_a_tampered_or_expired_signed_url_gets_403_from_the_store(api, store, user):  # noqa: F811
    data = samples.png()
    started, done = upload(api, store, user, data)
    assert done.status_code == 200, done.text
    file_id = started["file"]["id"]

    def signed(ttl: str) -> str:
        answer = api.post(
            f"/v1/files/{file_id}:generateDownloadUrl", json={"ttl": ttl}, headers=user
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["url"]

    url = signed("60s")
    assert store.get(url).content == data
    assert store.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=3600")).status_code == 403
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    assert store.get(url.replace(signature, signature[::-1])).status_code == 403
    short = signed("1s")
    time.sleep(2.5)
    expired = store.get(short)
    assert expired.status_code == 403
    assert b"expired" in expired.content.lower()
    # The file itself is private: without a signature the store refuses.
    private = url.split("?")[0]
    assert store.get(private).status_code == 403
    # A signed upload form posted to another key is refused as well.
    again = start(api, user, data)
    forged_form = {**again, "fields": {**again["fields"], "key": f"public/{uuid.uuid4()}/original"}}
    assert post(store, forged_form, data).status_code == 403


def test_an_oversize_upload_is_refused(api, store, user):  # noqa: F811
    too_big = {"purpose": "PURPOSE_USER_UPLOAD", "filename": "big.png",
               "content_type": "image/png", "size_bytes": str(10 * MIB + 1)}  # fmt: skip
    refused = api.post("/v1/uploads", json=too_big, headers=user)
    assert refused.status_code == 400
    assert "size_bytes" in refused.text
    # More bytes than the form was signed for: the store refuses them.
    started = start(api, user, b"x" * 1000)
    sent = post(store, started, samples.png())
    assert sent.status_code == 400
    assert b"EntityTooLarge" in sent.content


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (samples.not_an_image(), "CONTENT_TYPE_MISMATCH"),
        (samples.bomb(), "IMAGE_TOO_LARGE"),
        (samples.zip_polyglot(), "POLYGLOT"),
        (samples.html_polyglot(), "POLYGLOT"),
    ],
    ids=["not-an-image", "image-bomb", "zip-polyglot", "html-polyglot"],
)
def test_refused_bytes_get_a_clear_error_and_leave_nothing_behind(
    api,  # noqa: F811
    store,
    bucket,
    user,
    data,
    reason,
):
    started, done = upload(api, store, user, data)
    assert done.status_code == 400, done.text
    assert reason in done.text
    assert "content" in done.text
    file_id = started["file"]["id"]
    assert api.get(f"/v1/files/{file_id}", headers=user).status_code == 404
    assert file_id not in [
        f["id"] for f in api.get("/v1/files", headers=user).json().get("files", [])
    ]
    assert bucket(file_id) == []
    # The quota hold is gone too: the whole quota is free again.
    full = {"purpose": "PURPOSE_USER_UPLOAD", "filename": "a.png", "content_type": "image/png"}
    for _ in range(10):
        assert (
            api.post(
                "/v1/uploads", json={**full, "size_bytes": str(10 * MIB)}, headers=user
            ).status_code
            == 200
        )


def test_user_b_cannot_read_list_download_or_delete_user_as_files(api, store, user, shopper):  # noqa: F811
    started, done = upload(api, store, user, samples.png())
    assert done.status_code == 200
    file_id = started["file"]["id"]
    for method, path, body in [
        ("GET", f"/v1/files/{file_id}", None),
        ("DELETE", f"/v1/files/{file_id}", None),
        ("POST", f"/v1/files/{file_id}:generateDownloadUrl", {}),
        ("POST", f"/v1/files/{file_id}:complete", {}),
    ]:
        answer = api.request(method, path, json=body, headers=shopper)
        assert answer.status_code == 404, (method, path, answer.text)
    listed = api.get("/v1/files", headers=shopper).json().get("files", [])
    assert file_id not in [f["id"] for f in listed]
    assert api.get(f"/v1/files/{file_id}", headers=user).status_code == 200
    assert api.delete(f"/v1/files/{file_id}", headers=user).status_code == 200
    assert api.get(f"/v1/files/{file_id}", headers=user).status_code == 404


def test_an_upload_past_the_quota_is_429_naming_the_quota(api, user):  # noqa: F811
    body = {"purpose": "PURPOSE_USER_UPLOAD", "filename": "a.png", "content_type": "image/png",
            "size_bytes": str(10 * MIB)}  # fmt: skip
    for _ in range(10):  # 100 MiB, the default quota, held by uploads in flight
        assert api.post("/v1/uploads", json=body, headers=user).status_code == 200
    refused = api.post("/v1/uploads", json=body, headers=user)
    assert refused.status_code == 429, refused.text
    assert "storage_bytes_per_user" in refused.text
    assert "STORAGE_QUOTA_EXCEEDED" in refused.text
