"""The catalog's event subscriptions: none yet.

The checkout issue adds OrderPlaced -> `CatalogHandlers.reserve_stock(order_id, lines)` and
OrderCancelled -> `CatalogHandlers.release_reservation(order_id, ORDER_CANCELLED)` (and
payment -> `commit_reservation`). Those handlers take plain values, need no caller and are
idempotent per order id, so a redelivered event repeats the first outcome and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.catalog.handlers import CatalogHandlers

QUEUE = "catalog"


def subscriptions(handlers: CatalogHandlers) -> Mapping[type, Any]:
    """Event class -> `async (message, event)`: what the catalog's queue is bound to."""
    return {}
