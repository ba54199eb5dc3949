"""agent-otp SDK: ask a self-hosted agent-otp server for permission before a sensitive action,
wait for a human if the policy says so, and use the short-lived token once.

    from agent_otp import AgentOTPClient

    otp = AgentOTPClient()  # AGENT_OTP_URL, AGENT_OTP_KEY
    with otp.permission("email.send", resource="client@example.com",
                        action_details={"recipients": ["client@example.com"]}) as p:
        send_the_email()

The protected service that receives the token checks it itself with :class:`ServiceClient`
(``with svc.guard(token, action=..., resource=..., action_details=...):``).

LangChain and CrewAI wrappers live in :mod:`agent_otp.langchain` and :mod:`agent_otp.crewai`
(install the ``langchain`` or ``crewai`` extra); importing this package never imports them.
"""

from ._core import PendingApproval, Permission
from .client import AgentOTPClient, AsyncAgentOTPClient
from .service import AsyncServiceClient, ServiceClient, TokenInfo
from .errors import (
    AgentOTPError,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidTokenError,
    NetworkError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PermissionExpiredError,
    PermissionRevokedError,
    RateLimitError,
    ScopeViolationError,
    ServerError,
    TimeoutError,
    TokenExpiredError,
    TokenMismatchError,
    TokenRevokedError,
    TokenUsedError,
    ValidationError,
)

__version__ = "0.2.0"

__all__ = [
    "AgentOTPClient",
    "AsyncAgentOTPClient",
    "ServiceClient",
    "AsyncServiceClient",
    "TokenInfo",
    "Permission",
    "PendingApproval",
    "AgentOTPError",
    "AuthenticationError",
    "ConflictError",
    "ForbiddenError",
    "InvalidTokenError",
    "NetworkError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PermissionExpiredError",
    "PermissionRevokedError",
    "RateLimitError",
    "ScopeViolationError",
    "ServerError",
    "TimeoutError",
    "TokenExpiredError",
    "TokenMismatchError",
    "TokenRevokedError",
    "TokenUsedError",
    "ValidationError",
]
