"""The PaymentService servicer: decode, call a handler, encode."""

from __future__ import annotations

from emporium.payment.v1 import payment_service_pb2 as S
from emporium.payment.v1 import payment_service_pb2_grpc
from google.protobuf import empty_pb2

from kit import auth, errors
from services.payment import mapping
from services.payment.handlers import PaymentHandlers


class PaymentService(payment_service_pb2_grpc.PaymentServiceServicer):
    def __init__(self, handlers: PaymentHandlers) -> None:
        self.h = handlers

    async def AddPaymentMethod(self, request, context):
        user = auth.caller()
        method = await self.h.add_payment_method(
            user.user_id, request.request_id, request.provider_token, request.set_default
        )
        return mapping.payment_method(method)

    async def ListPaymentMethods(self, request, context):
        user = auth.caller()
        methods, token = await self.h.list_payment_methods(
            user.user_id, request.page_size, request.page_token
        )
        return S.ListPaymentMethodsResponse(
            payment_methods=[mapping.payment_method(m) for m in methods], next_page_token=token
        )

    async def GetPaymentMethod(self, request, context):
        method = await self.h.get_payment_method(auth.caller().user_id, request.id)
        return mapping.payment_method(method)

    async def DeletePaymentMethod(self, request, context):
        await self.h.delete_payment_method(auth.caller().user_id, request.id)
        return empty_pb2.Empty()

    async def SetDefaultPaymentMethod(self, request, context):
        method = await self.h.set_default_payment_method(auth.caller().user_id, request.id)
        return mapping.payment_method(method)

    async def GetPayment(self, request, context):
        return mapping.payment(await self.h.get_payment(auth.caller(), request.id))

    async def ListPayments(self, request, context):
        if request.state and request.state not in mapping.STATES_BACK:
            raise errors.InvalidArgument("state", "is not a payment state")
        payments, token = await self.h.list_payments(
            auth.caller(),
            size=request.page_size,
            token=request.page_token,
            order_id=request.order_id,
            state=mapping.STATES_BACK.get(request.state),
            user_id=request.user_id,
        )
        return S.ListPaymentsResponse(
            payments=[mapping.payment(p) for p in payments], next_page_token=token
        )

    async def RefundPayment(self, request, context):
        auth.require_admin()
        if request.reason and request.reason not in mapping.REASONS_BACK:
            raise errors.InvalidArgument("reason", "is not a refund reason")
        amount = (
            mapping.money_from(request.amount, "amount") if request.HasField("amount") else None
        )
        refund, payment = await self.h.refund_payment(
            request.id,
            request.request_id,
            amount,
            mapping.REASONS_BACK.get(request.reason),
            request.note,
        )
        return S.RefundPaymentResponse(
            refund=mapping.refund(refund), payment=mapping.payment(payment)
        )
