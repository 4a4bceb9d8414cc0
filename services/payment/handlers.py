"""The payment service's use cases: payment methods, charging orders, refunds, reads."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from kit import errors
from kit.auth import Principal
from kit.events import Event
from kit.paging import decode_page_token, encode_page_token, page_size
from services.payment import mapping
from services.payment.domain import (
    FailureCode,
    Money,
    Payment,
    PaymentMethod,
    PaymentState,
    Refund,
    RefundReason,
    RefundState,
    derived_id,
)
from services.payment.ports import (
    CardRejected,
    PaymentMethodRepository,
    PaymentProvider,
    PaymentRepository,
)

log = logging.getLogger("emporium.payment")

SOURCE = "payment"
MAX_PAGE = 100
DEFAULT_PAGE = 20
# Version conflicts a consumer retries in place before letting the redelivery retry.
CONFLICT_RETRIES = 5


class PaymentHandlers:
    def __init__(
        self,
        *,
        methods: PaymentMethodRepository,
        payments: PaymentRepository,
        provider: PaymentProvider,
        clock: Any,
        max_methods: int = 10,
    ) -> None:
        self.methods = methods
        self.payments = payments
        self.provider = provider
        self.clock = clock
        self.max_methods = max_methods

    def _now(self) -> datetime:
        now = self.clock.now()
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    # -- payment methods ----------------------------------------------------------------------

    async def add_payment_method(
        self, user_id: str, request_id: str, client_token: str, set_default: bool
    ) -> PaymentMethod:
        v = errors.Violations()
        v.check(bool(request_id.strip()), "request_id", "is required")
        v.check(bool(client_token.strip()), "provider_token", "is required")
        v.raise_if_any()
        method_id = derived_id("method", user_id, request_id)
        claimed = await self.methods.claim_request(user_id, request_id, method_id)
        existing = await self.methods.get(user_id, claimed)
        if existing is not None:
            return existing
        if len(await self.methods.list(user_id)) >= self.max_methods:
            raise errors.ResourceExhausted(
                f"a user can save at most {self.max_methods} payment methods",
                reason="TOO_MANY_PAYMENT_METHODS",
            )
        try:
            attached = await self.provider.attach(client_token)
        except CardRejected as rejected:
            error = errors.InvalidArgument(rejected.field, rejected.description)
            error.reason = rejected.code
            raise error from None
        now = self._now()
        method = PaymentMethod(
            id=claimed,
            user_id=user_id,
            card=attached.card,
            provider=self.provider.name,
            token=attached.token,
            create_time=now,
            update_time=now,
            request_id=request_id,
        )
        return await self.methods.add(method, make_default=set_default)

    async def list_payment_methods(
        self, user_id: str, size: int, token: str
    ) -> tuple[list[PaymentMethod], str]:
        size = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        cursor = decode_page_token(token, {"user_id": user_id, "what": "methods"})
        start = int(cursor["offset"]) if isinstance(cursor, dict) else 0
        methods = sorted(
            await self.methods.list(user_id),
            key=lambda m: (not m.default, -m.create_time.timestamp(), m.id),
        )
        page = methods[start : start + size]
        more = start + size < len(methods)
        next_token = (
            encode_page_token({"offset": start + size}, {"user_id": user_id, "what": "methods"})
            if more
            else ""
        )
        return page, next_token

    async def get_payment_method(self, user_id: str, method_id: str) -> PaymentMethod:
        if not method_id:
            raise errors.InvalidArgument("id", "is required")
        method = await self.methods.get(user_id, method_id)
        if method is None:
            raise errors.NotFound(f"payment method {method_id} not found")
        return method

    async def delete_payment_method(self, user_id: str, method_id: str) -> None:
        method = await self.get_payment_method(user_id, method_id)
        await self.methods.delete(user_id, method_id)
        try:
            await self.provider.detach(method.token)
        except Exception as exc:  # the method is gone for the user either way
            log.warning("detaching payment method %s at the provider failed: %s", method_id, exc)

    async def set_default_payment_method(self, user_id: str, method_id: str) -> PaymentMethod:
        method = await self.get_payment_method(user_id, method_id)
        if method.default:
            return method
        if method.card.expired(self._now()):
            raise errors.FailedPrecondition("the card has expired", reason="EXPIRED_CARD")
        await self.methods.set_default(user_id, method_id)
        return replace(method, default=True)

    # -- reading payments ---------------------------------------------------------------------

    async def get_payment(self, principal: Principal, payment_id: str) -> Payment:
        if not payment_id:
            raise errors.InvalidArgument("id", "is required")
        payment = await self.payments.get(payment_id)
        if payment is None or (payment.user_id != principal.user_id and not principal.admin):
            raise errors.NotFound(f"payment {payment_id} not found")
        return payment

    async def list_payments(
        self,
        principal: Principal,
        *,
        size: int,
        token: str,
        order_id: str,
        state: PaymentState | None,
        user_id: str,
    ) -> tuple[list[Payment], str]:
        if user_id and user_id != principal.user_id and not principal.admin:
            raise errors.PermissionDenied("only admins list other users' payments")
        owner = user_id or principal.user_id
        size = page_size(size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        request = {"user_id": owner, "order_id": order_id, "state": state.value if state else ""}
        cursor = decode_page_token(token, request)
        if order_id:
            payment = await self.payments.get_by_order(order_id)
            visible = payment is not None and (
                payment.user_id == owner or (principal.admin and not user_id)
            )
            if not visible or (state is not None and payment.state is not state):
                return [], ""
            return [payment], ""
        page, next_cursor = await self.payments.list_by_user(owner, size, cursor)
        if state is not None:
            page = [p for p in page if p.state is state]
        return page, encode_page_token(next_cursor, request) if next_cursor else ""

    # -- charging (OrderConfirmed) --------------------------------------------------------------

    async def charge_order(
        self, *, order_id: str, user_id: str, payment_method_id: str, amount: Money
    ) -> Payment:
        """Charges an order exactly once: a payment row is claimed (conditional insert on the
        order id) before the provider is called with the order id as idempotency key; a
        payment left PENDING by a crash is resolved by asking again with the same key."""
        payment = await self.payments.get_by_order(order_id)
        if payment is None:
            payment = await self.payments.claim(
                await self._new_payment(order_id, user_id, payment_method_id, amount)
            )
        for _ in range(CONFLICT_RETRIES):
            if payment.state is not PaymentState.PENDING:
                break
            result = await self.provider.charge(
                payment.token, payment.amount, idempotency_key=order_id, description=order_id
            )
            now = self._now()
            if result.succeeded:
                after = payment.succeeded(result.charge_id, now)
            else:
                after = payment.failed(result.failure_code, result.message, now, result.charge_id)
            if await self.payments.save(after):
                payment = after
                if not result.succeeded:
                    # An operator searching the logs for failed payments finds it (WARNING).
                    log.warning(
                        "payment %s for order %s declined: %s",
                        payment.id,
                        order_id,
                        result.failure_code.value,
                    )
                break
            payment = await self._reload(order_id)
        await self.announce(payment)
        return payment

    async def _new_payment(
        self, order_id: str, user_id: str, payment_method_id: str, amount: Money
    ) -> Payment:
        now = self._now()
        method = await self.methods.get(user_id, payment_method_id) if payment_method_id else None
        payment = Payment(
            id=derived_id("payment", order_id),
            order_id=order_id,
            user_id=user_id,
            payment_method_id=payment_method_id,
            card=method.card if method else None,
            amount=amount,
            state=PaymentState.PENDING,
            provider=self.provider.name,
            create_time=now,
            update_time=now,
            token=method.token if method else "",
        )
        if method is None:
            # Nothing to charge: the payment is claimed already failed, so no charge happens.
            failed = payment.failed(FailureCode.PAYMENT_METHOD_NOT_FOUND, "", now)
            return replace(failed, version=0)
        if method.card.expired(now):
            return replace(payment.failed(FailureCode.EXPIRED_CARD, "", now), version=0)
        return payment

    async def _reload(self, order_id: str) -> Payment:
        payment = await self.payments.get_by_order(order_id)
        if payment is None:  # a claimed payment is never deleted
            raise RuntimeError(f"payment of order {order_id} vanished")
        return payment

    # -- refunds --------------------------------------------------------------------------------

    async def refund_payment(
        self,
        payment_id: str,
        request_id: str,
        amount: Money | None,
        reason: RefundReason | None,
        note: str,
    ) -> tuple[Refund, Payment]:
        v = errors.Violations()
        v.check(bool(payment_id), "id", "is required")
        v.check(bool(request_id.strip()), "request_id", "is required")
        v.check(reason is not None, "reason", "is required")
        v.raise_if_any()
        payment = await self.payments.get(payment_id)
        if payment is None:
            raise errors.NotFound(f"payment {payment_id} not found")
        assert reason is not None
        refund_id = derived_id("refund", payment_id, request_id)
        return await self._refund(payment, refund_id, amount, reason, note, retry_conflicts=False)

    async def refund_cancelled_order(self, order_id: str) -> Payment | None:
        """OrderCancelled: refunds what is left of the order's succeeded payment, once."""
        payment = await self.payments.get_by_order(order_id)
        if payment is None:
            return None
        if payment.state is PaymentState.PENDING:
            # A charge in flight when the order was cancelled: settle it first.
            payment = await self.charge_order(
                order_id=order_id,
                user_id=payment.user_id,
                payment_method_id=payment.payment_method_id,
                amount=payment.amount,
            )
        refund_id = derived_id("refund", payment.id, "order-cancelled")
        existing = payment.refund(refund_id)
        if existing is None and payment.state not in (
            PaymentState.SUCCEEDED,
            PaymentState.PARTIALLY_REFUNDED,
        ):
            await self.announce(payment)
            return payment
        if existing is None and payment.refundable.nanos <= 0:
            return payment
        _, payment = await self._refund(
            payment, refund_id, None, RefundReason.ORDER_CANCELLED, "", retry_conflicts=True
        )
        return payment

    async def _refund(
        self,
        payment: Payment,
        refund_id: str,
        amount: Money | None,
        reason: RefundReason,
        note: str,
        *,
        retry_conflicts: bool,
    ) -> tuple[Refund, Payment]:
        for _ in range(CONFLICT_RETRIES):
            refund = payment.refund(refund_id)
            if refund is not None:
                break
            after, refund = payment.start_refund(refund_id, amount, reason, note, self._now())
            if await self.payments.save(after):
                payment = after
                break
            if not retry_conflicts:
                raise errors.Aborted("another refund of this payment is being made; retry")
            payment = await self._reload(payment.order_id)
        else:
            raise errors.Aborted("the payment keeps changing; retry")
        for _ in range(CONFLICT_RETRIES):
            refund = payment.refund(refund_id)
            assert refund is not None
            if refund.state is not RefundState.PENDING:
                break
            result = await self.provider.refund(
                payment.provider_payment_id, refund.amount, idempotency_key=refund_id
            )
            after = payment.finish_refund(
                refund_id,
                ok=result.succeeded,
                provider_refund_id=result.refund_id,
                message=result.message,
                now=self._now(),
            )
            if await self.payments.save(after):
                payment = after
                break
            payment = await self._reload(payment.order_id)
        await self.announce(payment)
        refund = payment.refund(refund_id)
        assert refund is not None
        return refund, payment

    # -- events ---------------------------------------------------------------------------------

    async def announce(self, payment: Payment) -> None:
        """Writes the events the payment's state calls for that were not written yet."""
        due = [e for e in expected_events(payment, self._now()) if e.id not in payment.announced]
        if due:
            await self.payments.announce(payment, due)


def expected_events(payment: Payment, now: datetime) -> list[Event]:
    """Every event a payment in this state has caused, with ids derived from it (stable)."""
    events = []
    if payment.state is PaymentState.FAILED:
        events.append(
            Event.of(
                mapping.payment_failed(payment),
                SOURCE,
                id=derived_id("event", payment.id, "failed"),
                time=now,
            )
        )
    elif payment.state is not PaymentState.PENDING:
        events.append(
            Event.of(
                mapping.payment_succeeded(payment),
                SOURCE,
                id=derived_id("event", payment.id, "succeeded"),
                time=now,
            )
        )
        refunded = 0
        for refund in payment.refunds:
            if refund.state is not RefundState.SUCCEEDED:
                continue
            refunded += refund.amount.nanos
            message = mapping.payment_refunded(
                payment, refund, Money(payment.amount.currency, refunded)
            )
            events.append(
                Event.of(message, SOURCE, id=derived_id("event", refund.id, "refunded"), time=now)
            )
    return events
