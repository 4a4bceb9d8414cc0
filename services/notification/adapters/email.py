"""The email channel: multipart (text + HTML) messages over SMTP with aiosmtplib.

SMTP replies decide what a failure means: 5xx is permanent (the address or the message is
refused: FAILED, no retry), 4xx, a refused or dropped connection and timeouts are temporary
(retried with back-off). Marketing-like mail carries RFC 8058 one-click unsubscribe headers.
"""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

import aiosmtplib

from services.notification.domain import Notification, Rendered, SendError

# Headers up to RFC 5322's 998 characters stay one line: the default policy (78) would turn a
# long List-Unsubscribe URL into RFC 2047 encoded words, which no mail client reads as a URL.
POLICY = email.policy.default.clone(max_line_length=998)


class SmtpEmailSender:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str = "",
        password: str = "",
        start_tls: bool = False,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username or None
        self._password = password or None
        self._start_tls = start_tls
        self._timeout = timeout_seconds

    def message(self, notification: Notification, content: Rendered) -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        msg["From"] = self._sender
        msg["To"] = notification.recipient
        msg["Subject"] = content.subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        domain = self._sender.rpartition("@")[2].strip(">") or "emporium.local"
        # One Message-ID per notification: a retried send is recognisable as the same message.
        msg["Message-ID"] = f"<{notification.id}@{domain}>"
        msg["X-Emporium-Notification-Id"] = notification.id
        if notification.list_unsubscribe:
            msg["List-Unsubscribe"] = f"<{notification.list_unsubscribe}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(content.body)
        if content.html_body:
            msg.add_alternative(content.html_body, subtype="html")
        return msg

    async def send(self, notification: Notification, content: Rendered) -> None:
        if not notification.recipient:
            raise SendError("no email address", permanent=True)
        try:
            # Flattened here with our policy: aiosmtplib's own (78-character lines) would
            # encode the long headers again.
            raw = self.message(notification, content).as_bytes(policy=POLICY.clone(linesep="\r\n"))
            await aiosmtplib.send(
                raw,
                sender=email.utils.parseaddr(self._sender)[1],
                recipients=[notification.recipient],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                use_tls=False,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0] if exc.recipients else None
            code = refused.code if refused else 550
            message = refused.message if refused else "recipient refused"
            raise SendError(f"SMTP {code} {message}", permanent=code >= 500) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise SendError(f"SMTP {exc.code} {exc.message}", permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendError(f"SMTP unavailable: {exc}", permanent=False) from None
