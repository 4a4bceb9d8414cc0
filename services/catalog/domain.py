"""The catalog domain: products, categories, stock levels, reservations, reviews. No I/O."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from kit.errors import Violations

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
SKU_MAX = 64
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
ATTRIBUTES_MAX = 50
ATTRIBUTE_KEY_MAX = 64
ATTRIBUTE_VALUE_MAX = 500
CATEGORY_NAME_MAX = 100
SLUG_MAX = 100
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CATEGORY_DESCRIPTION_MAX = 5_000
REVIEW_TITLE_MAX = 200
REVIEW_BODY_MAX = 5_000
NOTE_MAX = 500
# A sanity bound: a price key (units * 1e9 + nanos) must fit a Cassandra bigint.
PRICE_UNITS_MAX = 1_000_000_000
NANOS = 1_000_000_000

# ISO 4217 active codes (2024), without the fund and metal codes no shop prices in.
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
    KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def clean_text(raw: str) -> str:
    return unicodedata.normalize("NFC", (raw or "").strip())


def has_control(text: str, allow_newlines: bool = False) -> bool:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text)


# --- money ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Money:
    """google.type.Money: units and nanos of one currency (nanos share the sign of units)."""

    currency_code: str
    units: int = 0
    nanos: int = 0

    @property
    def key(self) -> int:
        """The amount in nanos: one integer that sorts and compares (a Cassandra bigint)."""
        return self.units * NANOS + self.nanos

    @classmethod
    def of_key(cls, currency_code: str, key: int) -> Money:
        units, nanos = divmod(abs(key), NANOS)
        sign = -1 if key < 0 else 1
        return cls(currency_code, sign * units, sign * nanos)


def check_money(
    violations: Violations,
    money: Money,
    field_name: str,
    shop_currency: str,
    *,
    allow_negative: bool = False,
) -> Money:
    """Validates a price; an empty currency means the shop's. Returns it with the currency set."""
    code = money.currency_code or shop_currency
    if not re.fullmatch(r"[A-Z]{3}", code):
        violations.add(f"{field_name}.currency_code", "must be an ISO 4217 code such as USD")
    elif code not in ISO_4217:
        violations.add(f"{field_name}.currency_code", f"{code} is not an ISO 4217 currency")
    elif code != shop_currency:
        violations.add(
            f"{field_name}.currency_code", f"must be the shop's currency, {shop_currency}"
        )
    if not -NANOS < money.nanos < NANOS:
        violations.add(f"{field_name}.nanos", "must be between -999,999,999 and 999,999,999")
    elif (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
        violations.add(f"{field_name}.nanos", "must have the same sign as units")
    elif not allow_negative and (money.units < 0 or money.nanos < 0):
        violations.add(f"{field_name}.units", "must not be negative")
    if abs(money.units) >= PRICE_UNITS_MAX:
        violations.add(f"{field_name}.units", f"must be below {PRICE_UNITS_MAX:,}")
    return replace(money, currency_code=code)


# --- products ---------------------------------------------------------------------------------


class ProductState(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


# The fields UpdateProduct may change (its update_mask paths).
UPDATABLE_PRODUCT_FIELDS = (
    "sku",
    "title",
    "description",
    "price",
    "category_ids",
    "attributes",
    "seller_id",
    "weight_grams",
)


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    title: str
    price: Money
    state: ProductState
    create_time: datetime
    update_time: datetime
    description: str = ""
    category_ids: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    seller_id: str = ""
    weight_grams: int = 0
    rating_average: float = 0.0
    rating_count: int = 0
    # A new random value on every write: the product's etag.
    version: str = ""
    publish_time: datetime | None = None
    request_id: str = ""
    # Whether it was ever on sale before (ProductPublished.first_publication).
    ever_published: bool = False
    # Ordered by position; read from their own table, never written with the product.
    images: tuple[ProductImage, ...] = ()

    @property
    def search_text(self) -> str:
        """What the free-text query matches: title, description, SKU and attribute values."""
        parts = [self.title, self.description, self.sku, *self.attributes.values()]
        return " ".join(parts).casefold()

    @property
    def words(self) -> frozenset[str]:
        """The search index of the product: what a free-text query word must be one of.

        Every word of the title, SKU and attribute values with its prefixes of two or more
        characters (so "run" finds "running"), and the whole words of the description (its
        prefixes would make the index thousands of entries long).
        """
        found: set[str] = set()
        short = " ".join([self.title, self.sku, *self.attributes.values()])
        for word in words_of(short):
            found.add(word)
            found.update(word[:n] for n in range(2, len(word)))
        found.update(words_of(self.description))
        return frozenset(found)

    @property
    def newest_key(self) -> datetime:
        return self.publish_time or self.create_time


_WORD = re.compile(r"\w+")


def words_of(text: str) -> list[str]:
    """The search words of a text or a query: runs of letters and digits, case-folded."""
    return _WORD.findall(unicodedata.normalize("NFC", text).casefold())


def check_product_fields(
    violations: Violations, product: Product, shop_currency: str, fields: tuple[str, ...]
) -> Product:
    """Validates the named fields; returns the product with cleaned values."""
    changes: dict = {}
    if "sku" in fields:
        sku = product.sku.strip()
        if not sku:
            violations.add("product.sku", "is required")
        elif len(sku) > SKU_MAX or not SKU.match(sku):
            violations.add(
                "product.sku",
                f"must be up to {SKU_MAX} letters, digits, dots, dashes or underscores",
            )
        changes["sku"] = sku
    if "title" in fields:
        title = clean_text(product.title)
        if not title:
            violations.add("product.title", "is required")
        elif len(title) > TITLE_MAX:
            violations.add("product.title", f"must be at most {TITLE_MAX} characters")
        elif has_control(title):
            violations.add("product.title", "must not contain control characters")
        changes["title"] = title
    if "description" in fields:
        description = clean_text(product.description)
        if len(description) > DESCRIPTION_MAX:
            violations.add("product.description", f"must be at most {DESCRIPTION_MAX:,} characters")
        elif has_control(description, allow_newlines=True):
            violations.add("product.description", "must not contain control characters")
        changes["description"] = description
    if "price" in fields:
        changes["price"] = check_money(violations, product.price, "product.price", shop_currency)
    if "category_ids" in fields:
        ids = tuple(dict.fromkeys(c.strip() for c in product.category_ids))
        for position, category_id in enumerate(ids):
            if not is_uuid(category_id):
                violations.add(f"product.category_ids[{position}]", "must be a category id")
        # A set: stored (and returned) in a canonical order.
        changes["category_ids"] = tuple(sorted(ids))
    if "attributes" in fields:
        attributes = {k.strip(): v.strip() for k, v in product.attributes.items()}
        if len(attributes) > ATTRIBUTES_MAX:
            violations.add("product.attributes", f"must have at most {ATTRIBUTES_MAX} entries")
        for key, value in attributes.items():
            if not key or len(key) > ATTRIBUTE_KEY_MAX:
                violations.add(
                    "product.attributes", f"keys must be 1 to {ATTRIBUTE_KEY_MAX} characters"
                )
            if len(value) > ATTRIBUTE_VALUE_MAX:
                violations.add(
                    f"product.attributes[{key}]",
                    f"must be at most {ATTRIBUTE_VALUE_MAX} characters",
                )
        changes["attributes"] = attributes
    if "seller_id" in fields and product.seller_id and not is_uuid(product.seller_id.strip()):
        violations.add("product.seller_id", "must be a user id")
    if "weight_grams" in fields and product.weight_grams < 0:
        violations.add("product.weight_grams", "must not be negative")
    return replace(product, **changes)


# --- categories -------------------------------------------------------------------------------


UPDATABLE_CATEGORY_FIELDS = ("name", "slug", "parent_id", "description", "position")


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    slug: str
    create_time: datetime
    update_time: datetime
    parent_id: str = ""
    description: str = ""
    position: int = 0
    request_id: str = ""

    @property
    def sort_key(self) -> tuple:
        return (self.parent_id, self.position, self.name.casefold(), self.id)


def check_category_fields(
    violations: Violations, category: Category, fields: tuple[str, ...]
) -> Category:
    changes: dict = {}
    if "name" in fields:
        name = clean_text(category.name)
        if not name:
            violations.add("category.name", "is required")
        elif len(name) > CATEGORY_NAME_MAX or has_control(name):
            violations.add(
                "category.name", f"must be at most {CATEGORY_NAME_MAX} printable characters"
            )
        changes["name"] = name
    if "slug" in fields:
        slug = category.slug.strip()
        if not slug:
            violations.add("category.slug", "is required")
        elif len(slug) > SLUG_MAX or not SLUG.match(slug):
            violations.add("category.slug", "must be lowercase letters, digits and single hyphens")
        changes["slug"] = slug
    if "parent_id" in fields:
        parent = category.parent_id.strip()
        if parent and not is_uuid(parent):
            violations.add("category.parent_id", "must be a category id")
        changes["parent_id"] = parent
    if "description" in fields:
        description = clean_text(category.description)
        if len(description) > CATEGORY_DESCRIPTION_MAX:
            violations.add(
                "category.description",
                f"must be at most {CATEGORY_DESCRIPTION_MAX:,} characters",
            )
        changes["description"] = description
    return replace(category, **changes)


# --- stock ------------------------------------------------------------------------------------


# How long an applied adjustment's request id is remembered in its stock row: as long as an
# event consumer's inbox remembers the event (kit.inbox.DEFAULT_RETENTION), beyond any
# redelivery, retry or DLQ replay.
ADJUSTMENT_MEMORY = timedelta(days=14)


@dataclass(frozen=True)
class StockLevel:
    """One product's stock row. `holds` maps order ids to the units each active reservation
    holds, written in the same compare-and-set as `reserved`, so whether an order's units are
    held is never in doubt: reserving, releasing and committing a line are idempotent."""

    product_id: str
    on_hand: int = 0
    reserved: int = 0
    holds: dict[str, int] = field(default_factory=dict, hash=False)
    # 0 for a row that does not exist yet; every compare-and-set increments it.
    version: int = 0
    update_time: datetime | None = None
    # The request_id of the last AdjustStock applied (its idempotency after a crash).
    last_adjustment: str = ""
    # Every AdjustStock request_id applied in the last ADJUSTMENT_MEMORY -> when, written in
    # the same compare-and-set as on_hand: an adjustment is applied once even when its own
    # record was never written (a crash between the two) and other adjustments came since.
    recent_adjustments: dict[str, datetime] = field(default_factory=dict, hash=False)

    def adjusted_by(self, request_id: str) -> bool:
        """Whether the adjustment `request_id` is already in `on_hand`."""
        return request_id == self.last_adjustment or request_id in self.recent_adjustments

    def remembering(self, request_id: str, now: datetime) -> dict[str, datetime]:
        """`recent_adjustments` with `request_id` added and entries past the memory dropped."""
        cutoff = now - ADJUSTMENT_MEMORY
        kept = {r: t for r, t in self.recent_adjustments.items() if t >= cutoff}
        return {**kept, request_id: now}

    @property
    def available(self) -> int:
        return max(0, self.on_hand - self.reserved)


class AdjustReason(StrEnum):
    RESTOCK = "restock"
    CYCLE_COUNT = "cycle_count"
    DAMAGED = "damaged"
    RETURNED = "returned"
    OTHER = "other"


@dataclass(frozen=True)
class StockAdjustment:
    id: str
    product_id: str
    delta: int
    on_hand: int
    reason: AdjustReason
    user_id: str
    request_id: str
    create_time: datetime
    note: str = ""
    # The stock levels right after it, returned again to a retry.
    reserved: int = 0
    stock_time: datetime | None = None


# --- reservations -----------------------------------------------------------------------------


class ReservationState(StrEnum):
    # Claimed by a ReserveStock call that is applying its lines; not visible as such.
    PENDING = "pending"
    ACTIVE = "active"
    COMMITTED = "committed"
    RELEASED = "released"
    FAILED = "failed"


FINAL_STATES = frozenset(
    {ReservationState.COMMITTED, ReservationState.RELEASED, ReservationState.FAILED}
)


class ReleaseReason(StrEnum):
    NONE = ""
    ORDER_CANCELLED = "order_cancelled"
    EXPIRED = "expired"
    ADMIN_REQUESTED = "admin_requested"


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Shortage:
    product_id: str
    requested: int
    available: int


@dataclass(frozen=True)
class Reservation:
    order_id: str
    state: ReservationState
    lines: tuple[Line, ...]
    create_time: datetime
    update_time: datetime
    expire_time: datetime | None = None
    shortages: tuple[Shortage, ...] = ()
    release_reason: ReleaseReason = ReleaseReason.NONE
    # Whether the events of the current state are in the outbox (the sweeper finishes the
    # stock changes and the events of a transition whose writer died before this).
    announced: bool = False

    def same_lines(self, lines: tuple[Line, ...]) -> bool:
        return sorted(self.lines, key=lambda x: x.product_id) == sorted(
            lines, key=lambda x: x.product_id
        )


# --- reviews ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    id: str
    product_id: str
    reviewer_id: str
    rating: int
    create_time: datetime
    update_time: datetime
    title: str = ""
    body: str = ""
    # Whether the reviewer bought the product: always False until the order service can tell
    # (the contract has no such field yet either).
    verified_purchase: bool = False


def check_review_fields(violations: Violations, review: Review, fields: tuple[str, ...]) -> Review:
    changes: dict = {}
    if "rating" in fields and not 1 <= review.rating <= 5:
        violations.add("review.rating", "must be from 1 to 5")
    if "title" in fields:
        title = clean_text(review.title)
        if len(title) > REVIEW_TITLE_MAX or has_control(title):
            violations.add(
                "review.title", f"must be at most {REVIEW_TITLE_MAX} printable characters"
            )
        changes["title"] = title
    if "body" in fields:
        body = clean_text(review.body)
        if len(body) > REVIEW_BODY_MAX or has_control(body, allow_newlines=True):
            violations.add("review.body", f"must be at most {REVIEW_BODY_MAX:,} characters")
        changes["body"] = body
    return replace(review, **changes)


@dataclass(frozen=True)
class RatingSummary:
    product_id: str
    counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def average(self) -> float:
        if not self.count:
            return 0.0
        return round(sum((i + 1) * n for i, n in enumerate(self.counts)) / self.count, 4)

    @classmethod
    def of(cls, product_id: str, ratings: list[int]) -> RatingSummary:
        counts = [0] * 5
        for rating in ratings:
            if 1 <= rating <= 5:
                counts[rating - 1] += 1
        return cls(product_id, tuple(counts))  # type: ignore[arg-type]


# The state-like key of the events of an order whose reservation could not be made at all.
REFUSED = "refused"


def stable_event_id(key: str, index: int, type_name: str) -> str:
    """The id of the `index`-th event of one reservation transition (repeats share ids)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catalog/{key}/{index}/{type_name}"))


# --- images -----------------------------------------------------------------------------------

IMAGES_PER_PRODUCT = 20
ALT_TEXT_MAX = 500


@dataclass(frozen=True)
class ImageThumbnail:
    size: int
    width: int
    height: int
    url: str


@dataclass(frozen=True)
class ProductImage:
    """An image of a product. Its bytes live with the file service; `id` is the file's id,
    so recording the same upload twice finds the image already there."""

    id: str
    product_id: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    create_time: datetime
    alt_text: str = ""
    position: int = 0
    request_id: str = ""
    url: str = ""
    thumbnails: tuple[ImageThumbnail, ...] = ()
