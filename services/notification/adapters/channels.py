"""Routes a notification to the adapter of its channel (ports.Channels)."""

from __future__ import annotations

from collections.abc import Mapping

from services.notification.domain import Channel, Notification, Rendered, SendError
from services.notification.ports import Channels


class ChannelRouter:
    def __init__(self, adapters: Mapping[Channel, Channels]) -> None:
        self._adapters = dict(adapters)

    @property
    def available(self) -> tuple[Channel, ...]:
        return tuple(c for c in Channel if c in self._adapters or c == Channel.IN_APP)

    async def send(self, notification: Notification, content: Rendered) -> None:
        adapter = self._adapters.get(notification.channel)
        if adapter is None:
            raise SendError(
                f"{notification.channel.name.lower()} is not configured", permanent=True
            )
        await adapter.send(notification, content)
