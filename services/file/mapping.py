"""Protobuf <-> domain for the file service: File, Thumbnail and the events."""

from __future__ import annotations

from collections.abc import Callable

from emporium.file.v1 import file_events_pb2, file_pb2

from kit.events import Event
from kit.mapping import timestamp
from services.file.domain import File, Purpose, State

SOURCE = "file"
PB = file_pb2.File
PURPOSES = {
    Purpose.USER_UPLOAD: PB.PURPOSE_USER_UPLOAD,
    Purpose.PRODUCT_IMAGE: PB.PURPOSE_PRODUCT_IMAGE,
}
PURPOSES_BACK = {v: k for k, v in PURPOSES.items()}
STATES = {
    State.UPLOADING: PB.STATE_UPLOADING,
    State.PROCESSING: PB.STATE_PROCESSING,
    State.READY: PB.STATE_READY,
}

# Where clients read a public object (ObjectStore.public_url); None for private files.
UrlOf = Callable[[str], str]


def file_to_proto(file: File, public_url: UrlOf) -> file_pb2.File:
    public = file.purpose.public and file.state is State.READY
    return file_pb2.File(
        id=file.id,
        owner_id=file.owner_id,
        purpose=PURPOSES[file.purpose],
        state=STATES.get(file.state, PB.STATE_UNSPECIFIED),
        filename=file.filename,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        width=file.width,
        height=file.height,
        uri=public_url(file.object_key()) if public else "",
        thumbnails=[
            file_pb2.Thumbnail(
                size=t.size,
                width=t.width,
                height=t.height,
                content_type=t.content_type,
                uri=public_url(file.object_key(t.size)) if public else "",
            )
            for t in file.thumbnails
        ],
        product_id=file.product_id,
        alt_text=file.alt_text,
        sha256=file.sha256,
        create_time=timestamp(file.create_time),
        update_time=timestamp(file.update_time),
    )


def uploaded(file: File, public_url: UrlOf) -> Event:
    message = file_events_pb2.FileUploaded(
        file=file_to_proto(file, public_url), product_id=file.product_id
    )
    return Event.of(message, SOURCE, time=file.update_time)


def deleted(file: File) -> Event:
    message = file_events_pb2.FileDeleted(
        file_id=file.id,
        owner_id=file.owner_id,
        purpose=PURPOSES[file.purpose],
        product_id=file.product_id,
    )
    return Event.of(message, SOURCE, time=file.update_time)
