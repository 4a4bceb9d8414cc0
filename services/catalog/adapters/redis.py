"""The product read cache in Redis: Product messages by id, bounded by a TTL, never stale.

Keys (under a prefix, `catalog:` by default):

    {prefix}product:{id}   the Product message (admin view; the handlers hide drafts)
    {prefix}gen:{id}       the product's generation, INCRed by every invalidation
    {prefix}list-gen       the listings' generation, INCRed by every invalidation
    {prefix}list:{gen}:{key}   a ListProducts page (ListProductsResponse) of that generation

A reader takes the generations before it reads Cassandra and stores what it read only if the
generation is unchanged (one Lua script, atomic in Redis). A writer invalidates after its
Cassandra write: INCR the generation, then DEL the entry. So a read that raced a write either
stored its value before the DEL (which removes it) or finds the generation moved and stores
nothing: once an update has returned, no reader can serve or put back the old product.
Listings are keyed by the generation read before the query; any write moves it, so a page
stored from data older than the write is never found again (it expires with its TTL).

Copies in memory (`local_size` products at most, the oldest dropped first): a process keeps
the products it read and serves them again without a round trip to Redis (a third of a cached
read's CPU, issue 18), as long as `kit.redis.Invalidations` is listening: Redis reports every
change of a `{prefix}product:` key (the writer's DEL, a fill, an expiry) to every process before
it answers the writer, and a read applies what has arrived before it looks at its copies. A copy
is stored only if no message arrived while it was read (`_epoch`), so a read that raced a write
cannot keep the old product. While the listener is down, reads go to Redis and no copies are
kept.

Hits and misses are counted in the process (`hits`, `misses`) and exported as the OTel counter
`emporium.cache.requests` (bootstrap.py): counting them in Redis cost every read a second round
trip (7.7 % of a cached read's CPU, issue 18).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import redis.asyncio as aioredis
from emporium.catalog.v1 import catalog_service_pb2

from kit.redis import Invalidations
from services.catalog import mapping
from services.catalog.domain import Product

# KEYS[1] entry, KEYS[2] generation; ARGV[1] the generation seen ("" = none), ARGV[2] value,
# ARGV[3] TTL in ms.
_FILL = """
local now = redis.call('GET', KEYS[2])
if (now or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

# A hot product's entry is the same bytes read after read (a changed product is other bytes), and
# a Product is immutable (the domain replaces it, never edits it): decoded once, shared after.
_decoded = functools.lru_cache(maxsize=4096)(mapping.product_from_bytes)

# Generations outlive any read in flight by far; they expire so that ids of long-gone products
# do not stay in Redis forever.
GENERATION_TTL_SECONDS = 24 * 3600


class RedisProductCache:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_seconds: float = 300,
        prefix: str = "catalog:",
        local_size: int = 4096,
    ) -> None:
        self.client = client
        self.ttl_ms = int(ttl_seconds * 1000)
        self.prefix = prefix
        self._fill = client.register_script(_FILL)
        # In-process totals: exported as a metric, logged by the service at intervals.
        self.hits = 0
        self.misses = 0
        self.local_hits = 0
        # Copies in memory, oldest first; run `invalidations.run()` to use them.
        self.local_size = local_size
        self._local: dict[str, Product] = {}
        self._epoch = 0  # +1 for every invalidation message applied
        self.invalidations = Invalidations(client, self._entry(""), self._forget)

    def _entry(self, product_id: str) -> str:
        return f"{self.prefix}product:{product_id}"

    def _generation(self, product_id: str) -> str:
        return f"{self.prefix}gen:{product_id}"

    def _forget(self, keys: list[bytes] | None) -> None:
        self._epoch += 1
        if keys is None:
            self._local.clear()
            return
        start = len(self._entry(""))
        for key in keys:
            self._local.pop(key[start:].decode(), None)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        ids = list(dict.fromkeys(product_ids))
        if not ids:
            return {}
        found: dict[str, Product] = {}
        keep = self.local_size > 0 and await self.invalidations.fresh()
        if keep:
            for i in ids:
                if (copy := self._local.get(i)) is not None:
                    found[i] = copy
            self.local_hits += len(found)
            if len(found) == len(ids):
                return found
            ids = [i for i in ids if i not in found]
        epoch = self._epoch
        values = await self.client.mget([self._entry(i) for i in ids])
        read = {i: _decoded(v) for i, v in zip(ids, values, strict=True) if v}
        if keep and self._epoch == epoch and self.invalidations.listening:
            for i, product in read.items():
                if len(self._local) >= self.local_size:
                    del self._local[next(iter(self._local))]
                self._local[i] = product
        found.update(read)
        return found

    async def generations(self, product_ids: Sequence[str]) -> list[bytes | None]:
        if not product_ids:
            return []
        return list(await self.client.mget([self._generation(i) for i in product_ids]))

    async def fill(self, products: Sequence[Product], generations: Sequence[bytes | None]) -> None:
        for product, seen in zip(products, generations, strict=True):
            await self._fill(
                keys=[self._entry(product.id), self._generation(product.id)],
                args=[
                    seen or b"",
                    mapping.product_to_proto(product).SerializeToString(),
                    self.ttl_ms,
                ],
            )

    async def invalidate(self, product_ids: Sequence[str]) -> None:
        # This process's copies at once (Redis's message for the DEL follows).
        self._forget([self._entry(i).encode() for i in product_ids])
        async with self.client.pipeline(transaction=True) as pipe:
            for product_id in product_ids:
                pipe.incr(self._generation(product_id))
                pipe.expire(self._generation(product_id), GENERATION_TTL_SECONDS)
                pipe.delete(self._entry(product_id))
            pipe.incr(self._list_generation)
            await pipe.execute()

    @property
    def _list_generation(self) -> str:
        return f"{self.prefix}list-gen"

    def _page(self, generation: bytes | None, key: str) -> str:
        return f"{self.prefix}list:{(generation or b'0').decode()}:{key}"

    async def list_generation(self) -> bytes | None:
        return await self.client.get(self._list_generation)

    async def get_page(
        self, generation: bytes | None, key: str
    ) -> tuple[list[Product], str] | None:
        data = await self.client.get(self._page(generation, key))
        if data is None:
            return None
        page = catalog_service_pb2.ListProductsResponse.FromString(data)
        products = [mapping.product_from_bytes(p.SerializeToString()) for p in page.products]
        return products, page.next_page_token

    async def put_page(
        self, generation: bytes | None, key: str, products: Sequence[Product], token: str
    ) -> None:
        page = catalog_service_pb2.ListProductsResponse(
            products=[mapping.product_to_proto(p) for p in products], next_page_token=token
        )
        # Listings change with every write anywhere: a shorter life than single products.
        ttl = max(1000, self.ttl_ms // 5)
        await self.client.set(self._page(generation, key), page.SerializeToString(), px=ttl)

    async def count(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses
