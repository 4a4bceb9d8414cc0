"""Demo data through the public REST API, with a progress bar: `make seed`.

    uv run --frozen python -m bench.seed [--products 300] [--shoppers 20] [--orders 60]

Loads, as the development admin and as shoppers would: categories, products (published, with
stock, a picture each; a few sold out), shoppers with cards, and orders that end in every way
the saga allows: delivered (the simulated carrier moves them on: PENDING, CONFIRMED, PAID,
SHIPPED, DELIVERED), cancelled by the shopper before shipping (refunded), declined by the card,
and cancelled for lack of stock. Everything goes through the gateway (EMPORIUM_GATEWAY_PORT, as
the stack sets it), so it exercises what a storefront would. Each run adds new products and
shoppers (SKUs and emails carry a run id); categories are reused by slug.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway import render

ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
PASSWORD = "correct horse battery"
CATEGORIES = {
    "kitchen": ("Kitchen", (200, 80, 60)),
    "garden": ("Garden", (70, 160, 70)),
    "books": ("Books", (90, 90, 180)),
    "toys": ("Toys", (230, 180, 40)),
    "office": ("Office", (120, 120, 120)),
    "outdoors": ("Outdoors", (40, 140, 160)),
    "audio": ("Audio", (160, 60, 160)),
    "bath": ("Bath", (100, 180, 220)),
}
ADJECTIVES = ("Classic", "Compact", "Deluxe", "Handmade", "Organic", "Sturdy", "Vintage", "Smart")
NOUNS = {
    "kitchen": ("Teapot", "Skillet", "Knife Set", "Mug", "Kettle"),
    "garden": ("Trowel", "Planter", "Hose", "Shears", "Bird Feeder"),
    "books": ("Cookbook", "Novel", "Atlas", "Field Guide", "Poetry Collection"),
    "toys": ("Puzzle", "Kite", "Robot", "Board Game", "Yo-yo"),
    "office": ("Notebook", "Desk Lamp", "Stapler", "Fountain Pen", "Organizer"),
    "outdoors": ("Tent", "Lantern", "Backpack", "Water Bottle", "Hammock"),
    "audio": ("Headphones", "Speaker", "Turntable", "Microphone", "Radio"),
    "bath": ("Towel", "Soap Dish", "Bath Mat", "Robe", "Candle"),
}
ADDRESSES = (
    ("US", "94105", "CA", "San Francisco", "1 Market St"),
    ("US", "10001", "NY", "New York", "350 5th Ave"),
    ("US", "60601", "IL", "Chicago", "233 S Wacker Dr"),
)
# How orders end: (what happens, weight).
OUTCOMES = (("delivered", 6), ("cancelled by shopper", 2), ("card declined", 1), ("no stock", 1))

T = TypeVar("T")


class SeedError(RuntimeError):
    """The API refused something the seed needs."""


def ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise SeedError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response.json()


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (the catalog checks that uploads decode)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def address(rng: random.Random, name: str) -> dict[str, Any]:
    region, postal, area, city, line = rng.choice(ADDRESSES)
    return {
        "region_code": region,
        "postal_code": postal,
        "administrative_area": area,
        "locality": city,
        "address_lines": [line],
        "recipients": [name],
    }


@dataclass
class Shopper:
    email: str
    headers: dict[str, str]
    card: str
    declined_card: str


@dataclass
class Product:
    id: str
    weight_grams: int
    stock: int


class Seeder:
    def __init__(
        self, api: httpx.AsyncClient, progress: Progress, run: str, seed: int, concurrency: int
    ) -> None:
        self.api = api
        self.concurrency = concurrency
        self.progress = progress
        self.run = run
        self.rng = random.Random(seed)
        self.admin: dict[str, str] = {}
        self.outcomes: Counter[str] = Counter()

    async def each(
        self,
        label: str,
        items: Iterable[T],
        work: Callable[[T], Awaitable[Any]],
        concurrency: int,
    ) -> list[Any]:
        """Runs work on every item, `concurrency` at a time, advancing one progress bar."""
        items = list(items)
        task = self.progress.add_task(label, total=len(items))
        gate = asyncio.Semaphore(concurrency)

        async def one(item: T) -> Any:
            async with gate:
                result = await work(item)
            self.progress.advance(task)
            return result

        return await asyncio.gather(*(one(i) for i in items))

    async def login_admin(self) -> None:
        self.admin = bearer(ok(await self.api.post("/v1/auth:login", json=ADMIN))["access_token"])

    async def categories(self) -> dict[str, str]:
        """slug -> id of every demo category, created when missing."""
        listed = ok(
            await self.api.get("/v1/categories", params={"page_size": 100}, headers=self.admin)
        )
        known = {c["slug"]: c["id"] for c in listed.get("categories", [])}

        async def create(slug: str) -> None:
            if slug in known:
                return
            name = CATEGORIES[slug][0]
            body = {"name": name, "slug": slug, "description": f"{name} for the demo shop"}
            created = await self.api.post(
                "/v1/categories",
                params={"request_id": str(uuid.uuid4())},
                json=body,
                headers=self.admin,
            )
            known[slug] = ok(created)["id"]

        await self.each("categories", CATEGORIES, create, concurrency=4)
        return known

    async def products(self, count: int, categories: dict[str, str]) -> list[Product]:
        async def create(n: int) -> Product:
            slug = self.rng.choice(list(CATEGORIES))
            noun = self.rng.choice(NOUNS[slug])
            title = f"{self.rng.choice(ADJECTIVES)} {noun}"
            weight = self.rng.randrange(100, 4000, 50)
            # One in ten is sold out, so browsing shows some and the saga meets one.
            stock = 0 if n % 10 == 9 else self.rng.randrange(20, 300)
            body = {
                "sku": f"DEMO-{self.run}-{n:04d}",
                "title": title,
                "description": f"A {title.lower()} from the demo catalog.",
                "price": {
                    "currency_code": "USD",
                    "units": str(self.rng.randrange(3, 400)),
                    "nanos": self.rng.choice((0, 490_000_000, 990_000_000)),
                },
                "weight_grams": weight,
                "category_ids": [categories[slug]],
                "state": "STATE_DRAFT",
            }
            params = {"request_id": str(uuid.uuid4())}
            made = ok(
                await self.api.post("/v1/products", params=params, json=body, headers=self.admin)
            )
            picture = png(32, 32, CATEGORIES[slug][1])
            ok(
                await self.api.post(
                    f"/v1/products/{made['id']}/images",
                    params={"alt_text": title, "request_id": str(uuid.uuid4())},
                    content=picture,
                    headers={**self.admin, "content-type": "image/png"},
                )
            )
            ok(
                await self.api.post(
                    f"/v1/products/{made['id']}:publish", json={}, headers=self.admin
                )
            )
            if stock:
                ok(
                    await self.api.post(
                        f"/v1/products/{made['id']}/stock:adjust",
                        json={
                            "request_id": str(uuid.uuid4()),
                            "delta": stock,
                            "reason": "REASON_RESTOCK",
                        },
                        headers=self.admin,
                    )
                )
            return Product(made["id"], weight, stock)

        return await self.each("products", range(count), create, self.concurrency)

    async def shoppers(self, count: int) -> list[Shopper]:
        async def create(n: int) -> Shopper:
            email = f"shopper-{self.run}-{n}@example.com"
            body = {"email": email, "password": PASSWORD, "display_name": f"Shopper {n}"}
            ok(await self.api.post("/v1/users:register", json=body))
            login = {"email": email, "password": PASSWORD}
            token = ok(await self.api.post("/v1/auth:login", json=login))["access_token"]
            headers = bearer(token)
            cards = []
            for provider_token in ("tok_visa", "tok_chargeDeclined"):
                body = {"request_id": str(uuid.uuid4()), "provider_token": provider_token}
                reply = await self.api.post("/v1/payment-methods", json=body, headers=headers)
                cards.append(ok(reply)["id"])
            return Shopper(email, headers, *cards)

        # Sign-ups hash passwords (Argon2id): a few at a time, under the gateway's rate limit.
        return await self.each("shoppers", range(count), create, min(4, self.concurrency))

    async def orders(
        self, count: int, shoppers: list[Shopper], products: list[Product]
    ) -> list[str]:
        in_stock = [p for p in products if p.stock]
        sold_out = [p for p in products if not p.stock] or in_stock
        names, weights = zip(*OUTCOMES, strict=True)

        async def place(n: int) -> str:
            shopper = shoppers[n % len(shoppers)]
            outcome = self.rng.choices(names, weights)[0]
            lines = self.rng.sample(in_stock, k=min(len(in_stock), self.rng.randint(1, 3)))
            if outcome == "no stock":
                lines = [*lines[:1], self.rng.choice(sold_out)]
            destination = address(self.rng, shopper.email.split("@")[0])
            quote = ok(
                await self.api.post(
                    "/v1/shipping-options:quote",
                    json={
                        "destination": destination,
                        "items": [
                            {"product_id": p.id, "quantity": 1, "weight_grams": p.weight_grams}
                            for p in lines
                        ],
                    },
                    headers=shopper.headers,
                )
            )
            card = shopper.declined_card if outcome == "card declined" else shopper.card
            body = {
                "request_id": str(uuid.uuid4()),
                "items": [{"product_id": p.id, "quantity": 1} for p in lines],
                "shipping_address": destination,
                "shipping_option_id": quote["shipping_options"][0]["id"],
                "payment_method_id": card,
            }
            order = ok(await self.api.post("/v1/orders", json=body, headers=shopper.headers))
            if outcome == "cancelled by shopper":
                # Before shipping the shopper may cancel: payment refunded, stock released.
                cancelled = await self.api.post(
                    f"/v1/orders/{order['id']}:cancel",
                    json={"note": "changed my mind"},
                    headers=shopper.headers,
                )
                outcome = outcome if cancelled.status_code == 200 else "delivered"
            self.outcomes[outcome] += 1
            return order["id"]

        return await self.each("orders", range(count), place, self.concurrency)

    async def states(self, order_ids: list[str], shoppers: list[Shopper]) -> Counter[str]:
        """The state each order has reached, read back as its shopper."""
        by_order = {oid: shoppers[n % len(shoppers)] for n, oid in enumerate(order_ids)}

        async def state(order_id: str) -> str:
            reply = await self.api.get(f"/v1/orders/{order_id}", headers=by_order[order_id].headers)
            return ok(reply)["state"]

        return Counter(await self.each("order states", order_ids, state, concurrency=8))


async def seed(args: argparse.Namespace, console: Console) -> None:
    run = secrets.token_hex(3).upper()
    columns = (
        TextColumn("[bold]{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=args.gateway, timeout=60, limits=limits) as api:
        with Progress(*columns, console=console) as progress:
            seeder = Seeder(api, progress, run, args.seed, args.concurrency)
            await seeder.login_admin()
            categories = await seeder.categories()
            products = await seeder.products(args.products, categories)
            shoppers = await seeder.shoppers(args.shoppers)
            order_ids = await seeder.orders(args.orders, shoppers, products)
            # The saga runs on events; give it a moment before reading the states back.
            await asyncio.sleep(args.settle_seconds)
            states = await seeder.states(order_ids, shoppers)

    table = Table(title=f"Demo data loaded (run {run})")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("categories", str(len(categories)))
    table.add_row("products (sold out)", f"{len(products)} ({sum(not p.stock for p in products)})")
    table.add_row("shoppers (password: correct horse battery)", str(len(shoppers)))
    for outcome, count in sorted(seeder.outcomes.items()):
        table.add_row(f"orders meant to end: {outcome}", str(count))
    for state, count in sorted(states.items()):
        table.add_row(f"orders now {state}", str(count))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    port = render.load().port
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{port}", help="gateway URL")
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--shoppers", type=int, default=20)
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the names and mix")
    parser.add_argument("--settle-seconds", type=float, default=20)
    args = parser.parse_args(argv)
    console = Console()
    try:
        asyncio.run(seed(args, console))
    except (SeedError, httpx.HTTPError) as error:
        console.print(f"[red]seed failed:[/red] {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
