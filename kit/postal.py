"""google.type.PostalAddress as a plain value, for domains that keep addresses (orders, parcels)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from google.type import postal_address_pb2


@dataclass(frozen=True)
class PostalAddress:
    """The fields of google.type.PostalAddress (all but `revision`), with tuples for lists."""

    region_code: str = ""
    language_code: str = ""
    postal_code: str = ""
    sorting_code: str = ""
    administrative_area: str = ""
    locality: str = ""
    sublocality: str = ""
    address_lines: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    organization: str = ""


_LISTS = ("address_lines", "recipients")
_SCALARS = tuple(f.name for f in fields(PostalAddress) if f.name not in _LISTS)


def to_proto(address: PostalAddress) -> postal_address_pb2.PostalAddress:
    message = postal_address_pb2.PostalAddress(
        address_lines=list(address.address_lines), recipients=list(address.recipients)
    )
    for name in _SCALARS:
        setattr(message, name, getattr(address, name))
    return message


def from_proto(message: postal_address_pb2.PostalAddress) -> PostalAddress:
    return PostalAddress(
        **{name: getattr(message, name) for name in _SCALARS},
        address_lines=tuple(message.address_lines),
        recipients=tuple(message.recipients),
    )
