"""Bytes for the file service's tests: good images, and the uploads it must refuse."""

from __future__ import annotations

import io
import zipfile

from PIL import Image


def png(width: int = 640, height: int = 480, color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 800, height: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 220)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def bomb(side: int = 10_000) -> bytes:
    """A PNG of a few KiB that declares side x side pixels (100 million by default)."""
    buffer = io.BytesIO()
    Image.new("1", (side, side), 0).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def zip_polyglot() -> bytes:
    """A valid PNG with a ZIP archive appended: an image to a browser, an archive to unzip."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    return png(64, 64) + archive.getvalue()


def html_polyglot() -> bytes:
    """A valid PNG whose text chunk carries HTML a sniffing browser would run."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<html><script>alert(document.cookie)</script></html>")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 0, 0)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def not_an_image() -> bytes:
    return b"#!/bin/sh\necho this is not a picture\n" * 20


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
