"""The payment service over real gRPC, with the in-memory stores and the sandbox provider."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import (
    payment_events_pb2,
    payment_method_pb2,
    payment_pb2,
    payment_service_pb2_grpc,
)
from emporium.payment.v1 import payment_service_pb2 as S
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from kit import auth, events, server
from kit.events import Event
from services.payment import bootstrap, consumers
from services.payment.adapters.memory import (
    InMemoryPaymentMethods,
    InMemoryPayments,
    InMemorySandboxStore,
)
from services.payment.adapters.sandbox import SandboxProvider
from services.payment.config import Settings
from services.payment.domain import Money, luhn_valid

ISSUER, AUDIENCE = "emporium-user", "emporium"
PAN = "4242424242424242"
PM = payment_method_pb2.PaymentMethod
P = payment_pb2.Payment


class Tokens:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}

    async def source(self) -> bytes:
        return json.dumps(self.jwks).encode()

    def metadata(self, user_id: str, *roles: str) -> list[tuple[str, str]]:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "roles": list(roles) or ["customer"],
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})
        return [("authorization", f"Bearer {token}")]


class SteppingClock:
    """The wall clock, one millisecond later at every reading: the service keeps milliseconds,
    and methods added within one would tie on their creation time and list in id order."""

    def __init__(self) -> None:
        self.time = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        self.time += timedelta(milliseconds=1)
        return self.time


class World:
    def __init__(self, channel, tokens, methods, payments, sandbox, app) -> None:
        self.stub = payment_service_pb2_grpc.PaymentServiceStub(channel)
        self.tokens = tokens
        self.methods = methods
        self.payments = payments
        self.sandbox = sandbox
        self.app = app
        self.handle = events.dispatch(consumers.subscriptions(app.handlers))

    def user(self, *roles: str) -> tuple[str, list[tuple[str, str]]]:
        user_id = str(uuid.uuid4())
        return user_id, self.tokens.metadata(user_id, *roles)

    async def add(self, md, token: str = "tok_visa", **fields: Any) -> PM:
        request = S.AddPaymentMethodRequest(
            request_id=fields.pop("request_id", str(uuid.uuid4())), provider_token=token, **fields
        )
        return await self.stub.AddPaymentMethod(request, metadata=md)

    async def confirm(self, order_id: str, user_id: str, method_id: str, units: int = 25):
        message = order_events_pb2.OrderConfirmed(
            order_id=order_id,
            user_id=user_id,
            payment_method_id=method_id,
            total=money_pb2.Money(currency_code="USD", units=units, nanos=500_000_000),
        )
        await self.handle(Event.of(message, "order"))

    async def cancel(self, order_id: str, user_id: str) -> None:
        message = order_events_pb2.OrderCancelled(order_id=order_id, user_id=user_id)
        await self.handle(Event.of(message, "order"))

    async def published(self) -> list[Event]:
        return await self.payments.outbox.pending(1000)

    async def of_type(self, cls) -> list[Any]:
        return [e.decode(cls) for e in await self.published() if e.type == cls.DESCRIPTOR.full_name]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_PAYMENT_GRPC_PORT": "0"})
    tokens = Tokens()
    methods, payments, sandbox = (
        InMemoryPaymentMethods(),
        InMemoryPayments(),
        InMemorySandboxStore(),
    )
    app = await bootstrap.build(
        settings,
        methods=methods,
        payments=payments,
        provider=SandboxProvider(sandbox, latency=0),
        bus=None,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        clock=SteppingClock(),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, methods, payments, sandbox, app)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    bad = error_details_pb2.BadRequest()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(bad):
            return {v.field: v.description for v in bad.field_violations}
    return {}


def _reason(error: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(info):
            return info.reason
    return ""


# --- payment methods -------------------------------------------------------------------------


async def test_a_test_token_saves_a_card_with_display_details_only_and_it_is_the_default(world):
    _, md = world.user()
    method = await world.add(md, "tok_visa")
    assert method.type == PM.TYPE_CARD
    assert (method.card.brand, method.card.last4, method.card.exp_month) == (
        PM.Card.BRAND_VISA,
        "4242",
        12,
    )
    assert method.default_method
    assert method.provider == "sandbox"
    assert "pm_sandbox" not in str(method)


async def test_raw_card_details_are_tokenised_and_the_number_is_stored_and_logged_nowhere(
    world, caplog
):
    caplog.set_level(logging.DEBUG)
    _, md = world.user()
    method = await world.add(md, f"card:{PAN}:11:2031:123")
    assert (method.card.last4, method.card.exp_month, method.card.exp_year) == ("4242", 11, 2031)
    listed = await world.stub.ListPaymentMethods(S.ListPaymentMethodsRequest(), metadata=md)
    assert PAN not in str(method) + str(listed)
    stored = repr(vars(world.methods)) + repr(vars(world.sandbox)) + repr(vars(world.payments))
    assert PAN not in stored
    assert PAN[-8:] not in stored
    assert PAN not in caplog.text


async def test_a_card_number_that_fails_luhn_is_invalid_argument_naming_the_token(world):
    _, md = world.user()
    error = await _error(world.add(md, "card:4242424242424241:12:2031:123"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "provider_token" in _violations(error)
    assert _reason(error) == "INVALID_CARD_NUMBER"
    assert not luhn_valid("4242424242424241")
    assert luhn_valid(PAN)


async def test_an_expired_card_is_invalid_argument_naming_the_field_and_its_expiry(world):
    _, md = world.user()
    error = await _error(world.add(md, f"card:{PAN}:01:2020:123"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "exp_month/exp_year" in _violations(error)["provider_token"]
    assert _reason(error) == "EXPIRED_CARD"
    assert PAN not in error.details()


async def test_a_malformed_cvc_or_an_unknown_token_or_missing_fields_are_invalid(world):
    _, md = world.user()
    error = await _error(world.add(md, f"card:{PAN}:12:2031:12"))
    assert _reason(error) == "INVALID_CVC"
    error = await _error(world.add(md, "tok_nonsense"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await _error(world.stub.AddPaymentMethod(S.AddPaymentMethodRequest(), metadata=md))
    assert set(_violations(error)) == {"request_id", "provider_token"}


async def test_a_retry_with_the_same_request_id_returns_the_method_saved_first(world):
    _, md = world.user()
    request_id = str(uuid.uuid4())
    first = await world.add(md, "tok_visa", request_id=request_id)
    again = await world.add(md, "tok_mastercard", request_id=request_id)
    assert again.id == first.id
    assert again.card.last4 == "4242"
    listed = await world.stub.ListPaymentMethods(S.ListPaymentMethodsRequest(), metadata=md)
    assert len(listed.payment_methods) == 1


async def test_methods_list_the_default_first_then_newest_and_set_default_moves_it(world):
    _, md = world.user()
    first = await world.add(md, "tok_visa")
    second = await world.add(md, "tok_mastercard")
    third = await world.add(md, "tok_amex", set_default=True)
    listed = await world.stub.ListPaymentMethods(S.ListPaymentMethodsRequest(), metadata=md)
    assert [m.id for m in listed.payment_methods] == [third.id, second.id, first.id]
    assert [m.default_method for m in listed.payment_methods] == [True, False, False]
    made = await world.stub.SetDefaultPaymentMethod(
        S.SetDefaultPaymentMethodRequest(id=first.id), metadata=md
    )
    assert made.default_method
    page = await world.stub.ListPaymentMethods(
        S.ListPaymentMethodsRequest(page_size=2), metadata=md
    )
    assert [m.id for m in page.payment_methods] == [first.id, third.id]
    assert page.next_page_token
    rest = await world.stub.ListPaymentMethods(
        S.ListPaymentMethodsRequest(page_size=2, page_token=page.next_page_token), metadata=md
    )
    assert [m.id for m in rest.payment_methods] == [second.id]
    assert not rest.next_page_token


async def test_deleting_the_default_leaves_no_default_and_detaches_the_token(world):
    user_id, md = world.user()
    method = await world.add(md)
    token = (await world.methods.get(user_id, method.id)).token
    await world.stub.DeletePaymentMethod(S.DeletePaymentMethodRequest(id=method.id), metadata=md)
    error = await _error(
        world.stub.GetPaymentMethod(S.GetPaymentMethodRequest(id=method.id), metadata=md)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.sandbox.method(token)).detached
    other = await world.add(md, "tok_mastercard", set_default=False)
    assert other.default_method  # the user had no default any more


async def test_another_users_method_is_not_found_for_every_rpc(world):
    _, alice = world.user()
    _, bob = world.user()
    method = await world.add(alice)
    for call in (
        world.stub.GetPaymentMethod(S.GetPaymentMethodRequest(id=method.id), metadata=bob),
        world.stub.DeletePaymentMethod(S.DeletePaymentMethodRequest(id=method.id), metadata=bob),
        world.stub.SetDefaultPaymentMethod(
            S.SetDefaultPaymentMethodRequest(id=method.id), metadata=bob
        ),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND
    listed = await world.stub.ListPaymentMethods(S.ListPaymentMethodsRequest(), metadata=bob)
    assert list(listed.payment_methods) == []


async def test_the_number_of_saved_methods_is_limited(world):
    _, md = world.user()
    for _ in range(10):
        await world.add(md)
    error = await _error(world.add(md))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_calls_without_a_token_are_unauthenticated(world):
    error = await _error(world.stub.ListPaymentMethods(S.ListPaymentMethodsRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- charging --------------------------------------------------------------------------------


async def test_order_confirmed_charges_once_and_publishes_payment_succeeded(world):
    user_id, md = world.user()
    method = await world.add(md)
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, method.id)
    [succeeded] = await world.of_type(payment_events_pb2.PaymentSucceeded)
    assert (succeeded.order_id, succeeded.user_id, succeeded.card.last4) == (
        order_id,
        user_id,
        "4242",
    )
    assert (succeeded.amount.units, succeeded.amount.nanos) == (25, 500_000_000)
    assert await world.app.provider.charges_for(order_id) == 1
    listed = await world.stub.ListPayments(S.ListPaymentsRequest(order_id=order_id), metadata=md)
    [payment] = listed.payments
    assert payment.state == P.STATE_SUCCEEDED
    assert payment.id == succeeded.payment_id
    assert payment.provider_payment_id.startswith("ch_sandbox_")


async def test_a_redelivered_order_confirmed_never_charges_twice(world):
    user_id, md = world.user()
    method = await world.add(md)
    order_id = str(uuid.uuid4())
    for _ in range(3):  # new event ids each time: not even the inbox saves this
        await world.confirm(order_id, user_id, method.id)
    assert await world.app.provider.charges_for(order_id) == 1
    assert await world.app.provider.charge_calls(order_id) == 1
    assert len(await world.of_type(payment_events_pb2.PaymentSucceeded)) == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclined", P.FAILURE_CODE_CARD_DECLINED),
        ("tok_chargeDeclinedInsufficientFunds", P.FAILURE_CODE_INSUFFICIENT_FUNDS),
        ("card:4000000000000002:12:2031:123", P.FAILURE_CODE_CARD_DECLINED),
        ("card:4000000000009995:12:2031:123", P.FAILURE_CODE_INSUFFICIENT_FUNDS),
    ],
)
async def test_a_declined_card_fails_the_payment_with_the_reason(world, token, code):
    user_id, md = world.user()
    method = await world.add(md, token)
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, method.id)
    await world.confirm(order_id, user_id, method.id)
    [failed] = await world.of_type(payment_events_pb2.PaymentFailed)
    assert failed.failure_code == code
    assert failed.failure_message
    assert await world.of_type(payment_events_pb2.PaymentSucceeded) == []
    payments = await world.stub.ListPayments(S.ListPaymentsRequest(), metadata=md)
    assert [(p.state, p.failure_code) for p in payments.payments] == [(P.STATE_FAILED, code)]


async def test_an_unknown_payment_method_fails_the_payment_without_a_charge(world):
    user_id, _ = world.user()
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, str(uuid.uuid4()))
    [failed] = await world.of_type(payment_events_pb2.PaymentFailed)
    assert failed.failure_code == P.FAILURE_CODE_PAYMENT_METHOD_NOT_FOUND
    assert await world.app.provider.charge_calls(order_id) == 0


async def test_another_users_method_cannot_pay_for_an_order(world):
    _, alice = world.user()
    bob_id, _ = world.user()
    method = await world.add(alice)
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, bob_id, method.id)
    [failed] = await world.of_type(payment_events_pb2.PaymentFailed)
    assert failed.failure_code == P.FAILURE_CODE_PAYMENT_METHOD_NOT_FOUND


async def test_a_payment_left_pending_by_a_crash_is_resolved_with_one_charge(world):
    user_id, md = world.user()
    method = await world.add(md)
    order_id = str(uuid.uuid4())
    h = world.app.handlers
    # What a crash after the claim leaves: a pending payment, maybe a charge at the provider.
    pending = await h._new_payment(order_id, user_id, method.id, Money("USD", 10**9))
    await world.payments.claim(pending)
    await world.app.provider.charge(pending.token, pending.amount, idempotency_key=order_id)
    await world.confirm(order_id, user_id, method.id)
    assert await world.app.provider.charges_for(order_id) == 1
    assert len(await world.of_type(payment_events_pb2.PaymentSucceeded)) == 1


# --- reading payments ------------------------------------------------------------------------


async def test_payments_are_visible_to_their_owner_and_admins_only(world):
    user_id, md = world.user()
    _, bob = world.user()
    _, admin = world.user("admin")
    method = await world.add(md)
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, method.id)
    [payment] = (await world.stub.ListPayments(S.ListPaymentsRequest(), metadata=md)).payments
    got = await world.stub.GetPayment(S.GetPaymentRequest(id=payment.id), metadata=md)
    assert got.order_id == order_id
    error = await _error(world.stub.GetPayment(S.GetPaymentRequest(id=payment.id), metadata=bob))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.stub.GetPayment(S.GetPaymentRequest(id=payment.id), metadata=admin)).id
    bobs = await world.stub.ListPayments(S.ListPaymentsRequest(order_id=order_id), metadata=bob)
    assert list(bobs.payments) == []
    error = await _error(
        world.stub.ListPayments(S.ListPaymentsRequest(user_id=user_id), metadata=bob)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    theirs = await world.stub.ListPayments(S.ListPaymentsRequest(user_id=user_id), metadata=admin)
    assert [p.id for p in theirs.payments] == [payment.id]


# --- refunds ---------------------------------------------------------------------------------


async def _paid(world) -> tuple[str, list, P]:
    user_id, md = world.user()
    method = await world.add(md)
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, method.id)
    [payment] = (await world.stub.ListPayments(S.ListPaymentsRequest(), metadata=md)).payments
    return order_id, md, payment


def _refund(payment_id: str, units: int | None = None, request_id: str | None = None):
    request = S.RefundPaymentRequest(
        id=payment_id,
        request_id=request_id or str(uuid.uuid4()),
        reason=payment_pb2.Refund.REASON_CUSTOMER_REQUESTED,
    )
    if units is not None:
        request.amount.CopyFrom(money_pb2.Money(currency_code="USD", units=units))
    return request


async def test_an_admin_refunds_in_part_then_the_rest_never_more_than_captured(world):
    _, _, payment = await _paid(world)
    _, admin = world.user("admin")
    request_id = str(uuid.uuid4())
    made = await world.stub.RefundPayment(_refund(payment.id, 10, request_id), metadata=admin)
    assert made.refund.state == payment_pb2.Refund.STATE_SUCCEEDED
    assert made.payment.state == P.STATE_PARTIALLY_REFUNDED
    assert made.payment.amount_refunded.units == 10
    again = await world.stub.RefundPayment(_refund(payment.id, 10, request_id), metadata=admin)
    assert again.refund.id == made.refund.id
    assert again.payment.amount_refunded.units == 10
    error = await _error(world.stub.RefundPayment(_refund(payment.id, 16), metadata=admin))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    rest = await world.stub.RefundPayment(_refund(payment.id), metadata=admin)
    assert (rest.refund.amount.units, rest.refund.amount.nanos) == (15, 500_000_000)
    assert rest.payment.state == P.STATE_REFUNDED
    error = await _error(world.stub.RefundPayment(_refund(payment.id), metadata=admin))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    refunded = await world.of_type(payment_events_pb2.PaymentRefunded)
    assert [(r.amount.units, r.full) for r in refunded] == [(10, False), (15, True)]


async def test_refunds_need_the_admin_role_a_reason_and_a_valid_amount(world):
    _, md, payment = await _paid(world)
    _, admin = world.user("admin")
    error = await _error(world.stub.RefundPayment(_refund(payment.id), metadata=md))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    no_reason = S.RefundPaymentRequest(id=payment.id, request_id=str(uuid.uuid4()))
    error = await _error(world.stub.RefundPayment(no_reason, metadata=admin))
    assert "reason" in _violations(error)
    error = await _error(world.stub.RefundPayment(_refund(payment.id, 0), metadata=admin))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    euro = _refund(payment.id, 1)
    euro.amount.currency_code = "EUR"
    error = await _error(world.stub.RefundPayment(euro, metadata=admin))
    assert "amount.currency_code" in _violations(error)
    error = await _error(world.stub.RefundPayment(_refund(str(uuid.uuid4())), metadata=admin))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_order_cancelled_refunds_a_succeeded_payment_in_full_exactly_once(world):
    order_id, md, payment = await _paid(world)
    await world.cancel(order_id, payment.user_id)
    await world.cancel(order_id, payment.user_id)
    [refunded] = await world.of_type(payment_events_pb2.PaymentRefunded)
    assert refunded.full
    assert refunded.reason == payment_pb2.Refund.REASON_ORDER_CANCELLED
    assert (refunded.amount.units, refunded.amount.nanos) == (25, 500_000_000)
    got = await world.stub.GetPayment(S.GetPaymentRequest(id=payment.id), metadata=md)
    assert got.state == P.STATE_REFUNDED
    assert len(got.refunds) == 1


async def test_order_cancelled_without_a_payment_or_after_a_failed_one_refunds_nothing(world):
    await world.cancel(str(uuid.uuid4()), str(uuid.uuid4()))
    user_id, md = world.user()
    method = await world.add(md, "tok_chargeDeclined")
    order_id = str(uuid.uuid4())
    await world.confirm(order_id, user_id, method.id)
    await world.cancel(order_id, user_id)
    assert await world.of_type(payment_events_pb2.PaymentRefunded) == []


async def test_an_expired_card_cannot_become_the_default(world):
    user_id, md = world.user()
    await world.add(md)
    expired = await world.add(md, "tok_mastercard")
    stored = await world.methods.get(user_id, expired.id)
    world.methods._methods[(user_id, expired.id)] = replace(
        stored, card=replace(stored.card, exp_year=2020), default=False
    )
    error = await _error(
        world.stub.SetDefaultPaymentMethod(
            S.SetDefaultPaymentMethodRequest(id=expired.id), metadata=md
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_payments_can_be_filtered_by_state(world):
    user_id, md = world.user()
    good = await world.add(md)
    bad = await world.add(md, "tok_chargeDeclined")
    await world.confirm(str(uuid.uuid4()), user_id, good.id)
    await world.confirm(str(uuid.uuid4()), user_id, bad.id)
    failed = await world.stub.ListPayments(S.ListPaymentsRequest(state=P.STATE_FAILED), metadata=md)
    assert [p.payment_method_id for p in failed.payments] == [bad.id]
    both = await world.stub.ListPayments(S.ListPaymentsRequest(), metadata=md)
    assert len(both.payments) == 2
