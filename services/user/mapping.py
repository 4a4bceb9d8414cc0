"""Translation between the user service's protobuf messages and its domain objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from emporium.user.v1 import address_pb2, auth_tokens_pb2, user_pb2, user_settings_pb2
from google.type import postal_address_pb2

from kit.errors import InvalidArgument
from kit.mapping import timestamp
from services.user import domain
from services.user.domain import (
    Address,
    NotificationChannels,
    PostalAddress,
    State,
    User,
    UserSettings,
)

CHANNEL_FIELDS = ("email", "sms", "push", "in_app")

_ROLES = {
    domain.ROLE_CUSTOMER: user_pb2.User.ROLE_CUSTOMER,
    domain.ROLE_ADMIN: user_pb2.User.ROLE_ADMIN,
}
_ROLE_NAMES = {value: name for name, value in _ROLES.items()}
_STATES = {
    State.ACTIVE: user_pb2.User.STATE_ACTIVE,
    State.DISABLED: user_pb2.User.STATE_DISABLED,
    State.DELETED: user_pb2.User.STATE_DELETED,
}
_STATE_NAMES = {value: name for name, value in _STATES.items()}


def user_to_proto(user: User) -> user_pb2.User:
    return user_pb2.User(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        phone_number=user.phone_number,
        roles=roles_to_proto(user.roles),
        state=_STATES[user.state],
        email_verified=user.email_verified,
        last_login_time=timestamp(user.last_login_time),
        create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time),
    )


def role_name(role: int) -> str:
    if role == user_pb2.User.ROLE_UNSPECIFIED:
        return ""
    if role not in _ROLE_NAMES:
        raise InvalidArgument("role", "is not a known role")
    return _ROLE_NAMES[role]


def roles_from_proto(roles: Iterable[int]) -> frozenset[str]:
    """The role names of SetUserRoles' `roles`; ROLE_CUSTOMER is always held."""
    names = {domain.ROLE_CUSTOMER}
    for role in roles:
        if role not in _ROLE_NAMES:
            raise InvalidArgument("roles", "holds ROLE_UNSPECIFIED or an unknown role")
        names.add(_ROLE_NAMES[role])
    return frozenset(names)


def roles_to_proto(roles: Iterable[str]) -> list[int]:
    return sorted(_ROLES[r] for r in roles if r in _ROLES)


def state_of(state: int) -> State | None:
    if state == user_pb2.User.STATE_UNSPECIFIED:
        return None
    if state not in _STATE_NAMES:
        raise InvalidArgument("state", "is not a known state")
    return _STATE_NAMES[state]


def settings_to_proto(settings: UserSettings) -> user_settings_pb2.UserSettings:
    channels = settings.channels
    return user_settings_pb2.UserSettings(
        user_id=settings.user_id,
        locale=settings.locale,
        time_zone=settings.time_zone,
        currency_code=settings.currency_code,
        notification_channels=user_settings_pb2.UserSettings.NotificationChannels(
            email_enabled=channels.email,
            sms_enabled=channels.sms,
            push_enabled=channels.push,
            in_app_enabled=channels.in_app,
        ),
        marketing_consent=settings.marketing_consent,
        marketing_consent_update_time=timestamp(settings.marketing_consent_update_time),
        update_time=timestamp(settings.update_time),
    )


def settings_from_proto(message: user_settings_pb2.UserSettings, user_id: str) -> UserSettings:
    channels = message.notification_channels
    return UserSettings(
        user_id=user_id,
        update_time=datetime.now(UTC),
        locale=message.locale,
        time_zone=message.time_zone,
        currency_code=message.currency_code,
        channels=NotificationChannels(
            email=channels.email_enabled,
            sms=channels.sms_enabled,
            push=channels.push_enabled,
            in_app=channels.in_app_enabled,
        ),
        marketing_consent=message.marketing_consent,
    )


def postal_to_proto(postal: PostalAddress) -> postal_address_pb2.PostalAddress:
    return postal_address_pb2.PostalAddress(
        region_code=postal.region_code,
        address_lines=list(postal.address_lines),
        recipients=list(postal.recipients),
        postal_code=postal.postal_code,
        administrative_area=postal.administrative_area,
        locality=postal.locality,
        sublocality=postal.sublocality,
        organization=postal.organization,
        language_code=postal.language_code,
    )


def postal_from_proto(message: postal_address_pb2.PostalAddress) -> PostalAddress:
    return PostalAddress(
        region_code=message.region_code.strip().upper(),
        address_lines=tuple(line.strip() for line in message.address_lines),
        recipients=tuple(r.strip() for r in message.recipients),
        postal_code=message.postal_code.strip(),
        administrative_area=message.administrative_area.strip(),
        locality=message.locality.strip(),
        sublocality=message.sublocality.strip(),
        organization=message.organization.strip(),
        language_code=message.language_code.strip(),
    )


def address_to_proto(address: Address) -> address_pb2.Address:
    return address_pb2.Address(
        id=address.id,
        label=address.label,
        postal_address=postal_to_proto(address.postal_address),
        phone_number=address.phone_number,
        default_shipping=address.default_shipping,
        default_billing=address.default_billing,
        create_time=timestamp(address.create_time),
        update_time=timestamp(address.update_time),
    )


def address_from_proto(message: address_pb2.Address, request_id: str = "") -> Address:
    """A new or changed address as the client sent it; ids and times are set by handlers."""
    epoch = datetime.fromtimestamp(0, UTC)
    return Address(
        id="",
        user_id="",
        postal_address=postal_from_proto(message.postal_address),
        create_time=epoch,
        update_time=epoch,
        label=message.label.strip(),
        phone_number=message.phone_number.strip(),
        default_shipping=message.default_shipping,
        default_billing=message.default_billing,
        request_id=request_id,
    )


def tokens_to_proto(tokens) -> auth_tokens_pb2.AuthTokens:
    return auth_tokens_pb2.AuthTokens(
        access_token=tokens.access_token,
        token_type="Bearer",
        access_token_expire_time=timestamp(tokens.access_expire_time),
        refresh_token=tokens.refresh_token,
        refresh_token_expire_time=timestamp(tokens.refresh_expire_time),
        user=user_to_proto(tokens.user),
    )
