"""The notification service's domain: who gets what on which channel, and when (no I/O).

Precedence, applied by `plan()` to every (event, user) pair, first rule that decides wins:

1. Security messages (email verification, password reset) go by email only, always: no
   setting, preference or quiet hours can stop or delay them (the user asked for them).
2. The user's settings (owned by the user service, learned from its events) are the master
   switch per channel: a channel they do not accept is SKIPPED_BY_PREFERENCE ("channel off in
   the user's settings"), except rule 1 and the in-app record of transactional messages (4).
3. The notification preferences (owned here) subscribe a topic on channels. A topic not
   subscribed, or a channel outside its list, is SKIPPED_BY_PREFERENCE with the reason.
   New products are opt-in (default off) and may be limited to categories; marketing needs the
   consent recorded in the user's settings whatever the subscription says.
4. Transactional messages (account, order and payment messages: receipts, confirmations,
   cancellations, refunds) cannot be switched off: a preference may move them between
   channels, but when nothing would reach the user they still land in the in-app inbox, the
   history they can always read.
5. Quiet hours (user's time zone) defer non-urgent topics (new products, product reviews,
   marketing) on email, SMS and push to the end of the window: QUEUED with scheduled_time and
   the reason "deferred by quiet hours"; they are sent then, never dropped. In-app is silent
   and never deferred; transactional and shipping messages are never deferred.
6. Fallback: unless the subscription names its channels, the message goes on in-app and on
   the first outside channel allowed (email, then push, then SMS); when that one fails for
   good, the next allowed one carries it (`fallback`). Channels named explicitly all get it.
7. Duplicates: at most one notification per (source event id, user, channel), enforced by a
   unique key in storage; a redelivered event finds it and sends nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Channel(enum.IntEnum):
    EMAIL = 1
    SMS = 2
    PUSH = 3
    IN_APP = 4


class Topic(enum.IntEnum):
    UNSPECIFIED = 0
    ACCOUNT = 1
    ORDER_UPDATES = 2
    SHIPPING_UPDATES = 3
    NEW_PRODUCTS = 4
    PRODUCT_REVIEWS = 5
    MARKETING = 6


class State(enum.IntEnum):
    QUEUED = 1
    SENT = 2
    DELIVERED = 3
    FAILED = 4
    SKIPPED_BY_PREFERENCE = 5


# The order channels are tried in when one fails for good (the fallback of `next_channel`).
CHANNEL_ORDER = (Channel.EMAIL, Channel.PUSH, Channel.SMS, Channel.IN_APP)
TRANSACTIONAL_TOPICS = frozenset({Topic.ACCOUNT, Topic.ORDER_UPDATES})
DEFERRABLE_TOPICS = frozenset({Topic.NEW_PRODUCTS, Topic.PRODUCT_REVIEWS, Topic.MARKETING})
SUBSCRIBABLE_TOPICS = (
    Topic.ORDER_UPDATES,
    Topic.SHIPPING_UPDATES,
    Topic.NEW_PRODUCTS,
    Topic.PRODUCT_REVIEWS,
    Topic.MARKETING,
)
REDACTED = "[redacted]"
DEFERRED_REASON = "deferred by quiet hours"


@dataclass(frozen=True)
class Recipient:
    """The local projection of a user, kept current by the user service's events."""

    user_id: str
    email: str = ""
    display_name: str = ""
    locale: str = "en"
    time_zone: str = ""
    phone_number: str = ""
    roles: tuple[str, ...] = ()
    channels: frozenset[Channel] = frozenset({Channel.EMAIL, Channel.IN_APP})
    marketing_consent: bool = False

    def address(self, channel: Channel) -> str:
        if channel == Channel.EMAIL:
            return self.email
        if channel == Channel.SMS:
            return self.phone_number
        return ""

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


class Platform(enum.IntEnum):
    """The push service a device is reached through (PushDevice.Platform)."""

    FCM = 1
    APNS = 2
    WEB_PUSH = 3


MAX_PUSH_DEVICES = 20  # per user


@dataclass(frozen=True)
class PushDevice:
    """A browser (or app) that receives the push notifications of the user who registered it.

    For Web Push, `endpoint` is the subscription's URL at the browser's push service, and
    `p256dh` / `auth` its keys (base64url): the message is encrypted to them (RFC 8291)."""

    id: str
    user_id: str
    platform: Platform
    endpoint: str
    p256dh: str = ""
    auth: str = ""
    display_name: str = ""
    create_time: datetime | None = None
    last_send_time: datetime | None = None


@dataclass(frozen=True)
class Subscription:
    subscribed: bool
    channels: frozenset[Channel] = frozenset()  # empty: every channel the settings accept
    category_ids: tuple[str, ...] = ()  # new products only; empty: every category


@dataclass(frozen=True)
class QuietHours:
    enabled: bool = False
    start_minute: int = 22 * 60
    end_minute: int = 7 * 60

    def end_after(self, moment: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the window `moment` falls in, or None when it falls in none."""
        if not self.enabled or self.start_minute == self.end_minute:
            return None
        local = moment.astimezone(zone)
        minute = local.hour * 60 + local.minute
        start, end = self.start_minute, self.end_minute
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        ends = midnight + timedelta(minutes=end)
        if ends <= local:
            ends += timedelta(days=1)
        return ends.astimezone(moment.tzinfo)


def default_subscriptions() -> dict[Topic, Subscription]:
    subs = {topic: Subscription(True) for topic in SUBSCRIBABLE_TOPICS}
    subs[Topic.NEW_PRODUCTS] = Subscription(False)
    return subs


@dataclass(frozen=True)
class Preferences:
    user_id: str
    topics: dict[Topic, Subscription] = field(default_factory=default_subscriptions)
    quiet_hours: QuietHours = QuietHours()
    update_time: datetime | None = None

    def subscription(self, topic: Topic) -> Subscription:
        return self.topics.get(topic) or default_subscriptions()[topic]

    def unsubscribed(self, topic: Topic, when: datetime) -> Preferences:
        topics = dict(self.topics)
        topics[topic] = replace(self.subscription(topic), subscribed=False)
        return replace(self, topics=topics, update_time=when)


@dataclass(frozen=True)
class Decision:
    """What to do on one channel: send (maybe later) or record as skipped, and why."""

    channel: Channel
    state: State
    reason: str = ""
    scheduled_time: datetime | None = None


@dataclass(frozen=True)
class Message:
    """A message about one event for one user, before the channels are decided."""

    topic: Topic
    security: bool = False  # rule 1
    category_ids: tuple[str, ...] = ()  # new products: the product's categories


def plan(
    message: Message,
    recipient: Recipient,
    prefs: Preferences,
    now: datetime,
    channels: tuple[Channel, ...] = CHANNEL_ORDER,
) -> list[Decision]:
    """The decision for each channel (see the precedence rules in the module docstring)."""
    if message.security:
        return [Decision(Channel.EMAIL, State.QUEUED)]
    topic = message.topic
    transactional = topic in TRANSACTIONAL_TOPICS
    sub = None if topic == Topic.ACCOUNT else prefs.subscription(topic)
    if (
        topic == Topic.NEW_PRODUCTS
        and sub is not None
        and sub.category_ids
        and not set(sub.category_ids) & set(message.category_ids)
    ):
        # Not a message for this user at all, so nothing to record: a skip per channel,
        # subscriber and product would grow the history by the catalog times the audience.
        return []
    decisions: list[Decision] = []
    for channel in channels:
        reason = ""
        if channel not in recipient.channels:
            reason = "channel off in the user's settings"
        elif topic == Topic.MARKETING and not recipient.marketing_consent:
            reason = "no marketing consent"
        elif sub is not None and not sub.subscribed and not transactional:
            reason = f"not subscribed to {topic.name.lower()}"
        elif sub is not None and sub.channels and channel not in sub.channels:
            reason = f"{channel.name.lower()} not chosen for {topic.name.lower()}"
        elif channel in (Channel.SMS,) and not recipient.phone_number:
            reason = "no phone number"
        if reason:
            decisions.append(Decision(channel, State.SKIPPED_BY_PREFERENCE, reason))
            continue
        later = None
        if topic in DEFERRABLE_TOPICS and channel != Channel.IN_APP:
            later = prefs.quiet_hours.end_after(now, recipient.zone())
        if later is not None:
            decisions.append(Decision(channel, State.QUEUED, DEFERRED_REASON, later))
        else:
            decisions.append(Decision(channel, State.QUEUED))
    if sub is None or not sub.channels:
        # Without channels chosen, one outside channel carries the message (the first of
        # email, push, SMS that is allowed) and the others are its fallbacks (rule 6), so a
        # user is not reached three times over; channels chosen explicitly all get it.
        outside = [d for d in decisions if d.state == State.QUEUED and d.channel != Channel.IN_APP]
        decisions = [d for d in decisions if d not in outside[1:]]
    if transactional and not any(d.state == State.QUEUED for d in decisions):
        # Rule 4: transactional messages always reach the in-app history.
        decisions = [d for d in decisions if d.channel != Channel.IN_APP]
        decisions.append(Decision(Channel.IN_APP, State.QUEUED))
    return decisions


def fallback(
    failed: Channel, topic: Topic, recipient: Recipient, prefs: Preferences, now: datetime
) -> Decision | None:
    """The next channel after `failed` that rules 2 and 3 allow for `topic`, if any."""
    later = CHANNEL_ORDER[CHANNEL_ORDER.index(failed) + 1 :]
    for decision in plan(Message(topic=topic), recipient, prefs, now, later):
        if decision.state == State.QUEUED and decision.channel != Channel.IN_APP:
            return decision
    return None


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html_body: str = ""


@dataclass(frozen=True)
class Notification:
    """One message to one user on one channel: an entry of their history."""

    id: str
    user_id: str
    channel: Channel
    topic: Topic
    state: State
    dedupe_key: str
    create_time: datetime
    subject: str = ""
    body: str = ""  # stored redacted when the message carries a secret
    html_body: str = ""  # stored redacted too; never returned by the API
    recipient: str = ""
    template_id: str = ""
    template_version: int = 0
    failure_reason: str = ""
    attempt_count: int = 0
    source_event_id: str = ""
    source_event_type: str = ""
    test: bool = False
    read_time: datetime | None = None
    send_time: datetime | None = None
    deliver_time: datetime | None = None
    scheduled_time: datetime | None = None
    # The unredacted content, sealed (encrypted) while the message waits to be sent, dropped as
    # soon as it is final, so no readable secret stays in storage.
    sealed: bytes = b""
    list_unsubscribe: str = ""  # the one-click unsubscribe URL of marketing-like mail

    @property
    def final(self) -> bool:
        return self.state in (
            State.SENT,
            State.DELIVERED,
            State.FAILED,
            State.SKIPPED_BY_PREFERENCE,
        )

    @property
    def unread(self) -> bool:
        return self.state in (State.SENT, State.DELIVERED) and self.read_time is None


# Retries of temporary failures: 2 s, 4 s, 8 s ... capped at 5 minutes, for up to 12 attempts
# (about half an hour in all), then FAILED.
MAX_ATTEMPTS = 12


def retry_delay(attempt: int) -> timedelta:
    return timedelta(seconds=min(300, 2 ** max(1, attempt)))


class SendError(Exception):
    """A channel could not send; `permanent` says whether trying again can help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def redact_secret(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with each secret replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
