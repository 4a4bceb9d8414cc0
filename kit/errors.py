"""Domain errors: what handlers raise, and how they become gRPC statuses with rich details.

Handlers raise these; the server's error interceptor turns them into a canonical status code
with a `google.rpc.Status` in the `grpc-status-details-bin` trailer (ErrorInfo always,
BadRequest field violations for InvalidArgument), which Envoy turns into HTTP status + JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "emporium"


# What one error may carry back. The status travels in gRPC trailers (8 KiB by default at many
# proxies and clients): a message that echoes a huge input would overflow them, and the caller
# would see a broken connection (503) instead of the error. Bounded here, once for every service.
MAX_MESSAGE_CHARS = 512
MAX_FIELD_CHARS = 100
MAX_DESCRIPTION_CHARS = 200
MAX_VIOLATIONS = 10


def bounded(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters with a marker when it is longer."""
    if len(text) <= limit:
        return text
    marker = "... (truncated)"
    return text[: limit - len(marker)] + marker


class DomainError(Exception):
    """Base of every error a handler may raise on purpose; anything else is INTERNAL."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    # A stable UPPER_SNAKE reason clients may branch on (google.rpc.ErrorInfo.reason).
    reason: str = "UNKNOWN"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason,
            domain=ERROR_DOMAIN,
            metadata={
                bounded(k, MAX_FIELD_CHARS): bounded(v, MAX_DESCRIPTION_CHARS)
                for k, v in list(self.metadata.items())[:MAX_VIOLATIONS]
            },
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status sent in the trailers."""
        return status_pb2.Status(
            code=self.code.value[0],
            message=bounded(self.message, MAX_MESSAGE_CHARS),
            details=self.details(),
        )


class InvalidArgument(DomainError):
    """The request is malformed; names every offending field (HTTP 400)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        field: str | None = None,
        description: str = "",
        *,
        violations: Iterable[tuple[str, str]] = (),
        message: str | None = None,
    ) -> None:
        self.violations = list(violations)
        if field is not None:
            self.violations.insert(0, (field, description))
        if not self.violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        summary = "; ".join(f"{f}: {d}" for f, d in self.violations)
        super().__init__(message or f"invalid argument: {summary}")

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=bounded(f, MAX_FIELD_CHARS),
                    description=bounded(d, MAX_DESCRIPTION_CHARS),
                )
                for f, d in self.violations[:MAX_VIOLATIONS]
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        return [*super().details(), packed]


class Violations:
    """Collects field violations so one response names every bad field, not just the first."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def check(self, condition: bool, field: str, description: str) -> None:
        """Record a violation unless `condition` holds."""
        if not condition:
            self.add(field, description)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(violations=self.items)


class NotFound(DomainError):
    """The resource does not exist, or the caller may not know that it does (HTTP 404)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """A create collides with an existing resource (HTTP 409)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the operation (HTTP 400)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrent change won the race; the client may retry (HTTP 409)."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class Unauthenticated(DomainError):
    """No valid credentials (HTTP 401)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """Authenticated, but not allowed (HTTP 403)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    """A quota or rate limit is exceeded (HTTP 429)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency is down; retrying later may work (HTTP 503)."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    """The call ran past the server's bound on it (HTTP 504)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


def internal_status(message: str = "internal error") -> status_pb2.Status:
    """The status sent for unexpected exceptions: no stack traces or internals leak out."""
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)
