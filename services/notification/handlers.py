"""The notification service's use cases: react to events, send, retry, read, watch, configure.

Creating: `notify()` turns one event for one user into one notification per channel, decided by
domain.plan (the precedence rules are in domain.py). In-app notifications are SENT at once
(stored = delivered to the inbox); the others are QUEUED with a scheduled_time and sent by the
senders (`run_sender`), which claim due notifications from storage, so a queued message, its
retry schedule and its back-off survive a restart. Secrets (verification and reset tokens) are
rendered into what is sent, but everything stored holds them redacted; the unredacted content
is sealed (Fernet) inside the queued notification and dropped the moment it is final.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from emporium.notification.v1 import notification_events_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage

from kit import errors
from kit.auth import Principal
from kit.events import Event
from services.notification import domain, rendering
from services.notification.domain import (
    Channel,
    Decision,
    Notification,
    Platform,
    Preferences,
    PushDevice,
    Recipient,
    Rendered,
    SendError,
    State,
    Topic,
)
from services.notification.ports import (
    Channels,
    Cursor,
    FanOutRepository,
    NotificationRepository,
    PreferencesRepository,
    PushDeviceRepository,
    RecipientRepository,
    TemplateRepository,
)
from services.notification.rendering import Template

log = logging.getLogger("emporium.notification")

SOURCE = "notification"
WATCH_BACKLOG = timedelta(days=7)
# Topics whose mail carries a one-click unsubscribe link (RFC 8058): the non-transactional ones.
UNSUBSCRIBABLE = frozenset(
    {Topic.NEW_PRODUCTS, Topic.MARKETING, Topic.PRODUCT_REVIEWS, Topic.SHIPPING_UPDATES}
)


@dataclass(frozen=True)
class Shop:
    name: str
    url: str  # the storefront, for links in messages
    api_url: str  # the public gateway, for the one-click unsubscribe URL


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Secrets:
    """Keys derived from one service secret: sealing queued content, signing unsubscribe links."""

    def __init__(self, secret: bytes) -> None:
        seal_key = hashlib.sha256(b"emporium-notification-seal:" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(seal_key))
        self._mac_key = hashlib.sha256(b"emporium-notification-unsubscribe:" + secret).digest()

    def seal(self, content: Rendered) -> bytes:
        data = json.dumps([content.subject, content.body, content.html_body]).encode()
        return self._fernet.encrypt(data)

    def unseal(self, sealed: bytes) -> Rendered:
        subject, body, html = json.loads(self._fernet.decrypt(sealed))
        return Rendered(subject, body, html)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._mac_key, payload, hashlib.sha256).digest()[:16]

    def unsubscribe_token(self, user_id: str, topic: Topic) -> str:
        payload = f"{user_id}:{int(topic)}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def read_unsubscribe_token(self, token: str) -> tuple[str, Topic]:
        bad = errors.InvalidArgument("token", "is malformed or not signed by this service")
        try:
            payload_part, mac_part = token.strip().split(".")
            payload = base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4))
            mac = base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))
            user_id, topic = payload.decode().rsplit(":", 1)
            topic_value = Topic(int(topic))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise bad from None
        if not hmac.compare_digest(mac, self._mac(payload)) or topic_value not in UNSUBSCRIBABLE:
            raise bad
        return user_id, topic_value


@dataclass(frozen=True)
class Incoming:
    """One event to turn into notifications for one user."""

    event: Event
    message: ProtoMessage
    user_id: str
    topic: Topic
    security: bool = False
    secret_fields: tuple[str, ...] = ()  # fields of the event holding secrets (tokens)
    category_ids: tuple[str, ...] = ()
    template_event_type: str = ""  # when the template is another event type's (fan-out)
    source_event_id: str = ""  # when not the event's own id (fan-out batches)
    source_event_type: str = ""


class NotificationHandlers:
    def __init__(
        self,
        *,
        notifications: NotificationRepository,
        recipients: RecipientRepository,
        preferences: PreferencesRepository,
        templates: TemplateRepository,
        fanouts: FanOutRepository,
        channels: Channels,
        available: Sequence[Channel],
        clock: Any,
        shop: Shop,
        secrets: Secrets,
        default_locale: str = "en",
        batch_size: int = 200,
        senders: int = 4,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        watch_poll_seconds: float = 0.5,
    ) -> None:
        self.notifications = notifications
        self.recipients = recipients
        self.preferences = preferences
        self.templates = templates
        self.fanouts = fanouts
        self.channels = channels
        self.available = tuple(available)
        self.clock = clock
        self.shop = shop
        self.secrets = secrets
        self.default_locale = default_locale
        self.batch_size = batch_size
        self.senders = senders
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.watch_poll_seconds = watch_poll_seconds
        self._due = asyncio.Event()
        self._inbox_changed: dict[str, asyncio.Event] = {}

    # --- start-up -----------------------------------------------------------------------------

    async def install_default_templates(self, defaults: Iterable[Template]) -> int:
        """Stores the repository's default templates that are missing or older; returns how
        many. Admin templates are left alone (an active one stays active)."""
        count = 0
        now = self.clock.now()
        for template in defaults:
            stored = await self.templates.get(template.id)
            if stored is None:
                if await self.templates.active(
                    template.event_type, template.channel, template.locale
                ):
                    template = replace(template, active=False)
                await self.templates.add(replace(template, create_time=now, update_time=now))
                count += 1
            elif (
                stored.default
                and stored.version < template.version
                and stored.body_template != template.body_template
            ):
                fresh = replace(
                    template, active=stored.active, create_time=stored.create_time, update_time=now
                )
                count += await self.templates.replace(fresh, stored.version)
        return count

    # --- the recipients projection ------------------------------------------------------------

    async def update_recipient(self, user_id: str, **fields: Any) -> None:
        await self.recipients.upsert(user_id, fields)

    async def user_deleted(self, user_id: str) -> None:
        """Anonymises the user's history and forgets their preferences and address."""
        count = await self.notifications.anonymise(user_id)
        await self.preferences.delete(user_id)
        await self.recipients.delete(user_id)
        log.info("user %s deleted: %d notifications anonymised", user_id, count)

    # --- creating notifications ---------------------------------------------------------------

    async def _template(self, event_type: str, channel: Channel, locale: str) -> Template | None:
        for candidate in rendering.locale_chain(locale, self.default_locale):
            found = await self.templates.active(event_type, channel, candidate)
            if found is not None:
                return found
        return None

    def _variables(self, incoming: Incoming, recipient: Recipient, redact: bool) -> dict[str, Any]:
        event = MessageToDict(
            incoming.message,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        if redact:
            for name in incoming.secret_fields:
                if name in event:
                    event[name] = domain.REDACTED
        unsubscribe = ""
        if incoming.topic in UNSUBSCRIBABLE:
            token = self.secrets.unsubscribe_token(recipient.user_id, incoming.topic)
            unsubscribe = (
                f"{self.shop.api_url}/v1/notification-preferences:unsubscribe?token={token}"
            )
        return {
            "event": event,
            "user": {
                "display_name": recipient.display_name or recipient.email,
                "email": recipient.email,
                "locale": recipient.locale,
            },
            "shop": {"name": self.shop.name, "url": self.shop.url},
            "unsubscribe_url": unsubscribe,
        }

    async def notify(self, incoming: Incoming) -> list[Notification]:
        """The notifications `incoming` causes for its user (see the module docstring)."""
        recipient = await self.recipients.get(incoming.user_id)
        if recipient is None:
            # Without the projection there is no address or setting to honour; the user
            # service's events create it, so this is a user unknown to the platform.
            log.warning(
                "no recipient %s for %s %s",
                incoming.user_id,
                incoming.event.type,
                incoming.event.id,
            )
            return []
        prefs = await self.preferences.get(incoming.user_id) or Preferences(incoming.user_id)
        now = self.clock.now()
        message = domain.Message(incoming.topic, incoming.security, incoming.category_ids)
        decisions = domain.plan(message, recipient, prefs, now, self.available)
        created = []
        for decision in decisions:
            n = await self._create(incoming, recipient, decision, now)
            if n is not None:
                created.append(n)
        return created

    async def _create(
        self, incoming: Incoming, recipient: Recipient, decision: Decision, now: datetime
    ) -> Notification | None:
        event_type = incoming.template_event_type or incoming.event.type
        channel = decision.channel
        template = await self._template(event_type, channel, recipient.locale)
        if template is None and channel in (Channel.SMS, Channel.PUSH):
            # SMS and push read like the in-app text unless a template of their own exists.
            template = await self._template(event_type, Channel.IN_APP, recipient.locale)
        if template is None:
            return None
        try:
            stored = rendering.render(template, self._variables(incoming, recipient, redact=True))
            sent = (
                rendering.render(template, self._variables(incoming, recipient, redact=False))
                if incoming.secret_fields
                else stored
            )
        except rendering.RenderError as exc:
            log.error("template %s does not render: %s", template.id, exc)
            stored = sent = None
        source_id = incoming.source_event_id or incoming.event.id
        unsubscribe = ""
        if channel == Channel.EMAIL and incoming.topic in UNSUBSCRIBABLE:
            unsubscribe = self._variables(incoming, recipient, redact=True)["unsubscribe_url"]
        n = Notification(
            id=str(uuid.uuid4()),
            user_id=recipient.user_id,
            channel=channel,
            topic=incoming.topic,
            state=decision.state,
            dedupe_key=f"{source_id}:{recipient.user_id}:{int(channel)}",
            create_time=now,
            subject=stored.subject if stored else "",
            body=stored.body if stored else "",
            html_body=stored.html_body if stored else "",
            recipient=recipient.address(channel),
            template_id=template.id,
            template_version=template.version,
            failure_reason=decision.reason,
            source_event_id=source_id,
            source_event_type=incoming.source_event_type or incoming.event.type,
            list_unsubscribe=unsubscribe,
        )
        events: list[Event] = []
        if stored is None:
            n = replace(n, state=State.FAILED, failure_reason="template does not render")
            events.append(self._failed_event(n))
        elif decision.state == State.QUEUED and channel == Channel.IN_APP:
            n = replace(n, state=State.SENT, send_time=now, attempt_count=1)
            events.append(self._sent_event(n))
        elif decision.state == State.QUEUED:
            n = replace(
                n,
                scheduled_time=decision.scheduled_time or now,
                sealed=self.secrets.seal(sent) if incoming.secret_fields else b"",
            )
        if not await self.notifications.add(n, events):
            log.info(
                "duplicate: %s already notified %s on %s",
                source_id,
                recipient.user_id,
                channel.name,
            )
            return None
        if n.state == State.QUEUED:
            self._due.set()
        if channel == Channel.IN_APP:
            await self._inbox_change(recipient.user_id)
        return n

    def _sent_event(self, n: Notification) -> Event:
        return Event.of(
            notification_events_pb2.NotificationSent(
                notification_id=n.id,
                user_id=n.user_id,
                channel=int(n.channel),
                topic=int(n.topic),
                template_id=n.template_id,
                source_event_id=n.source_event_id,
                source_event_type=n.source_event_type,
                attempt_count=n.attempt_count,
            ),
            SOURCE,
        )

    def _failed_event(self, n: Notification) -> Event:
        return Event.of(
            notification_events_pb2.NotificationFailed(
                notification_id=n.id,
                user_id=n.user_id,
                channel=int(n.channel),
                topic=int(n.topic),
                template_id=n.template_id,
                source_event_id=n.source_event_id,
                source_event_type=n.source_event_type,
                attempt_count=n.attempt_count,
                failure_reason=n.failure_reason,
            ),
            SOURCE,
        )

    async def _inbox_change(self, user_id: str) -> None:
        await self.notifications.bump_inbox(user_id)
        signal = self._inbox_changed.get(user_id)
        if signal is not None:
            signal.set()

    # --- the new-product fan-out --------------------------------------------------------------

    async def announce_product(self, event: Event, product: ProtoMessage) -> int:
        """Splits the announcement into batch events of `batch_size` subscribers, recorded
        once per ProductPublished (a redelivery records nothing); returns the batch count."""
        batches: list[Event] = []
        after = ""
        while True:
            ids = await self.preferences.new_product_subscribers(after, self.batch_size)
            if not ids:
                break
            batches.append(
                Event.of(
                    notification_events_pb2.NewProductAnnouncementBatched(
                        source_event_id=event.id,
                        product_id=product.id,
                        product_title=product.title,
                        price=product.price,
                        category_ids=product.category_ids,
                        user_ids=ids,
                    ),
                    SOURCE,
                )
            )
            after = ids[-1]
        if batches and not await self.fanouts.record(event.id, batches):
            return 0
        return len(batches)

    # --- sending --------------------------------------------------------------------------------

    async def run_senders(self) -> None:
        """The senders: `senders` tasks that claim due notifications and send them.

        While nothing is due only the first one looks again every `poll_seconds` (for
        scheduled retries, quiet hours ending, other replicas' writes); the others wait to be
        woken by a write of this replica or by the first one finding work. Four senders each
        polling meant four claims (on FerretDB v1 four scans of the whole collection) per
        period on an idle service."""
        await asyncio.gather(*(self._sender(polls=i == 0) for i in range(self.senders)))

    async def _sender(self, *, polls: bool = True) -> None:
        while True:
            try:
                sent = await self.send_due()
            except Exception:  # the store restarting: wait and claim again
                log.exception("sending failed; retrying")
                sent = 0
            if sent:
                self._due.set()  # work found: wake the senders that wait without polling
                continue
            self._due.clear()
            if not polls:
                await self._due.wait()
                continue
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._due.wait()
            except TimeoutError:
                pass

    async def send_due(self, limit: int = 50) -> int:
        """Claims and sends up to `limit` due notifications; returns how many it handled."""
        count = 0
        while count < limit:
            now = self.clock.now()
            claimed = await self.notifications.claim_due(now, now + self.lease, limit - count)
            if not claimed:
                break
            for n in claimed:
                await self._deliver(n)
            count += len(claimed)
        return count

    async def _deliver(self, n: Notification) -> Notification:
        try:
            content = (
                self.secrets.unseal(n.sealed)
                if n.sealed
                else Rendered(n.subject, n.body, n.html_body)
            )
        except InvalidToken:
            content = Rendered(n.subject, n.body, n.html_body)
        attempt = n.attempt_count + 1
        now = self.clock.now()
        try:
            await self.channels.send(n, content)
        except SendError as exc:
            if not exc.permanent and attempt < domain.MAX_ATTEMPTS:
                retry = replace(
                    n,
                    attempt_count=attempt,
                    failure_reason=f"temporary: {exc.reason}",
                    scheduled_time=now + domain.retry_delay(attempt),
                )
                await self.notifications.save(retry)
                log.info("notification %s: %s; retry %d", n.id, exc.reason, attempt)
                return retry
            failed = replace(
                n,
                state=State.FAILED,
                attempt_count=attempt,
                failure_reason=exc.reason,
                scheduled_time=None,
                sealed=b"",
            )
            await self.notifications.save(failed, [] if n.test else [self._failed_event(failed)])
            log.warning("notification %s failed for good: %s", n.id, exc.reason)
            if not n.test:
                await self._fall_back(failed, n.sealed)
            return failed
        sent = replace(
            n,
            state=State.SENT,
            attempt_count=attempt,
            failure_reason="",
            send_time=now,
            scheduled_time=None,
            sealed=b"",
        )
        await self.notifications.save(sent, [] if n.test else [self._sent_event(sent)])
        return sent

    async def _fall_back(self, failed: Notification, sealed: bytes) -> None:
        """After a channel failed for good, the same message on the next channel allowed."""
        recipient = await self.recipients.get(failed.user_id)
        if recipient is None:
            return
        prefs = await self.preferences.get(failed.user_id) or Preferences(failed.user_id)
        now = self.clock.now()
        decision = domain.fallback(failed.channel, failed.topic, recipient, prefs, now)
        if decision is None or decision.channel not in self.available:
            return
        n = replace(
            failed,
            id=str(uuid.uuid4()),
            channel=decision.channel,
            state=State.QUEUED,
            dedupe_key=f"{failed.source_event_id}:{failed.user_id}:{int(decision.channel)}",
            recipient=recipient.address(decision.channel),
            failure_reason=f"fallback after {failed.channel.name.lower()} failed",
            attempt_count=0,
            create_time=now,
            scheduled_time=now,
            send_time=None,
            sealed=sealed,
            list_unsubscribe="",
        )
        if await self.notifications.add(n):
            self._due.set()

    # --- reading --------------------------------------------------------------------------------

    async def _owned(self, caller: Principal, notification_id: str) -> Notification:
        n = await self.notifications.get(notification_id)
        # Another user's notification is NOT_FOUND, not PERMISSION_DENIED: its existence is
        # none of the caller's business. Admins read every user's.
        if n is None or (n.user_id != caller.user_id and not caller.admin):
            raise errors.NotFound(
                f"notification {notification_id} does not exist", reason="NOTIFICATION_NOT_FOUND"
            )
        return n

    async def get(self, caller: Principal, notification_id: str) -> Notification:
        return await self._owned(caller, notification_id)

    async def list(
        self,
        caller: Principal,
        *,
        user_id: str = "",
        channel: Channel | None = None,
        topic: Topic | None = None,
        state: State | None = None,
        unread_only: bool = False,
        cursor: Cursor | None = None,
        limit: int = 20,
    ) -> tuple[list[Notification], Cursor | None]:
        whose = caller.user_id
        if user_id and user_id != caller.user_id:
            if not caller.admin:
                raise errors.PermissionDenied("only admins list other users' notifications")
            whose = user_id
        return await self.notifications.list(
            whose,
            channel=channel,
            topic=topic,
            state=state,
            unread_only=unread_only,
            cursor=cursor,
            limit=limit,
        )

    async def mark_read(self, caller: Principal, notification_id: str) -> Notification:
        n = await self._owned(caller, notification_id)
        if n.user_id != caller.user_id:
            raise errors.NotFound(
                f"notification {notification_id} does not exist", reason="NOTIFICATION_NOT_FOUND"
            )
        marked = await self.notifications.mark_read(n.id, self.clock.now())
        if n.read_time is None and n.channel == Channel.IN_APP:
            await self._inbox_change(n.user_id)
        return marked or n

    async def mark_all_read(
        self, caller: Principal, channel: Channel | None, end_time: datetime | None
    ) -> int:
        now = self.clock.now()
        if end_time is not None and end_time > now:
            raise errors.InvalidArgument("end_time", "must not be in the future")
        count = await self.notifications.mark_all_read(
            caller.user_id, channel, end_time or now, now
        )
        if count:
            await self._inbox_change(caller.user_id)
        return count

    async def count_unread(self, caller: Principal, channel: Channel | None) -> int:
        return await self.notifications.count_unread(caller.user_id, channel)

    async def watch(
        self, caller: Principal, start_time: datetime | None
    ) -> AsyncIterator[tuple[Notification | None, int, int]]:
        """(notification or None, unread in-app count, inbox version) as the inbox changes.

        Woken in-process by this replica's writes and polling every watch_poll_seconds for the
        others' (no change streams on FerretDB v1)."""
        now = self.clock.now()
        if start_time is not None and start_time < now - WATCH_BACKLOG:
            raise errors.InvalidArgument("start_time", "must be at most 7 days ago")
        user = caller.user_id
        signal = self._inbox_changed.setdefault(user, asyncio.Event())
        after = start_time or now
        # Ids already sent that were created at `after` exactly: the next query starts at that
        # millisecond again, so a notification created in the same millisecond is not missed.
        at_boundary: set[str] = set()
        if start_time is None:  # the live feed only: not what is already there
            at_boundary = {n.id for n in await self.notifications.in_app_since(user, after)}
        seen_version = -1
        try:
            while True:
                signal.clear()
                version = await self.notifications.inbox_version(user)
                new = [
                    n
                    for n in await self.notifications.in_app_since(user, after)
                    if n.id not in at_boundary
                ]
                count = await self.notifications.count_unread(user, Channel.IN_APP)
                # Streamed to the user's open client = delivered (SENT -> DELIVERED), marked
                # before they are yielded so the stream shows the state the history will show.
                streamed = [n.id for n in new if n.state == State.SENT]
                if streamed:
                    await self.notifications.mark_delivered(streamed, self.clock.now())
                for n in new:
                    if n.create_time > after:
                        after, at_boundary = n.create_time, set()
                    at_boundary.add(n.id)
                    if n.state == State.SENT:
                        n = replace(n, state=State.DELIVERED, deliver_time=self.clock.now())
                    yield n, count, version
                if not new and version != seen_version:
                    yield None, count, version
                seen_version = version
                try:
                    async with asyncio.timeout(self.watch_poll_seconds):
                        await signal.wait()
                except TimeoutError:
                    pass
        finally:
            if not signal.is_set() and self._inbox_changed.get(user) is signal:
                self._inbox_changed.pop(user, None)

    # --- admin ----------------------------------------------------------------------------------

    async def retry(self, caller: Principal, notification_id: str) -> Notification:
        n = await self.notifications.get(notification_id)
        if n is None:
            raise errors.NotFound(
                f"notification {notification_id} does not exist", reason="NOTIFICATION_NOT_FOUND"
            )
        if n.state != State.FAILED:
            raise errors.FailedPrecondition(f"notification is {n.state.name}, not FAILED")
        recipient = await self.recipients.get(n.user_id) if n.user_id else None
        address = recipient.address(n.channel) if recipient else n.recipient
        now = self.clock.now()
        if recipient is not None and not n.test:
            prefs = await self.preferences.get(n.user_id) or Preferences(n.user_id)
            decisions = domain.plan(domain.Message(n.topic), recipient, prefs, now, (n.channel,))
            skipped = [d for d in decisions if d.channel == n.channel and d.state != State.QUEUED]
            if skipped:
                n = replace(n, state=State.SKIPPED_BY_PREFERENCE, failure_reason=skipped[0].reason)
                await self.notifications.save(n)
                return n
        queued = replace(
            n, state=State.QUEUED, recipient=address, failure_reason="", scheduled_time=now
        )
        await self.notifications.save(queued)
        self._due.set()
        return queued

    async def send_test(
        self,
        *,
        request_id: str,
        channel: Channel,
        user_id: str,
        address: str,
        template_id: str,
        variables: dict[str, Any] | None,
        subject: str,
        body: str,
    ) -> Notification:
        v = errors.Violations()
        v.check(channel in Channel.__members__.values(), "channel", "is required")
        v.check(
            bool(user_id) != bool(address), "recipient", "give exactly one of user_id and address"
        )
        v.check(bool(template_id) or bool(body), "body", "give a template_id or a body")
        if channel in (Channel.EMAIL, Channel.PUSH) and not template_id:
            v.check(bool(subject), "subject", "is required for email and push")
        if address and channel in (Channel.PUSH, Channel.IN_APP):
            v.check(False, "address", "push and in-app need a user_id")
        if address and channel == Channel.EMAIL:
            v.check("@" in address and " " not in address, "address", "is not an email address")
        if address and channel == Channel.SMS:
            v.check(
                address.startswith("+") and address[1:].isdigit(),
                "address",
                "is not an E.164 number",
            )
        v.raise_if_any()
        dedupe = f"test:{request_id or uuid.uuid4()}"
        recipient = None
        if user_id:
            recipient = await self.recipients.get(user_id)
            if recipient is None:
                raise errors.NotFound(f"user {user_id} does not exist", reason="USER_NOT_FOUND")
            address = recipient.address(channel)
            if channel in (Channel.EMAIL, Channel.SMS) and not address:
                raise errors.FailedPrecondition(
                    f"the user has no address for {channel.name.lower()}"
                )
        template = None
        if template_id:
            template = await self.templates.get(template_id)
            if template is None:
                raise errors.NotFound(
                    f"notification template {template_id} does not exist",
                    reason="NOTIFICATION_TEMPLATE_NOT_FOUND",
                )
            if template.channel != channel:
                raise errors.InvalidArgument("template_id", "renders for another channel")
            try:
                content = rendering.render(
                    template, variables or self.sample_variables(template, recipient)
                )
            except rendering.RenderError as exc:
                raise errors.InvalidArgument(exc.field, exc.message) from None
        else:
            content = Rendered(subject, body, "")
        if channel != Channel.IN_APP and channel not in self.available:
            raise errors.FailedPrecondition(f"{channel.name.lower()} is not configured")
        now = self.clock.now()
        n = Notification(
            id=str(uuid.uuid4()),
            user_id=user_id,
            channel=channel,
            topic=Topic.UNSPECIFIED if template is None else _topic_of(template.event_type),
            state=State.QUEUED,
            dedupe_key=dedupe,
            create_time=now,
            subject=content.subject,
            body=content.body,
            html_body=content.html_body,
            recipient=address,
            template_id=template.id if template else "",
            template_version=template.version if template else 0,
            test=True,
            # Claimed by no sender: this call sends it itself, right now.
            scheduled_time=now + timedelta(days=365),
        )
        if not await self.notifications.add(n):
            for existing in (
                (await self.notifications.list(user_id, limit=100))[0] if user_id else []
            ):
                if existing.dedupe_key == dedupe:
                    return existing
            raise errors.AlreadyExists("a test with this request_id was already sent")
        if channel == Channel.IN_APP:
            sent = replace(n, state=State.SENT, send_time=now, attempt_count=1, scheduled_time=None)
            await self.notifications.save(sent)
            await self._inbox_change(user_id)
            return sent
        return await self._deliver(n)

    def sample_variables(
        self, template: Template, recipient: Recipient | None = None
    ) -> dict[str, Any]:
        """Variables for a preview: a sample of the template's event, and a sample user."""
        from services.notification import samples

        recipient = recipient or Recipient(
            user_id="00000000-0000-0000-0000-000000000000",
            email="ada@example.com",
            display_name="Ada Lovelace",
        )
        incoming = Incoming(
            event=Event.of(samples.sample(template.event_type), SOURCE),
            message=samples.sample(template.event_type),
            user_id=recipient.user_id,
            topic=_topic_of(template.event_type),
        )
        return self._variables(incoming, recipient, redact=False)


def _topic_of(event_type: str) -> Topic:
    from services.notification.samples import TOPICS

    return TOPICS.get(event_type, Topic.UNSPECIFIED)


class PushDeviceHandlers:
    """The caller's push devices (Web Push subscriptions) and the VAPID public key.

    `guard` is the SSRF guard (kit.ssrf.UrlGuard) every endpoint passes when it is registered
    (the sender checks the address again at connect time); `vapid_public_key` is empty when
    push is not configured, and then registering is FAILED_PRECONDITION."""

    def __init__(
        self,
        *,
        devices: PushDeviceRepository,
        guard: Any,
        vapid_public_key: str,
        clock: Any,
    ) -> None:
        self.devices = devices
        self.guard = guard
        self.vapid_public_key = vapid_public_key
        self.clock = clock

    def web_push_config(self) -> str:
        if not self.vapid_public_key:
            raise errors.FailedPrecondition("web push is not configured on this deployment")
        return self.vapid_public_key

    async def create(
        self,
        caller: Principal,
        *,
        platform: Platform | None,
        endpoint: str,
        p256dh: str,
        auth: str,
        display_name: str,
    ) -> PushDevice:
        from services.notification.adapters.webpush import b64url_decode

        v = errors.Violations()
        v.check(platform is not None, "push_device.platform", "is required")
        v.check(bool(endpoint.strip()), "push_device.token", "is required")
        v.check(len(display_name) <= 100, "push_device.display_name", "is at most 100 characters")
        v.raise_if_any()
        if platform != Platform.WEB_PUSH:
            raise errors.FailedPrecondition(
                "only PLATFORM_WEB_PUSH is configured on this deployment"
            )
        self.web_push_config()

        def key(value: str, size: int) -> bool:
            try:
                raw = b64url_decode(value.strip())
            except ValueError:
                return False
            return len(raw) == size and (size != 65 or raw[0] == 4)

        v.check(
            key(p256dh, 65),
            "push_device.web_push_keys.p256dh",
            "must be the subscription's P-256 public key (65 bytes, base64url)",
        )
        v.check(
            key(auth, 16),
            "push_device.web_push_keys.auth",
            "must be the subscription's 16-byte auth secret (base64url)",
        )
        v.raise_if_any()
        # The SSRF guard: https, a public address (what the name resolves to, now).
        target = await self.guard.check(endpoint.strip())
        mine = await self.devices.list(caller.user_id)
        existing = await self.devices.by_endpoint(target.url)
        if len(mine) >= domain.MAX_PUSH_DEVICES and (
            existing is None or existing.user_id != caller.user_id
        ):
            raise errors.ResourceExhausted(
                f"at most {domain.MAX_PUSH_DEVICES} push devices per user: delete one first"
            )
        return await self.devices.register(
            PushDevice(
                id=str(uuid.uuid4()),
                user_id=caller.user_id,
                platform=Platform.WEB_PUSH,
                endpoint=target.url,
                p256dh=p256dh.strip(),
                auth=auth.strip(),
                display_name=display_name,
                create_time=self.clock.now(),
            )
        )

    async def list(self, caller: Principal) -> list[PushDevice]:
        return await self.devices.list(caller.user_id)

    async def delete(self, caller: Principal, device_id: str) -> None:
        device = await self.devices.get(device_id)
        if device is None or device.user_id != caller.user_id:
            raise errors.NotFound(
                f"push device {device_id} does not exist", reason="PUSH_DEVICE_NOT_FOUND"
            )
        await self.devices.delete(device_id)


class PreferenceHandlers:
    """The caller's notification preferences, and the one-click unsubscribe."""

    def __init__(self, *, preferences: PreferencesRepository, secrets: Secrets, clock: Any) -> None:
        self.preferences = preferences
        self.secrets = secrets
        self.clock = clock

    async def get(self, caller: Principal) -> Preferences:
        return await self.preferences.get(caller.user_id) or Preferences(caller.user_id)

    async def update(self, caller: Principal, change: Any) -> Preferences:
        """Applies `change` (current -> new Preferences) and stores the result."""
        current = await self.get(caller)
        updated = replace(change(current), user_id=caller.user_id, update_time=self.clock.now())
        await self.preferences.save(updated)
        return updated

    async def unsubscribe(self, token: str) -> Topic:
        if not token.strip():
            raise errors.InvalidArgument("token", "is required")
        user_id, topic = self.secrets.read_unsubscribe_token(token)
        current = await self.preferences.get(user_id) or Preferences(user_id)
        await self.preferences.save(current.unsubscribed(topic, self.clock.now()))
        return topic


LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class TemplateHandlers:
    """Admin management of templates: create, update (versioned), delete, preview."""

    def __init__(
        self, *, templates: TemplateRepository, notifications: NotificationHandlers, clock: Any
    ) -> None:
        self.templates = templates
        self.notifications = notifications
        self.clock = clock

    @staticmethod
    def validate(t: Template) -> None:
        from services.notification.samples import SAMPLES

        v = errors.Violations()
        v.check(
            t.event_type in SAMPLES,
            "event_type",
            "is not an event the notification service renders",
        )
        v.check(t.channel in tuple(Channel), "channel", "is required")
        v.check(
            bool(LOCALE.match(t.locale)),
            "locale",
            "is not a BCP 47 language tag such as en or de-CH",
        )
        v.check(bool(t.body_template.strip()), "body_template", "is required")
        if t.channel in (Channel.EMAIL, Channel.PUSH):
            v.check(
                bool(t.subject_template.strip()),
                "subject_template",
                "is required for email and push",
            )
        if t.channel == Channel.SMS:
            v.check(not t.subject_template, "subject_template", "must be empty for SMS")
        if t.channel != Channel.EMAIL:
            v.check(not t.html_body_template, "html_body_template", "is for email only")
        v.raise_if_any()
        try:
            rendering.check(t.subject_template, t.body_template, t.html_body_template)
        except rendering.RenderError as exc:
            raise errors.InvalidArgument(exc.field, exc.message) from None

    async def create(self, template: Template, request_id: str) -> Template:
        self.validate(template)
        now = self.clock.now()
        new = replace(
            template,
            id=str(uuid.uuid4()),
            version=1,
            create_time=now,
            update_time=now,
            default=False,
        )
        return await self.templates.add(new, request_id)

    async def get(self, template_id: str) -> Template:
        found = await self.templates.get(template_id)
        if found is None:
            raise errors.NotFound(
                f"notification template {template_id} does not exist",
                reason="NOTIFICATION_TEMPLATE_NOT_FOUND",
            )
        return found

    async def list(
        self, *, event_type: str, channel: Channel | None, locale: str, active_only: bool
    ) -> list[Template]:
        return [
            t
            for t in await self.templates.list()
            if (not event_type or t.event_type == event_type)
            and (channel is None or t.channel == channel)
            and (not locale or t.locale == locale)
            and (not active_only or t.active)
        ]

    async def update(self, template_id: str, change: Any) -> Template:
        for _ in range(5):
            current = await self.get(template_id)
            updated = replace(
                change(current), version=current.version + 1, update_time=self.clock.now()
            )
            self.validate(updated)
            if await self.templates.replace(updated, current.version):
                return updated
        raise errors.Aborted("the template changed meanwhile; try again")

    async def delete(self, template_id: str) -> None:
        current = await self.get(template_id)
        if current.active:
            raise errors.FailedPrecondition("the template is active: deactivate it first")
        await self.templates.delete(template_id)

    async def render(self, template_id: str, variables: dict[str, Any] | None) -> Rendered:
        template = await self.get(template_id)
        try:
            return rendering.render(
                template, variables or self.notifications.sample_variables(template)
            )
        except rendering.RenderError as exc:
            raise errors.InvalidArgument(exc.field, exc.message) from None
