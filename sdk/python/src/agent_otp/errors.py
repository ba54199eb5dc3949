"""Typed errors. Everything the SDK raises is an :class:`AgentOTPError`; the subclass says what
happened and ``code`` carries the server's machine code (or the SDK's own for local failures)."""

from __future__ import annotations

import builtins
from typing import Any, Mapping, Optional


class AgentOTPError(Exception):
    """Base class of every SDK error."""

    default_code = "API_ERROR"

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
        details: Optional[Mapping[str, Any]] = None,
        status_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = dict(details or {})
        self.status_code = status_code


class AuthenticationError(AgentOTPError):
    """The agent key is missing, unknown or revoked (401)."""

    default_code = "UNAUTHORIZED"


class ForbiddenError(AgentOTPError):
    """The key is valid but may not do this (403)."""

    default_code = "FORBIDDEN"


class NotFoundError(AgentOTPError):
    """No such permission request, or not this agent's (404)."""

    default_code = "NOT_FOUND"


class ValidationError(AgentOTPError):
    """The input was refused (400); ``details`` names each bad field."""

    default_code = "VALIDATION_ERROR"


class ConflictError(AgentOTPError):
    """The request is no longer in a state that allows this (409)."""

    default_code = "CONFLICT"


class PayloadTooLargeError(AgentOTPError):
    """The body was too large (413)."""

    default_code = "PAYLOAD_TOO_LARGE"


class RateLimitError(AgentOTPError):
    """Too many requests (429), still refused after the configured retries."""

    default_code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: Optional[float] = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(AgentOTPError):
    """The server failed (5xx)."""

    default_code = "SERVER_ERROR"


class NetworkError(AgentOTPError):
    """The server could not be reached, or the connection broke."""

    default_code = "NETWORK_ERROR"


class TimeoutError(AgentOTPError, builtins.TimeoutError):  # noqa: A001 - the v0.1 name
    """Waiting (for an HTTP answer or for a human) took longer than allowed."""

    default_code = "TIMEOUT"

    def __init__(self, message: str, permission_id: Optional[str] = None) -> None:
        super().__init__(message, details={"permissionId": permission_id} if permission_id else None)
        self.permission_id = permission_id


class PermissionDeniedError(AgentOTPError):
    """The policy or a human denied the request."""

    default_code = "PERMISSION_DENIED"

    def __init__(
        self, message: str, reason: Optional[str] = None, permission_id: Optional[str] = None
    ) -> None:
        super().__init__(message, details={"reason": reason, "permissionId": permission_id})
        self.reason = reason
        self.permission_id = permission_id


class PermissionRevokedError(PermissionDeniedError):
    """The request was revoked (by a human, or by the agent itself) while the SDK waited for the
    decision, or after approval before its token was delivered. A subclass of
    :class:`PermissionDeniedError`, so code that handles "not allowed" also handles it; catch this
    class first to tell the two apart. ``revoked_by`` is ``human:<name>`` or the agent's id."""

    default_code = "PERMISSION_REVOKED"

    def __init__(
        self, message: str, permission_id: Optional[str] = None, revoked_by: Optional[str] = None
    ) -> None:
        super().__init__(message, None, permission_id)
        self.code = self.default_code
        self.revoked_by = revoked_by


class PermissionExpiredError(AgentOTPError):
    """The request expired before it was approved."""

    default_code = "PERMISSION_EXPIRED"

    def __init__(self, message: str, permission_id: Optional[str] = None) -> None:
        super().__init__(message, details={"permissionId": permission_id})
        self.permission_id = permission_id


class InvalidTokenError(AgentOTPError):
    """A token was refused: wrong token, used up, revoked, expired, or outside its scope."""

    default_code = "INVALID_TOKEN"


class TokenUsedError(InvalidTokenError):
    default_code = "TOKEN_USED"


class TokenRevokedError(InvalidTokenError):
    default_code = "TOKEN_REVOKED"


class TokenExpiredError(InvalidTokenError):
    default_code = "TOKEN_EXPIRED"


class ScopeViolationError(InvalidTokenError):
    default_code = "SCOPE_VIOLATION"


class TokenMismatchError(InvalidTokenError):
    """The use named another action or resource than the token's (``ACTION_MISMATCH``,
    ``RESOURCE_MISMATCH``), or other details than the exact ones approved (``DETAILS_MISMATCH``)."""

    default_code = "ACTION_MISMATCH"


_BY_CODE = {
    "VALIDATION_ERROR": ValidationError,
    "UNAUTHORIZED": AuthenticationError,
    "FORBIDDEN": ForbiddenError,
    "NOT_FOUND": NotFoundError,
    "CONFLICT": ConflictError,
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "INTERNAL_ERROR": ServerError,
}
_BY_STATUS = {
    400: ValidationError,
    422: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
}
_TOKEN_ERRORS = {
    "TOKEN_USED": TokenUsedError,
    "TOKEN_REVOKED": TokenRevokedError,
    "TOKEN_EXPIRED": TokenExpiredError,
    "SCOPE_VIOLATION": ScopeViolationError,
    "ACTION_MISMATCH": TokenMismatchError,
    "RESOURCE_MISMATCH": TokenMismatchError,
    "DETAILS_MISMATCH": TokenMismatchError,
}


def error_from_response(
    status: int,
    code: Optional[str],
    message: str,
    details: Optional[Mapping[str, Any]] = None,
    retry_after: Optional[float] = None,
) -> AgentOTPError:
    """The error for an error answer: by the server's code first, then by HTTP status."""
    if code == "RATE_LIMITED" or status == 429:
        return RateLimitError(message, retry_after, code="RATE_LIMITED", status_code=status)
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else AgentOTPError
    return cls(message, code=code, details=details, status_code=status)


def token_error(code: Optional[str], reason: Optional[str]) -> InvalidTokenError:
    """The error for a refused token use (``{"success": false, "code", "reason"}``)."""
    cls = _TOKEN_ERRORS.get(code or "", InvalidTokenError)
    return cls(reason or "the token was refused", code=code)
