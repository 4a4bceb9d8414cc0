"""The SMS channel's sandbox provider: magic test numbers, as Twilio's test credentials have.

+15005550006 and any other number succeed; +15005550001 (invalid number) and +15005550009
(cannot receive SMS) fail permanently; +15005550002 fails temporarily (the provider is busy),
so the retry path can be exercised. Nothing leaves the process: the sent messages are kept in
`sent` for inspection.
"""

from __future__ import annotations

from services.notification.domain import Notification, Rendered, SendError

PERMANENT = {"+15005550001": "invalid phone number", "+15005550009": "number cannot receive SMS"}
TEMPORARY = {"+15005550002": "provider busy, try again"}


class SandboxSmsProvider:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, notification: Notification, content: Rendered) -> None:
        number = notification.recipient
        if not number:
            raise SendError("no phone number", permanent=True)
        if number in PERMANENT:
            raise SendError(f"SMS {PERMANENT[number]}", permanent=True)
        if number in TEMPORARY:
            raise SendError(f"SMS {TEMPORARY[number]}", permanent=False)
        self.sent.append((number, content.body))
