"""Carts in Redis, with a transactional outbox in the same Redis (kit.outbox.RedisOutbox).

Keys (every one starts with the configured prefix, `emporium:cart:` by default; tests use a
random prefix of their own):

    <prefix>cart:<user_id>    STRING  the cart, an `emporium.cart.v1.Cart` message; its TTL is
                                      the inactivity expiry, restarted by every write
    <prefix>once:<key>        STRING  "1": an idempotent update with this key was stored
                                      (`checkout:<order_id>`), kept 14 days
    <prefix>outbox            STREAM  events not yet confirmed by RabbitMQ, oldest first; one
                                      entry per event: id, type, source, time, data, headers
    <prefix>outbox:lease      STRING  the id of the relay allowed to publish, with a TTL
    <prefix>product:<id>      SET     ids of the users whose carts hold the product, kept in
                                      the same transaction as the carts (SADD / SREM), for
                                      re-pricing on ProductUpdated; expires with the carts
    <prefix>inbox:<event_id>  STRING  "1": the consumer handled this event (14 days)

Atomicity: a write is optimistic. `update` WATCHes the cart key (and the idempotency key),
reads the cart, runs the domain change in Python, then MULTI / SET cart PX ttl / XADD each
event / SET once-key / SADD-SREM the product index / EXEC. If another client wrote the cart in
between, EXEC fails (WatchError) and the change is re-run on the newer cart, so two concurrent
adds of one product sum. The cart and its events commit together or not at all: there is never
an event for a cart change that was not stored, nor a stored change whose event is missing.

The outbox relay is `kit.outbox.Relay` over `kit.outbox.RedisOutbox` under a
`kit.outbox.RedisLease` (see there).

Durability is Redis's: with `appendonly yes` (the local stack's setting) and the default
`appendfsync everysec`, a crash of Redis may lose the last second of writes, the cart change and
its event together (never one without the other). Every key of one write lives on one server,
so this needs a single Redis (with replicas), not Redis Cluster (where the outbox would have to
be sharded by hash tag).
"""

from __future__ import annotations

from emporium.cart.v1 import cart_pb2
from redis.asyncio import Redis
from redis.exceptions import WatchError

from kit import errors, retry
from kit.events import Event
from kit.outbox import RedisLease, RedisOutbox
from services.cart import mapping
from services.cart.domain import Cart
from services.cart.ports import Mutation

ONCE_SECONDS = 14 * 24 * 3600
# Optimistic retries before giving up with ABORTED; with a short random pause between tries,
# dozens of racing writes to one cart all get through.
MAX_ATTEMPTS = 100


def encode(cart: Cart, shop_currency: str) -> bytes:
    return mapping.cart_to_proto(cart, shop_currency=shop_currency).SerializeToString()


def decode(data: bytes) -> Cart:
    return mapping.cart_from_proto(cart_pb2.Cart.FromString(data))


class RedisCartRepository:
    """The CartRepository port on Redis (see the module docstring for keys and atomicity)."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        source: str = "cart",
        shop_currency: str = "USD",
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.ttl_ms = ttl_seconds * 1000
        self.source = source
        self.shop_currency = shop_currency
        self.outbox = RedisOutbox(client, f"{prefix}outbox")

    def cart_key(self, user_id: str) -> str:
        return f"{self.prefix}cart:{user_id}"

    def lease(self, seconds: float = 10.0) -> RedisLease:
        return RedisLease(self._client, f"{self.prefix}outbox:lease", seconds=seconds)

    async def get(self, user_id: str) -> Cart | None:
        data = await self._client.get(self.cart_key(user_id))
        return decode(data) if data is not None else None

    def product_key(self, product_id: str) -> str:
        return f"{self.prefix}product:{product_id}"

    async def holders(self, product_id: str) -> list[str]:
        return sorted(m.decode() for m in await self._client.smembers(self.product_key(product_id)))

    async def unindex(self, product_id: str, user_id: str) -> None:
        await self._client.srem(self.product_key(product_id), user_id)

    async def update(
        self,
        user_id: str,
        mutation: Mutation,
        *,
        once: str | None = None,
        keep_ttl: bool = False,
    ) -> Cart:
        key = self.cart_key(user_id)
        once_key = f"{self.prefix}once:{once}" if once else None
        watched = [key, once_key] if once_key else [key]
        async with self._client.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                committing = False
                try:
                    # Immediate mode after WATCH: these commands run now, on this connection.
                    await pipe.watch(*watched)
                    data = await pipe.get(key)
                    current = decode(data) if data is not None else None
                    if once_key is not None and await pipe.exists(once_key):
                        return current or Cart(user_id=user_id)
                    # A DomainError here leaves the block: the pipeline resets, nothing written.
                    change = mutation(current)
                    if change is None:
                        return current or Cart(user_id=user_id)
                    events = [Event.of(message, self.source) for message in change.events]
                    before = {li.product_id for li in current.lines} if current else set()
                    after = {li.product_id for li in change.cart.lines} if change.cart else before
                    pipe.multi()
                    if change.cart is not None:
                        data = encode(change.cart, self.shop_currency)
                        if keep_ttl and current is not None:
                            pipe.set(key, data, keepttl=True)
                        else:
                            pipe.set(key, data, px=self.ttl_ms)
                    for product_id in after - before:
                        pipe.sadd(self.product_key(product_id), user_id)
                        pipe.pexpire(self.product_key(product_id), self.ttl_ms)
                    for product_id in before - after:
                        pipe.srem(self.product_key(product_id), user_id)
                    for event in events:
                        pipe.xadd(self.outbox.key, RedisOutbox.fields(event))
                    if once_key is not None:
                        pipe.set(once_key, b"1", ex=ONCE_SECONDS)
                    committing = True
                    await pipe.execute()
                except WatchError as error:
                    # redis-py also reports a connection lost while watching as a WatchError.
                    # Lost during EXEC, the transaction may have committed: re-running the
                    # change could apply it twice, so the caller is told instead.
                    if committing and "occurred while watching" in str(error):
                        raise errors.Unavailable(
                            "the cart store did not confirm the change; get the cart and retry",
                            reason="CART_STORE_UNAVAILABLE",
                        ) from error
                    await retry.contention_pause(0)
                    continue
                if events:
                    self.outbox.notify()
                return change.cart or current or Cart(user_id=user_id)
        raise errors.Aborted("the cart is changing too often; retry", reason="CART_CONTENDED")

    async def ttl_ms_left(self, user_id: str) -> int:
        """Milliseconds until the cart expires (-2 if there is none), for tests and operators."""
        return int(await self._client.pttl(self.cart_key(user_id)))
