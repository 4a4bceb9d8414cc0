"""The events the file service reacts to: none. It publishes FileUploaded and FileDeleted
(through its outbox) and owns no reaction to other services' events; the module exists so
that every service lists its subscriptions in the same place."""

from __future__ import annotations

from kit import events
from services.file.handlers import FileHandlers


def handlers(files: FileHandlers) -> dict[type, events.TypedHandler]:
    return {}
