"""Files, their life cycle and the checks their bytes must pass (no I/O, no protobuf).

Content checks (`inspect`) run on the stored bytes at completion, never on what the client
says: the media type is sniffed from the magic bytes (`filetype`) and must equal the declared
one; images are decoded in full by Pillow after their dimensions are checked against a pixel
budget (a few KiB of PNG can declare 100k x 100k pixels: a decompression bomb); and an image
must end where its format says it ends, with no markup anywhere in it, which refuses the
polyglots that make a browser or an archive tool read an "image" as HTML, script, PHP, PDF or
ZIP.
"""

from __future__ import annotations

import enum
import io
import re
import uuid
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime

import filetype
from PIL import Image, ImageOps

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
DOCUMENT_TYPES = ("application/pdf",)
THUMBNAIL_TYPE = "image/webp"
MAX_FILENAME = 255
MAX_ALT_TEXT = 500
# Markup or containers that make a polyglot of an image: whatever else reads the bytes
# (browser sniffing, PHP, PDF readers, unzip) must find nothing to run.
_POLYGLOT = re.compile(
    rb"<\s*(script|html|body|svg|iframe|object|embed|\?php|!doctype)|%PDF-|PK\x03\x04",
    re.IGNORECASE,
)
_PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}


class Purpose(enum.Enum):
    USER_UPLOAD = "user_upload"
    PRODUCT_IMAGE = "product_image"

    @property
    def public(self) -> bool:
        return self is Purpose.PRODUCT_IMAGE

    @property
    def content_types(self) -> tuple[str, ...]:
        return IMAGE_TYPES if self is Purpose.PRODUCT_IMAGE else IMAGE_TYPES + DOCUMENT_TYPES


class State(enum.Enum):
    UPLOADING = "uploading"
    PROCESSING = "processing"
    READY = "ready"
    # Gone for every reader; kept until its FileDeleted event has left the outbox and its
    # objects are removed, then purged.
    DELETED = "deleted"


@dataclass(frozen=True)
class Thumbnail:
    size: int
    width: int
    height: int
    content_type: str = THUMBNAIL_TYPE


@dataclass(frozen=True)
class File:
    id: str
    owner_id: str
    purpose: Purpose
    state: State
    filename: str
    content_type: str
    size_bytes: int
    create_time: datetime
    update_time: datetime
    # Until when the signed upload form works; an UPLOADING file past it is swept.
    expire_time: datetime
    product_id: str = ""
    alt_text: str = ""
    width: int = 0
    height: int = 0
    sha256: str = ""
    thumbnails: tuple[Thumbnail, ...] = field(default_factory=tuple)

    @property
    def image(self) -> bool:
        return self.content_type in IMAGE_TYPES

    def object_key(self, thumbnail_size: int = 0) -> str:
        """Where the bytes live in the bucket: public/ is readable by anyone, private/ only
        with a signed URL (the bucket policy says so)."""
        prefix = "public" if self.purpose.public else "private"
        name = "original" if not thumbnail_size else f"thumb-{thumbnail_size}.webp"
        return f"{prefix}/{self.id}/{name}"

    def visible_to(self, user_id: str, admin: bool) -> bool:
        return self.state is not State.DELETED and (admin or self.owner_id == user_id)


def new_file(
    *,
    owner_id: str,
    purpose: Purpose,
    filename: str,
    content_type: str,
    size_bytes: int,
    product_id: str,
    alt_text: str,
    now: datetime,
    expire_time: datetime,
) -> File:
    return File(
        id=str(uuid.uuid4()),
        owner_id=owner_id,
        purpose=purpose,
        state=State.UPLOADING,
        filename=filename,
        content_type=content_type,
        size_bytes=size_bytes,
        create_time=now,
        update_time=now,
        expire_time=expire_time,
        product_id=product_id,
        alt_text=alt_text,
    )


def upload_problems(
    *,
    purpose: Purpose | None,
    filename: str,
    content_type: str,
    size_bytes: int,
    product_id: str,
    alt_text: str,
    max_bytes: int,
) -> list[tuple[str, str]]:
    """The field violations of an upload request (empty when it is fine)."""
    bad: list[tuple[str, str]] = []
    if purpose is None:
        bad.append(("purpose", "is required"))
    if not filename.strip():
        bad.append(("filename", "is required"))
    elif len(filename) > MAX_FILENAME or "/" in filename or "\\" in filename:
        bad.append(("filename", f"must be a name without a path, up to {MAX_FILENAME} chars"))
    allowed = purpose.content_types if purpose else IMAGE_TYPES + DOCUMENT_TYPES
    if content_type not in allowed:
        bad.append(("content_type", f"must be one of {', '.join(allowed)}"))
    if size_bytes <= 0:
        bad.append(("size_bytes", "must be positive"))
    elif size_bytes > max_bytes:
        bad.append(("size_bytes", f"must be at most {max_bytes} bytes"))
    if purpose is Purpose.PRODUCT_IMAGE and not product_id.strip():
        bad.append(("product_id", "is required for a product image"))
    if purpose is Purpose.USER_UPLOAD and product_id:
        bad.append(("product_id", "is only for product images"))
    if len(alt_text) > MAX_ALT_TEXT:
        bad.append(("alt_text", f"must be at most {MAX_ALT_TEXT} characters"))
    return bad


class Refused(Exception):
    """The stored bytes are not acceptable; `reason` is a stable UPPER_SNAKE code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Inspection:
    content_type: str
    width: int = 0
    height: int = 0


def inspect(data: bytes, declared: str, max_pixels: int) -> Inspection:
    """Checks stored bytes against the declared media type; raises Refused when they fail."""
    kind = filetype.guess(data)
    sniffed = kind.mime if kind else "unknown"
    if sniffed != declared:
        raise Refused(
            "CONTENT_TYPE_MISMATCH",
            f"the bytes are {sniffed}, not the declared {declared}",
        )
    if declared not in IMAGE_TYPES:
        if declared == "application/pdf" and b"%%EOF" not in data[-1024:]:
            raise Refused("UNDECODABLE", "the PDF is truncated")
        return Inspection(declared)
    if _POLYGLOT.search(data):
        raise Refused("POLYGLOT", "the image carries markup or another file format")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[declared]]) as img:
                width, height = img.size
                frames = getattr(img, "n_frames", 1)
                if width * height * frames > max_pixels:
                    raise Refused(
                        "IMAGE_TOO_LARGE",
                        f"{width}x{height} pixels x {frames} frames is above the limit of "
                        f"{max_pixels} pixels (a decompression bomb?)",
                    )
                for frame in range(frames):
                    img.seek(frame)
                    img.load()
        except Refused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Refused("IMAGE_TOO_LARGE", f"the image is a decompression bomb: {exc}") from exc
        except Exception as exc:  # Pillow raises many kinds for broken data
            raise Refused("UNDECODABLE", f"the image does not decode: {exc}") from exc
    trailing = _trailing_bytes(data, declared)
    if trailing:
        raise Refused("POLYGLOT", f"{trailing} bytes follow the end of the image")
    return Inspection(declared, width, height)


def _trailing_bytes(data: bytes, content_type: str) -> int:
    """How many bytes follow the format's own end marker (another file hides there)."""
    if content_type == "image/png":
        end = data.rfind(b"IEND")
        return len(data) - (end + 8) if end >= 0 else len(data)
    if content_type == "image/jpeg":
        end = data.rfind(b"\xff\xd9")
        return len(data) - (end + 2) if end >= 0 else len(data)
    if content_type == "image/gif":
        return 0 if data.endswith(b"\x3b") else 1
    if content_type == "image/webp":
        declared = int.from_bytes(data[4:8], "little") + 8
        return len(data) - declared - (declared % 2)
    return 0


def thumbnails(data: bytes, sizes: tuple[int, ...]) -> list[tuple[Thumbnail, bytes]]:
    """WebP renditions of an image fitted in each box of `sizes` (never enlarged), first
    frame only, EXIF orientation applied and metadata dropped (a re-encode carries no
    payload the original may hide)."""
    out: list[tuple[Thumbnail, bytes]] = []
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        base = ImageOps.exif_transpose(img.convert("RGBA" if _has_alpha(img) else "RGB"))
    for size in sizes:
        copy = base.copy()
        copy.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        copy.save(buffer, format="WEBP", quality=82, method=4)
        out.append((Thumbnail(size, copy.width, copy.height), buffer.getvalue()))
    return out


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def completed(file: File, inspection: Inspection, size: int, sha256: str, now: datetime) -> File:
    """The file after its bytes passed: PROCESSING for images (thumbnails follow), READY
    otherwise."""
    return replace(
        file,
        state=State.PROCESSING if file.image else State.READY,
        content_type=inspection.content_type,
        size_bytes=size,
        width=inspection.width,
        height=inspection.height,
        sha256=sha256,
        update_time=now,
    )
