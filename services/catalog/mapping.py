"""Translation between the catalog's protobuf messages and its domain objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from emporium.catalog.v1 import (
    category_pb2,
    product_pb2,
    reservation_pb2,
    review_pb2,
    stock_pb2,
)
from emporium.file.v1 import file_pb2
from google.type import money_pb2

from kit.errors import InvalidArgument
from kit.mapping import timestamp
from services.catalog.domain import (
    AdjustReason,
    Category,
    ImageThumbnail,
    Line,
    Money,
    Product,
    ProductImage,
    ProductState,
    RatingSummary,
    ReleaseReason,
    Reservation,
    ReservationState,
    Review,
    Shortage,
    StockAdjustment,
    StockLevel,
)

EPOCH = datetime.fromtimestamp(0, UTC)

P = product_pb2.Product
_PRODUCT_STATES = {
    ProductState.DRAFT: P.STATE_DRAFT,
    ProductState.ACTIVE: P.STATE_ACTIVE,
    ProductState.ARCHIVED: P.STATE_ARCHIVED,
}
_PRODUCT_STATE_OF = {v: k for k, v in _PRODUCT_STATES.items()}

R = reservation_pb2.Reservation
_RESERVATION_STATES = {
    # A reservation still being made is shown as what it will most likely become.
    ReservationState.PENDING: R.STATE_ACTIVE,
    ReservationState.ACTIVE: R.STATE_ACTIVE,
    ReservationState.COMMITTED: R.STATE_COMMITTED,
    ReservationState.RELEASED: R.STATE_RELEASED,
    ReservationState.FAILED: R.STATE_FAILED,
}
_RESERVATION_STATE_OF = {
    R.STATE_ACTIVE: ReservationState.ACTIVE,
    R.STATE_COMMITTED: ReservationState.COMMITTED,
    R.STATE_RELEASED: ReservationState.RELEASED,
    R.STATE_FAILED: ReservationState.FAILED,
}
_RELEASE_REASONS = {
    ReleaseReason.NONE: R.RELEASE_REASON_UNSPECIFIED,
    ReleaseReason.ORDER_CANCELLED: R.RELEASE_REASON_ORDER_CANCELLED,
    ReleaseReason.EXPIRED: R.RELEASE_REASON_EXPIRED,
    ReleaseReason.ADMIN_REQUESTED: R.RELEASE_REASON_ADMIN_REQUESTED,
}
A = stock_pb2.StockAdjustment
_REASONS = {
    AdjustReason.RESTOCK: A.REASON_RESTOCK,
    AdjustReason.CYCLE_COUNT: A.REASON_CYCLE_COUNT,
    AdjustReason.DAMAGED: A.REASON_DAMAGED,
    AdjustReason.RETURNED: A.REASON_RETURNED,
    AdjustReason.OTHER: A.REASON_OTHER,
}
_REASON_OF = {v: k for k, v in _REASONS.items()}


def money_to_proto(money: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=money.currency_code, units=money.units, nanos=money.nanos)


def money_from_proto(message: money_pb2.Money) -> Money:
    return Money(message.currency_code.strip().upper(), message.units, message.nanos)


# --- products ---------------------------------------------------------------------------------


def product_to_proto(product: Product) -> product_pb2.Product:
    return product_pb2.Product(
        id=product.id,
        sku=product.sku,
        title=product.title,
        description=product.description,
        price=money_to_proto(product.price),
        category_ids=list(product.category_ids),
        attributes=dict(product.attributes),
        state=_PRODUCT_STATES[product.state],
        seller_id=product.seller_id,
        rating_average=product.rating_average,
        rating_count=product.rating_count,
        weight_grams=product.weight_grams,
        images=[image_to_proto(i) for i in product.images],
        etag=product.version,
        publish_time=timestamp(product.publish_time),
        create_time=timestamp(product.create_time),
        update_time=timestamp(product.update_time),
    )


# product_reply's messages by id() of their Product, each beside the Product it was built from
# (held, so that id cannot be reused while its entry lives).
_replies: dict[int, tuple[Product, product_pb2.Product]] = {}
_REPLIES_MAX = 4096


def product_reply(product: Product) -> product_pb2.Product:
    """product_to_proto for a read's reply, built once per Product object. The read cache hands
    out one immutable Product for every hit on an entry (adapters/redis.py), so a hot product's
    message is built once, not on every read (45 us of a 520 us cached GetProduct, issue 18).
    The message is shared by every reply: never modify it."""
    known = _replies.get(id(product))
    if known is not None and known[0] is product:
        return known[1]
    message = product_to_proto(product)
    if len(_replies) >= _REPLIES_MAX:
        del _replies[next(iter(_replies))]  # the oldest entry
    _replies[id(product)] = (product, message)
    return message


def product_from_proto(message: product_pb2.Product) -> tuple[Product, tuple[str, ...]]:
    """The product as the client sent it, and the updatable fields it sets (non-empty)."""
    product = Product(
        id=message.id,
        sku=message.sku,
        title=message.title,
        description=message.description,
        price=money_from_proto(message.price),
        state=ProductState.ACTIVE,
        create_time=EPOCH,
        update_time=EPOCH,
        category_ids=tuple(message.category_ids),
        attributes=dict(message.attributes),
        seller_id=message.seller_id.strip(),
        weight_grams=message.weight_grams,
        version=message.etag,
    )
    present = {
        "sku": bool(message.sku),
        "title": bool(message.title),
        "description": bool(message.description),
        "price": message.HasField("price"),
        "category_ids": bool(message.category_ids),
        "attributes": bool(message.attributes),
        "seller_id": bool(message.seller_id),
        "weight_grams": bool(message.weight_grams),
    }
    return product, tuple(name for name, is_set in present.items() if is_set)


def product_state_of(state: int, field_name: str = "state") -> ProductState | None:
    if state == P.STATE_UNSPECIFIED:
        return None
    if state not in _PRODUCT_STATE_OF:
        raise InvalidArgument(field_name, "is not a known product state")
    return _PRODUCT_STATE_OF[state]


def product_from_bytes(data: bytes) -> Product:
    """A product read back from the cache (stored as its Product message by product_to_proto)."""
    message = product_pb2.Product.FromString(data)
    publish = message.publish_time.ToDatetime(UTC) if message.HasField("publish_time") else None
    return Product(
        id=message.id,
        sku=message.sku,
        title=message.title,
        description=message.description,
        price=Money(message.price.currency_code, message.price.units, message.price.nanos),
        state=_PRODUCT_STATE_OF[message.state],
        create_time=message.create_time.ToDatetime(UTC),
        update_time=message.update_time.ToDatetime(UTC),
        category_ids=tuple(message.category_ids),
        attributes=dict(message.attributes),
        seller_id=message.seller_id,
        weight_grams=message.weight_grams,
        rating_average=message.rating_average,
        rating_count=message.rating_count,
        version=message.etag,
        publish_time=publish,
        ever_published=publish is not None,
        images=tuple(image_from_proto(i) for i in message.images),
    )


def image_to_proto(image: ProductImage) -> product_pb2.ProductImage:
    return product_pb2.ProductImage(
        id=image.id,
        product_id=image.product_id,
        url=image.url,
        content_type=image.content_type,
        size_bytes=image.size_bytes,
        width=image.width,
        height=image.height,
        alt_text=image.alt_text,
        position=image.position,
        create_time=timestamp(image.create_time),
        thumbnails=[
            product_pb2.ProductImage.Thumbnail(
                size=t.size, width=t.width, height=t.height, url=t.url
            )
            for t in image.thumbnails
        ],
    )


def image_from_proto(message: product_pb2.ProductImage) -> ProductImage:
    return ProductImage(
        id=message.id,
        product_id=message.product_id,
        content_type=message.content_type,
        size_bytes=message.size_bytes,
        width=message.width,
        height=message.height,
        create_time=message.create_time.ToDatetime(UTC),
        alt_text=message.alt_text,
        position=message.position,
        url=message.url,
        thumbnails=tuple(
            ImageThumbnail(t.size, t.width, t.height, t.url) for t in message.thumbnails
        ),
    )


# --- categories -------------------------------------------------------------------------------


def category_to_proto(category: Category) -> category_pb2.Category:
    return category_pb2.Category(
        id=category.id,
        name=category.name,
        slug=category.slug,
        parent_id=category.parent_id,
        description=category.description,
        position=category.position,
        create_time=timestamp(category.create_time),
        update_time=timestamp(category.update_time),
    )


def category_from_proto(message: category_pb2.Category) -> tuple[Category, tuple[str, ...]]:
    category = Category(
        id="",
        name=message.name,
        slug=message.slug,
        create_time=EPOCH,
        update_time=EPOCH,
        parent_id=message.parent_id,
        description=message.description,
        position=message.position,
    )
    present = {
        "name": bool(message.name),
        "slug": bool(message.slug),
        "parent_id": bool(message.parent_id),
        "description": bool(message.description),
        "position": bool(message.position),
    }
    return category, tuple(name for name, is_set in present.items() if is_set)


# --- stock and reservations -------------------------------------------------------------------


def stock_to_proto(level: StockLevel, *, full: bool = True) -> stock_pb2.Stock:
    return stock_pb2.Stock(
        product_id=level.product_id,
        available_quantity=level.available,
        on_hand_quantity=level.on_hand if full else 0,
        reserved_quantity=level.reserved if full else 0,
        update_time=timestamp(level.update_time),
    )


def adjustment_to_proto(adjustment: StockAdjustment) -> stock_pb2.StockAdjustment:
    return stock_pb2.StockAdjustment(
        id=adjustment.id,
        product_id=adjustment.product_id,
        delta=adjustment.delta,
        on_hand_quantity=adjustment.on_hand,
        reason=_REASONS[adjustment.reason],
        note=adjustment.note,
        user_id=adjustment.user_id,
        request_id=adjustment.request_id,
        create_time=timestamp(adjustment.create_time),
    )


def reason_of(reason: int) -> AdjustReason | None:
    return _REASON_OF.get(reason)


def line_to_proto(line: Line) -> reservation_pb2.ReservationLine:
    return reservation_pb2.ReservationLine(product_id=line.product_id, quantity=line.quantity)


def lines_from_proto(lines: Iterable[reservation_pb2.ReservationLine]) -> tuple[Line, ...]:
    return tuple(Line(line.product_id.strip(), line.quantity) for line in lines)


def shortage_to_proto(shortage: Shortage) -> reservation_pb2.StockShortage:
    return reservation_pb2.StockShortage(
        product_id=shortage.product_id,
        requested_quantity=shortage.requested,
        available_quantity=shortage.available,
    )


def reservation_to_proto(reservation: Reservation) -> reservation_pb2.Reservation:
    return reservation_pb2.Reservation(
        order_id=reservation.order_id,
        state=_RESERVATION_STATES[reservation.state],
        lines=[line_to_proto(line) for line in reservation.lines],
        shortages=[shortage_to_proto(s) for s in reservation.shortages],
        release_reason=_RELEASE_REASONS[reservation.release_reason],
        expire_time=timestamp(reservation.expire_time)
        if reservation.state is not ReservationState.FAILED
        else None,
        create_time=timestamp(reservation.create_time),
        update_time=timestamp(reservation.update_time),
    )


def release_reason_to_proto(reason: ReleaseReason) -> int:
    return _RELEASE_REASONS[reason]


def reservation_state_of(state: int) -> ReservationState | None:
    if state == R.STATE_UNSPECIFIED:
        return None
    if state not in _RESERVATION_STATE_OF:
        raise InvalidArgument("state", "is not a known reservation state")
    return _RESERVATION_STATE_OF[state]


# --- reviews ----------------------------------------------------------------------------------


def review_to_proto(review: Review) -> review_pb2.Review:
    return review_pb2.Review(
        id=review.id,
        product_id=review.product_id,
        reviewer_id=review.reviewer_id,
        rating=review.rating,
        title=review.title,
        body=review.body,
        create_time=timestamp(review.create_time),
        update_time=timestamp(review.update_time),
    )


def review_from_proto(message: review_pb2.Review) -> tuple[Review, tuple[str, ...]]:
    review = Review(
        id="",
        product_id="",
        reviewer_id="",
        rating=message.rating,
        create_time=EPOCH,
        update_time=EPOCH,
        title=message.title,
        body=message.body,
    )
    present = {
        "rating": bool(message.rating),
        "title": bool(message.title),
        "body": bool(message.body),
    }
    return review, tuple(name for name, is_set in present.items() if is_set)


def summary_to_proto(summary: RatingSummary) -> review_pb2.RatingSummary:
    one, two, three, four, five = summary.counts
    return review_pb2.RatingSummary(
        product_id=summary.product_id,
        rating_average=summary.average,
        rating_count=summary.count,
        one_star_count=one,
        two_star_count=two,
        three_star_count=three,
        four_star_count=four,
        five_star_count=five,
    )


def image_from_file(file: file_pb2.File) -> ProductImage:
    """The product image a FileUploaded announces (the file service's File, READY)."""
    return ProductImage(
        id=file.id,
        product_id=file.product_id,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        width=file.width,
        height=file.height,
        create_time=file.create_time.ToDatetime(UTC),
        alt_text=file.alt_text,
        url=file.uri,
        thumbnails=tuple(
            ImageThumbnail(t.size, t.width, t.height, t.uri) for t in file.thumbnails if t.uri
        ),
    )
