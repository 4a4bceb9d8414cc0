"""The payment service's Cassandra stores: payment methods, payments, the sandbox's tables.

A payment is one row per order holding the aggregate as a JSON document: claimed with
`INSERT ... IF NOT EXISTS` (the exactly-once guard of charging) and changed with
`UPDATE ... IF version = ?`. A conditional statement cannot share a batch with other partitions,
so the events a change causes are written after it, in a LOGGED batch with the outbox rows and
the `announced` ids (`announce`); a crash in between leaves them unannounced, and the next look
at the payment (the redelivered event) writes them, with the same derived event ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kit.cassandra import CassandraSession, applied
from kit.events import Event
from kit.inbox import CassandraInbox
from kit.outbox import CassandraLease, CassandraOutbox, Relay
from kit.paging import Cursor
from services.payment.adapters.sandbox import SandboxCharge, SandboxMethod
from services.payment.domain import (
    Brand,
    Card,
    FailureCode,
    Money,
    Payment,
    PaymentMethod,
    PaymentState,
    Refund,
    RefundReason,
    RefundState,
)

METHOD_COLUMNS = (
    "user_id, id, brand, last4, exp_month, exp_year, provider, provider_token, request_id, "
    "create_time, "
    "update_time"
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime) -> int:
    return int(_utc(value).timestamp() * 1000)


# -- payment documents ----------------------------------------------------------------------


def _card_doc(card: Card | None) -> dict[str, Any] | None:
    if card is None:
        return None
    return {"brand": card.brand.value, "last4": card.last4, "m": card.exp_month, "y": card.exp_year}


def _card(doc: dict[str, Any] | None) -> Card | None:
    if doc is None:
        return None
    return Card(Brand(doc["brand"]), doc["last4"], doc["m"], doc["y"])


def _money(doc: list[Any]) -> Money:
    return Money(doc[0], int(doc[1]))


def _doc(p: Payment) -> str:
    return json.dumps(
        {
            "id": p.id,
            "order_id": p.order_id,
            "user_id": p.user_id,
            "payment_method_id": p.payment_method_id,
            "card": _card_doc(p.card),
            "amount": [p.amount.currency, p.amount.nanos],
            "state": p.state.value,
            "provider": p.provider,
            "create_time": _ms(p.create_time),
            "update_time": _ms(p.update_time),
            "token": p.token,
            "failure_code": p.failure_code.value,
            "failure_message": p.failure_message,
            "provider_payment_id": p.provider_payment_id,
            "refunds": [
                {
                    "id": r.id,
                    "amount": [r.amount.currency, r.amount.nanos],
                    "reason": r.reason.value,
                    "note": r.note,
                    "state": r.state.value,
                    "create_time": _ms(r.create_time),
                    "update_time": _ms(r.update_time),
                    "failure_message": r.failure_message,
                    "provider_refund_id": r.provider_refund_id,
                }
                for r in p.refunds
            ],
        }
    )


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class _Stored(NamedTuple):
    """A payments row as just written (what a read would return)."""

    doc: str
    version: int
    announced: Any


def _payment(row: Any) -> Payment:
    d = json.loads(row.doc)
    return Payment(
        id=d["id"],
        order_id=d["order_id"],
        user_id=d["user_id"],
        payment_method_id=d["payment_method_id"],
        card=_card(d["card"]),
        amount=_money(d["amount"]),
        state=PaymentState(d["state"]),
        provider=d["provider"],
        create_time=_time(d["create_time"]),
        update_time=_time(d["update_time"]),
        token=d["token"],
        failure_code=FailureCode(d["failure_code"]),
        failure_message=d["failure_message"],
        provider_payment_id=d["provider_payment_id"],
        refunds=tuple(
            Refund(
                id=r["id"],
                payment_id=d["id"],
                amount=_money(r["amount"]),
                reason=RefundReason(r["reason"]),
                note=r["note"],
                state=RefundState(r["state"]),
                create_time=_time(r["create_time"]),
                update_time=_time(r["update_time"]),
                failure_message=r["failure_message"],
                provider_refund_id=r["provider_refund_id"],
            )
            for r in d["refunds"]
        ),
        version=row.version,
        announced=frozenset(row.announced or ()),
    )


class CassandraPaymentMethods:
    def __init__(self, session: CassandraSession, q: dict[str, Any]) -> None:
        self.session = session
        self.q = q

    @classmethod
    async def open(cls, session: CassandraSession) -> CassandraPaymentMethods:
        p = session.prepare
        q = {
            "claim": await p(
                "INSERT INTO payment_method_requests (user_id, request_id, method_id) "
                "VALUES (?, ?, ?) IF NOT EXISTS"
            ),
            "insert": await p(
                f"INSERT INTO payment_methods ({METHOD_COLUMNS}) VALUES ({', '.join('?' * 11)})"
            ),
            "select": await p(
                f"SELECT {METHOD_COLUMNS} FROM payment_methods WHERE user_id = ? AND id = ?"
            ),
            "select_all": await p(
                f"SELECT {METHOD_COLUMNS} FROM payment_methods WHERE user_id = ?"
            ),
            "delete": await p("DELETE FROM payment_methods WHERE user_id = ? AND id = ?"),
            "default": await p("SELECT method_id FROM payment_method_defaults WHERE user_id = ?"),
            "claim_default": await p(
                "INSERT INTO payment_method_defaults (user_id, method_id) VALUES (?, ?) "
                "IF NOT EXISTS"
            ),
            "set_default": await p(
                "UPDATE payment_method_defaults SET method_id = ? WHERE user_id = ? IF EXISTS"
            ),
            "force_default": await p(
                "INSERT INTO payment_method_defaults (user_id, method_id) VALUES (?, ?) "
                "IF NOT EXISTS"
            ),
            "clear_default": await p(
                "DELETE FROM payment_method_defaults WHERE user_id = ? IF method_id = ?"
            ),
        }
        return cls(session, q)

    async def _default(self, user_id: str) -> str | None:
        rows = await self.session.execute(self.q["default"], (user_id,))
        return rows[0].method_id if rows else None

    @staticmethod
    def _method(row: Any, default: str | None) -> PaymentMethod:
        return PaymentMethod(
            id=row.id,
            user_id=row.user_id,
            card=Card(Brand(row.brand), row.last4, row.exp_month, row.exp_year),
            provider=row.provider,
            token=row.provider_token,
            create_time=_utc(row.create_time),
            update_time=_utc(row.update_time),
            request_id=row.request_id or "",
            default=row.id == default,
        )

    async def claim_request(self, user_id: str, request_id: str, method_id: str) -> str:
        rows = await self.session.execute(self.q["claim"], (user_id, request_id, method_id))
        return method_id if applied(rows) else rows[0].method_id

    async def add(self, method: PaymentMethod, *, make_default: bool) -> PaymentMethod:
        c = method.card
        await self.session.execute(
            self.q["insert"],
            (
                method.user_id,
                method.id,
                c.brand.value,
                c.last4,
                c.exp_month,
                c.exp_year,
                method.provider,
                method.token,
                method.request_id,
                method.create_time,
                method.update_time,
            ),
        )
        if make_default:
            await self.set_default(method.user_id, method.id)
        else:
            # The first method becomes the default: only if the user has none.
            await self.session.execute(self.q["claim_default"], (method.user_id, method.id))
        found = await self.get(method.user_id, method.id)
        assert found is not None
        return found

    async def get(self, user_id: str, method_id: str) -> PaymentMethod | None:
        rows = await self.session.execute(self.q["select"], (user_id, method_id))
        if not rows:
            return None
        return self._method(rows[0], await self._default(user_id))

    async def list(self, user_id: str) -> list[PaymentMethod]:
        rows = await self.session.execute(self.q["select_all"], (user_id,))
        default = await self._default(user_id) if rows else None
        return [self._method(r, default) for r in rows]

    async def delete(self, user_id: str, method_id: str) -> bool:
        if not await self.session.execute(self.q["select"], (user_id, method_id)):
            return False
        await self.session.execute(self.q["delete"], (user_id, method_id))
        await self.session.execute(self.q["clear_default"], (user_id, method_id))
        return True

    async def set_default(self, user_id: str, method_id: str) -> None:
        # Only conditional writes on the defaults row, so they are ordered by Paxos.
        rows = await self.session.execute(self.q["set_default"], (method_id, user_id))
        if not applied(rows):
            await self.session.execute(self.q["force_default"], (user_id, method_id))


class CassandraPayments:
    def __init__(self, session: CassandraSession, q: dict[str, Any], outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    @classmethod
    async def open(cls, session: CassandraSession, outbox: CassandraOutbox) -> CassandraPayments:
        p = session.prepare
        q = {
            "claim": await p(
                "INSERT INTO payments (order_id, id, user_id, create_time, version, doc) "
                "VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
            "index_id": await p("INSERT INTO payments_by_id (id, order_id) VALUES (?, ?)"),
            "index_user": await p(
                "INSERT INTO payments_by_user (user_id, create_time, id, order_id) "
                "VALUES (?, ?, ?, ?)"
            ),
            "select": await p(
                "SELECT order_id, version, doc, announced FROM payments WHERE order_id = ?"
            ),
            "select_id": await p("SELECT order_id FROM payments_by_id WHERE id = ?"),
            "save": await p(
                "UPDATE payments SET doc = ?, version = ? WHERE order_id = ? IF version = ?"
            ),
            "by_user": await p(
                "SELECT create_time, id, order_id FROM payments_by_user WHERE user_id = ?"
            ),
            "mark": await p("UPDATE payments SET announced = announced + ? WHERE order_id = ?"),
        }
        return cls(session, q, outbox)

    async def claim(self, payment: Payment) -> Payment:
        # The lookups first (idempotent; a retry after a crash writes them again): the claim
        # below is what makes the payment exist.
        batch = self.session.batch()
        batch.add(self.q["index_id"], (payment.id, payment.order_id))
        batch.add(
            self.q["index_user"],
            (payment.user_id, payment.create_time, payment.id, payment.order_id),
        )
        await self.session.execute(batch)
        doc = _doc(payment)
        rows = await self.session.execute(
            self.q["claim"],
            (
                payment.order_id,
                payment.id,
                payment.user_id,
                payment.create_time,
                payment.version,
                doc,
            ),
        )
        # A claim that lost gets the stored row back with its [applied] = false (no read).
        if not applied(rows):
            return _payment(rows[0])
        return _payment(_Stored(doc, payment.version, None))

    async def get_by_order(self, order_id: str) -> Payment | None:
        rows = await self.session.execute(self.q["select"], (order_id,))
        return _payment(rows[0]) if rows and rows[0].doc else None

    async def get(self, payment_id: str) -> Payment | None:
        rows = await self.session.execute(self.q["select_id"], (payment_id,))
        if not rows:
            return None
        payment = await self.get_by_order(rows[0].order_id)
        return payment if payment is not None and payment.id == payment_id else None

    async def save(self, payment: Payment) -> bool:
        rows = await self.session.execute(
            self.q["save"], (_doc(payment), payment.version, payment.order_id, payment.version - 1)
        )
        return applied(rows)

    async def list_by_user(
        self, user_id: str, size: int, cursor: Cursor | None
    ) -> tuple[list[Payment], Cursor | None]:
        state = cursor if isinstance(cursor, bytes) else None
        rows, next_state = await self.session.execute_page(
            self.q["by_user"], (user_id,), size, state
        )
        page = []
        for row in rows:
            payment = await self.get_by_order(row.order_id)
            # An index row left by a claim that lost (or crashed and was retried) is skipped.
            if (
                payment is not None
                and payment.id == row.id
                and _ms(payment.create_time) == _ms(row.create_time)
            ):
                page.append(payment)
        return page, next_state

    async def announce(self, payment: Payment, events: Sequence[Event]) -> None:
        batch = self.session.batch()
        batch.add(self.q["mark"], ({e.id for e in events}, payment.order_id))
        await self.outbox.write(batch, events, key=payment.order_id)


class CassandraSandboxStore:
    """The sandbox provider's tables (`sandbox_*`)."""

    def __init__(self, session: CassandraSession, q: dict[str, Any]) -> None:
        self.session = session
        self.q = q

    @classmethod
    async def open(cls, session: CassandraSession) -> CassandraSandboxStore:
        p = session.prepare
        charge_columns = (
            "idempotency_key, charge_id, pm_token, currency_code, amount_nanos, failure_code, "
            "description, create_time"
        )
        q = {
            "save_method": await p(
                "INSERT INTO sandbox_payment_methods (pm_token, brand, last4, exp_month, exp_year, "
                "outcome, detached) VALUES (?, ?, ?, ?, ?, ?, false)"
            ),
            "method": await p(
                "SELECT brand, last4, exp_month, exp_year, outcome, detached "
                "FROM sandbox_payment_methods WHERE pm_token = ?"
            ),
            "detach": await p(
                "UPDATE sandbox_payment_methods SET detached = true WHERE pm_token = ? IF EXISTS"
            ),
            "put_charge": await p(
                f"INSERT INTO sandbox_charges ({charge_columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "IF NOT EXISTS"
            ),
            "charge": await p(
                f"SELECT {charge_columns} FROM sandbox_charges WHERE idempotency_key = ?"
            ),
            "count_call": await p(
                "UPDATE sandbox_charge_calls SET calls = calls + 1 WHERE idempotency_key = ?"
            ),
            "calls": await p("SELECT calls FROM sandbox_charge_calls WHERE idempotency_key = ?"),
            "put_refund": await p(
                "INSERT INTO sandbox_refunds (idempotency_key, refund_id, charge_id, "
                "currency_code, amount_nanos) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"
            ),
        }
        return cls(session, q)

    async def save_method(self, token: str, method: SandboxMethod) -> None:
        c = method.card
        await self.session.execute(
            self.q["save_method"],
            (token, c.brand.value, c.last4, c.exp_month, c.exp_year, method.outcome.value),
        )

    async def method(self, token: str) -> SandboxMethod | None:
        rows = await self.session.execute(self.q["method"], (token,))
        if not rows:
            return None
        r = rows[0]
        card = Card(Brand(r.brand), r.last4, r.exp_month, r.exp_year)
        return SandboxMethod(card, FailureCode(r.outcome), bool(r.detached))

    async def detach(self, token: str) -> None:
        await self.session.execute(self.q["detach"], (token,))

    async def put_charge(self, charge: SandboxCharge) -> SandboxCharge:
        rows = await self.session.execute(
            self.q["put_charge"],
            (
                charge.key,
                charge.charge_id,
                charge.token,
                charge.amount.currency,
                charge.amount.nanos,
                charge.failure_code.value,
                charge.description,
                charge.create_time,
            ),
        )
        if applied(rows):
            # As stored: timestamps keep milliseconds.
            at = _utc(charge.create_time)
            millis = at.replace(microsecond=at.microsecond // 1000 * 1000)
            return replace(charge, create_time=millis)
        # The key had a charge: it comes back with [applied] = false (no read).
        r = rows[0]
        return SandboxCharge(
            key=r.idempotency_key,
            charge_id=r.charge_id,
            token=r.pm_token,
            amount=Money(r.currency_code, r.amount_nanos),
            failure_code=FailureCode(r.failure_code),
            description=r.description,
            create_time=_utc(r.create_time),
        )

    async def count_call(self, key: str) -> None:
        await self.session.execute(self.q["count_call"], (key,))

    async def charges_for(self, key: str) -> int:
        return len(await self.session.execute(self.q["charge"], (key,)))

    async def charge_calls(self, key: str) -> int:
        rows = await self.session.execute(self.q["calls"], (key,))
        return int(rows[0].calls) if rows else 0

    async def put_refund(self, key: str, refund_id: str, charge_id: str, amount: Money) -> str:
        rows = await self.session.execute(
            self.q["put_refund"], (key, refund_id, charge_id, amount.currency, amount.nanos)
        )
        return refund_id if applied(rows) else rows[0].refund_id


@dataclass
class Built:
    session: CassandraSession
    methods: CassandraPaymentMethods
    payments: CassandraPayments
    sandbox: CassandraSandboxStore
    outbox: CassandraOutbox

    async def relay(self, bus: Any) -> Relay:
        """The outbox relay, under a lease so that replicas never publish together."""
        return Relay(self.outbox, bus, lease=await CassandraLease.open(self.session))

    async def inbox(self, consumer: str) -> CassandraInbox:
        return await CassandraInbox.open(self.session, consumer, create_table=True)


async def build(session: CassandraSession) -> Built:
    outbox = await CassandraOutbox.open(session, create_table=True)
    return Built(
        session=session,
        methods=await CassandraPaymentMethods.open(session),
        payments=await CassandraPayments.open(session, outbox),
        sandbox=await CassandraSandboxStore.open(session),
        outbox=outbox,
    )
