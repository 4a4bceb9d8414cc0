"""The UserService servicer: decodes requests, calls a handler, encodes the answer."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

import grpc
from emporium.user.v1 import user_service_pb2, user_service_pb2_grpc
from google.api import httpbody_pb2
from google.protobuf import empty_pb2

from kit import auth, paging
from kit.mapping import timestamp
from services.user import mapping
from services.user.handlers import UserHandlers


def _peer_address(context: grpc.aio.ServicerContext) -> str:
    peer = context.peer() or ""  # "ipv4:127.0.0.1:51234" or "ipv6:[::1]:51234"
    return peer.split(":", 1)[-1].rsplit(":", 1)[0].strip("[]")


def client_address(
    context: grpc.aio.ServicerContext, trusted_proxies: Sequence[IPv4Network | IPv6Network] = ()
) -> str:
    """Who is calling, for login throttling.

    Behind the gateway the peer is Envoy, which puts the address it saw last in
    `x-forwarded-for`. That header counts only when the peer is a trusted proxy (the gateway's
    address, EMPORIUM_USER_TRUSTED_PROXIES): a direct caller sets it to anything, so for
    anyone else the peer address is the client.
    """
    peer = _peer_address(context)
    try:
        trusted = any(ip_address(peer) in network for network in trusted_proxies)
    except ValueError:
        trusted = False
    if trusted:
        metadata = dict(context.invocation_metadata() or ())
        forwarded = str(metadata.get("x-forwarded-for", "")).split(",")[-1].strip()
        if forwarded:
            return forwarded
    return peer


class UserService(user_service_pb2_grpc.UserServiceServicer):
    def __init__(
        self,
        handlers: UserHandlers,
        trusted_proxies: Sequence[IPv4Network | IPv6Network] = (),
    ) -> None:
        self.handlers = handlers
        self.trusted_proxies = tuple(trusted_proxies)

    async def Register(self, request, context):
        user = await self.handlers.register(
            email=request.email,
            password=request.password,
            display_name=request.display_name,
            request_id=request.request_id,
            locale=request.locale,
            time_zone=request.time_zone,
            marketing_consent=request.marketing_consent,
        )
        return mapping.user_to_proto(user)

    async def Login(self, request, context):
        tokens = await self.handlers.login(
            email=request.email,
            password=request.password,
            client_address=client_address(context, self.trusted_proxies),
        )
        return mapping.tokens_to_proto(tokens)

    async def RefreshToken(self, request, context):
        tokens = await self.handlers.refresh(refresh_token=request.refresh_token)
        return mapping.tokens_to_proto(tokens)

    async def Logout(self, request, context):
        await self.handlers.logout(
            refresh_token=request.refresh_token, all_sessions=request.all_sessions
        )
        return user_service_pb2.LogoutResponse()

    async def RequestPasswordReset(self, request, context):
        await self.handlers.request_password_reset(
            email=request.email, client_address=client_address(context, self.trusted_proxies)
        )
        return user_service_pb2.RequestPasswordResetResponse()

    async def ResetPassword(self, request, context):
        await self.handlers.reset_password(
            token=request.token,
            new_password=request.new_password,
            client_address=client_address(context, self.trusted_proxies),
        )
        return user_service_pb2.ResetPasswordResponse()

    async def VerifyEmail(self, request, context):
        email = await self.handlers.verify_email(
            token=request.token, client_address=client_address(context, self.trusted_proxies)
        )
        return user_service_pb2.VerifyEmailResponse(email=email)

    async def GetJwks(self, request, context):
        return httpbody_pb2.HttpBody(content_type="application/json", data=self.handlers.jwks())

    async def ListTokenRevocations(self, request, context):
        marks = await self.handlers.token_revocations()
        return user_service_pb2.ListTokenRevocationsResponse(
            revocations=[
                user_service_pb2.TokenRevocation(
                    user_id_sha256=auth.revocation_key(user_id),
                    valid_after_time=timestamp(after),
                )
                for user_id, after in marks.items()
            ]
        )

    async def GetMe(self, request, context):
        return mapping.user_to_proto(await self.handlers.me(auth.caller()))

    async def UpdateMe(self, request, context):
        user = await self.handlers.update_me(
            auth.caller(),
            display_name=request.user.display_name,
            phone_number=request.user.phone_number,
            mask=request.update_mask.paths,
        )
        return mapping.user_to_proto(user)

    async def DeleteMe(self, request, context):
        await self.handlers.delete_me(auth.caller())
        return empty_pb2.Empty()

    async def ChangePassword(self, request, context):
        tokens = await self.handlers.change_password(
            auth.caller(),
            current_password=request.current_password,
            new_password=request.new_password,
        )
        return mapping.tokens_to_proto(tokens)

    async def ChangeEmail(self, request, context):
        user = await self.handlers.change_email(
            auth.caller(),
            new_email=request.new_email,
            current_password=request.current_password,
        )
        return mapping.user_to_proto(user)

    async def SendVerificationEmail(self, request, context):
        token = await self.handlers.send_verification_email(auth.caller())
        return user_service_pb2.SendVerificationEmailResponse(
            email=token.email, expire_time=timestamp(token.expire_time)
        )

    async def GetSettings(self, request, context):
        return mapping.settings_to_proto(await self.handlers.get_settings(auth.caller()))

    async def UpdateSettings(self, request, context):
        caller = auth.caller()
        wanted = mapping.settings_from_proto(request.settings, caller.user_id)
        settings = await self.handlers.update_settings(caller, wanted, request.update_mask.paths)
        return mapping.settings_to_proto(settings)

    async def ListAddresses(self, request, context):
        caller = auth.caller()
        size = paging.page_size(request.page_size)
        scope = {"user": caller.user_id}
        cursor = paging.decode_page_token(request.page_token, scope) or {"offset": 0}
        offset = int(cursor.get("offset", 0)) if isinstance(cursor, dict) else 0
        book = await self.handlers.list_addresses(caller)
        page = book[offset : offset + size]
        more = offset + size < len(book)
        token = paging.encode_page_token({"offset": offset + size}, scope) if more else ""
        return user_service_pb2.ListAddressesResponse(
            addresses=[mapping.address_to_proto(a) for a in page], next_page_token=token
        )

    async def CreateAddress(self, request, context):
        address = mapping.address_from_proto(request.address, request.request_id)
        stored = await self.handlers.create_address(auth.caller(), address)
        return mapping.address_to_proto(stored)

    async def GetAddress(self, request, context):
        address = await self.handlers.get_address(auth.caller(), request.id)
        return mapping.address_to_proto(address)

    async def UpdateAddress(self, request, context):
        wanted = mapping.address_from_proto(request.address)
        address = await self.handlers.update_address(
            auth.caller(), request.id, wanted, request.update_mask.paths
        )
        return mapping.address_to_proto(address)

    async def DeleteAddress(self, request, context):
        await self.handlers.delete_address(auth.caller(), request.id)
        return empty_pb2.Empty()

    async def GetUser(self, request, context):
        return mapping.user_to_proto(await self.handlers.get_user(request.id))

    async def ListUsers(self, request, context):
        size = paging.page_size(request.page_size)
        scope = {
            "email_prefix": request.email_prefix,
            "role": int(request.role),
            "state": int(request.state),
        }
        cursor = paging.decode_page_token(request.page_token, scope)
        users, next_cursor = await self.handlers.list_users(
            size=size,
            cursor=cursor if isinstance(cursor, bytes) else None,
            email_prefix=request.email_prefix,
            role=mapping.role_name(request.role),
            state=mapping.state_of(request.state),
        )
        return user_service_pb2.ListUsersResponse(
            users=[mapping.user_to_proto(u) for u in users],
            next_page_token=paging.encode_page_token(next_cursor, scope) if next_cursor else "",
        )

    async def DisableUser(self, request, context):
        user = await self.handlers.disable_user(auth.caller(), request.id, reason=request.reason)
        return mapping.user_to_proto(user)

    async def EnableUser(self, request, context):
        return mapping.user_to_proto(await self.handlers.enable_user(auth.caller(), request.id))

    async def SetUserRoles(self, request, context):
        roles = mapping.roles_from_proto(request.roles)
        user = await self.handlers.set_user_roles(auth.caller(), request.id, roles)
        return mapping.user_to_proto(user)
