"""The protected service's side: :class:`ServiceClient` (blocking) and
:class:`AsyncServiceClient` (asyncio). The service that really sends the email (or moves the
money) receives an ``otp_…`` token from the agent and checks it itself, with its own service key
(``agent-otp service create NAME --actions 'gmail.*'``) and the details of what it really does.

    svc = ServiceClient()  # AGENT_OTP_URL, AGENT_OTP_SERVICE_KEY
    with svc.guard(otp_token, action="gmail.send", resource=f"email:{to}",
                   action_details={"emails": 1, "to": to, "subject": subject}):
        smtp.send(...)      # runs only when agent-otp accepted this use
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, Iterator, Mapping, Optional

from . import _core
from .client import JSON, _AsyncBase, _SyncBase, _ensure_used
from .errors import InvalidTokenError, ValidationError

_HINT = " (made by `agent-otp service create NAME --actions 'gmail.*'`)"


@dataclass
class TokenInfo:
    """What introspection says of a token. ``active`` is False for an unknown token, one for
    another service's action, expired, used or revoked alike; ``reason`` says which. ``raw`` holds
    every field sent."""

    active: bool
    reason: Optional[str] = None
    id: Optional[str] = None
    action: Optional[str] = None
    resource: Optional[str] = None
    agent_id: Optional[str] = None
    agent_name: Optional[str] = None
    approved_by: Optional[str] = None
    scope: Dict[str, Any] = field(default_factory=dict)
    uses_remaining: Optional[int] = None
    expires_at: Optional[str] = None
    require_action_details: bool = False
    details_digest: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "TokenInfo":
        return cls(
            active=data.get("active") is True,
            reason=data.get("reason"),
            id=data.get("id"),
            action=data.get("action"),
            resource=data.get("resource"),
            agent_id=data.get("agentId"),
            agent_name=data.get("agentName"),
            approved_by=data.get("approvedBy"),
            scope=dict(data.get("scope") or {}),
            uses_remaining=data.get("usesRemaining"),
            expires_at=data.get("expiresAt"),
            require_action_details=data.get("requireActionDetails") is True,
            details_digest=data.get("detailsDigest"),
            raw=dict(data),
        )


def _token(token: Optional[str]) -> str:
    if not isinstance(token, str) or not token:
        raise InvalidTokenError("no agent-otp token was given", code="TOKEN_MISSING")
    return token


def _use_body(
    token: Optional[str], action: Optional[str], resource: Optional[str], action_details: Optional[JSON]
) -> Dict[str, Any]:
    return _core.use_body(_token(token), action_details, action, resource)


def _guard_body(
    token: Optional[str], action: str, resource: Optional[str], action_details: JSON
) -> Dict[str, Any]:
    if not action:
        raise ValidationError("guard needs the action being performed", details={"action": "required"})
    if not isinstance(action_details, Mapping):
        raise ValidationError(
            "guard needs the real action_details (a mapping; {} when there are none)",
            details={"actionDetails": "required"},
        )
    return _use_body(token, action, resource, action_details)


def _accepted(used: Any) -> Dict[str, Any]:
    _ensure_used(used)
    if used.get("checked") is not True:
        # Details were sent, so the server must have checked them; anything else is not a yes.
        raise InvalidTokenError("the use was recorded but not checked against the scope", code="NOT_CHECKED")
    return dict(used)


class ServiceClient(_SyncBase):
    """A blocking client for one protected service (one service key) on one server.

    The key comes from ``service_key`` or ``AGENT_OTP_SERVICE_KEY`` /
    ``AGENT_OTP_SERVICE_KEY_FILE``; the server from ``base_url`` or ``AGENT_OTP_URL``.
    """

    _key_env = "AGENT_OTP_SERVICE_KEY"
    _key_what = "service key (service_key)"
    _key_hint = _HINT

    def __init__(self, service_key: Optional[str] = None, base_url: Optional[str] = None, **kw: Any) -> None:
        super().__init__(service_key, base_url, **kw)

    def introspect(self, token: str) -> TokenInfo:
        """What a token allows, without consuming it. For showing or logging; the decision to act
        is :meth:`use_token` (or :meth:`guard`), which is atomic."""
        return TokenInfo.from_wire(self._call("POST", "tokens", "introspect", body={"token": _token(token)}))

    def use_token(
        self,
        token: str,
        *,
        action: str,
        resource: Optional[str] = None,
        action_details: Optional[JSON] = None,
    ) -> Dict[str, Any]:
        """Uses the token once, atomically: ``{"success": True, "usesRemaining", "checked"}`` or
        ``{"success": False, "code", "reason", "usesRemaining"}`` (nothing consumed). ``action``
        (required: the service says what it performs) and ``resource`` are compared with the
        token's; ``action_details`` (what you really do)
        are checked against the scope; without them the use is recorded unchecked. Never
        repeated when its answer is lost (:class:`NetworkError`)."""
        return self._call("POST", "tokens", "use", body=_use_body(token, action, resource, action_details))

    @contextlib.contextmanager
    def guard(
        self,
        token: Optional[str],
        *,
        action: str,
        resource: Optional[str] = None,
        action_details: JSON,
    ) -> Iterator[Dict[str, Any]]:
        """``with svc.guard(token, action=..., resource=..., action_details=...) as use:`` — uses
        the token for exactly this action, resource and these real details, and runs the block
        only when agent-otp accepted the use (checked against the scope). Otherwise raises before
        the block: the token's error (:class:`InvalidTokenError` or a subclass such as
        :class:`ScopeViolationError`, :class:`TokenMismatchError`, :class:`TokenUsedError`), or
        ``TOKEN_MISSING`` without asking the server. The use comes first (it is the atomic gate);
        if the block fails, the token is spent."""
        body = _guard_body(token, action, resource, action_details)
        yield _accepted(self._call("POST", "tokens", "use", body=body))


class AsyncServiceClient(_AsyncBase):
    """The asyncio twin of :class:`ServiceClient`: the same methods, awaited."""

    _key_env = "AGENT_OTP_SERVICE_KEY"
    _key_what = "service key (service_key)"
    _key_hint = _HINT

    def __init__(self, service_key: Optional[str] = None, base_url: Optional[str] = None, **kw: Any) -> None:
        super().__init__(service_key, base_url, **kw)

    async def introspect(self, token: str) -> TokenInfo:
        data = await self._call("POST", "tokens", "introspect", body={"token": _token(token)})
        return TokenInfo.from_wire(data)

    async def use_token(
        self,
        token: str,
        *,
        action: str,
        resource: Optional[str] = None,
        action_details: Optional[JSON] = None,
    ) -> Dict[str, Any]:
        return await self._call("POST", "tokens", "use", body=_use_body(token, action, resource, action_details))

    @contextlib.asynccontextmanager
    async def guard(
        self,
        token: Optional[str],
        *,
        action: str,
        resource: Optional[str] = None,
        action_details: JSON,
    ) -> AsyncIterator[Dict[str, Any]]:
        """``async with svc.guard(...) as use:`` — see :meth:`ServiceClient.guard`."""
        body = _guard_body(token, action, resource, action_details)
        yield _accepted(await self._call("POST", "tokens", "use", body=body))
