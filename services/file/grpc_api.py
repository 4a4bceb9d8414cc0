"""The FileService servicer: decodes requests, calls a handler, encodes the answer.

The caller comes from the verified access token (`auth.caller()`), never from the request.
"""

from __future__ import annotations

from emporium.file.v1 import file_pb2, file_service_pb2, file_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth, errors, paging
from kit.mapping import timestamp
from services.file import mapping
from services.file.handlers import CreateUpload, FileHandlers

LIST_DEFAULT, LIST_MAX = 20, 100


class FileService(file_service_pb2_grpc.FileServiceServicer):
    def __init__(self, handlers: FileHandlers) -> None:
        self.handlers = handlers

    def _file(self, file) -> file_pb2.File:
        return mapping.file_to_proto(file, self.handlers.store.public_url)

    async def CreateUpload(self, request, context):
        started = await self.handlers.create_upload(
            auth.caller(),
            CreateUpload(
                purpose=mapping.PURPOSES_BACK.get(request.purpose),
                filename=request.filename,
                content_type=request.content_type,
                size_bytes=request.size_bytes,
                product_id=request.product_id,
                alt_text=request.alt_text,
            ),
        )
        return file_pb2.Upload(
            file=self._file(started.file),
            method="POST",
            url=started.form.url,
            fields=started.form.fields,
            max_size_bytes=started.max_size_bytes,
            expire_time=timestamp(started.expire_time),
        )

    async def CompleteUpload(self, request, context):
        if not request.id.strip():
            raise errors.InvalidArgument("id", "is required")
        return self._file(await self.handlers.complete_upload(auth.caller(), request.id))

    async def GetFile(self, request, context):
        return self._file(await self.handlers.get_file(auth.caller(), request.id))

    async def ListFiles(self, request, context):
        if request.page_size < 0 or request.page_size > LIST_MAX:
            raise errors.InvalidArgument("page_size", f"must be between 0 and {LIST_MAX}")
        caller = auth.caller()
        scope = {"owner_id": caller.user_id}
        cursor = paging.decode_page_token(request.page_token, scope)
        files, next_cursor = await self.handlers.list_files(
            caller, cursor if isinstance(cursor, dict) else None, request.page_size or LIST_DEFAULT
        )
        return file_service_pb2.ListFilesResponse(
            files=[self._file(f) for f in files],
            next_page_token=paging.encode_page_token(next_cursor, scope) if next_cursor else "",
        )

    async def DeleteFile(self, request, context):
        if not request.id.strip():
            raise errors.InvalidArgument("id", "is required")
        await self.handlers.delete_file(auth.caller(), request.id)
        return empty_pb2.Empty()

    async def GenerateDownloadUrl(self, request, context):
        if not request.id.strip():
            raise errors.InvalidArgument("id", "is required")
        ttl = request.ttl.ToTimedelta().total_seconds() if request.HasField("ttl") else None
        url, expire_time = await self.handlers.download_url(
            auth.caller(), request.id, request.thumbnail_size, ttl
        )
        return file_service_pb2.GenerateDownloadUrlResponse(
            url=url, expire_time=timestamp(expire_time)
        )
