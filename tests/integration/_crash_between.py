"""Crash injection for consumers: the effect is done, the inbox record is not.

`CrashBeforeRecord` wraps a service's real inbox; for an armed event id, `record` raises once,
as if the process died right after the handler's effect and before the inbox remembered the
event. The bus then hands the message back (not acked) and it is delivered again: the handler
runs a second time on an inbox that does not know the event, and its effect must not repeat.
"""

from __future__ import annotations

from typing import Any

from kit.events import Event


class CrashBeforeRecord:
    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox
        self.armed: set[str] = set()
        self.crashed: list[str] = []

    def arm(self, event: Event) -> Event:
        self.armed.add(event.id)
        return event

    async def seen(self, event: Event) -> bool:
        return await self.inbox.seen(event)

    async def record(self, event: Event) -> None:
        if event.id in self.armed:
            self.armed.discard(event.id)
            self.crashed.append(event.id)
            raise RuntimeError(f"crash between the effect of {event.type} and its inbox record")
        await self.inbox.record(event)

    def __getattr__(self, name: str) -> Any:  # add_to_batch and the like, if a service uses them
        return getattr(self.inbox, name)
