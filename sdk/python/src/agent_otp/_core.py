"""What the sync and async clients share: settings, URLs, the envelope rule, the retry rule and
the reading of a request's state. No I/O here."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional
from urllib.parse import quote

import httpx

from .errors import (
    AgentOTPError,
    AuthenticationError,
    InvalidTokenError,
    PermissionDeniedError,
    PermissionExpiredError,
    PermissionRevokedError,
    TimeoutError,
    TokenUsedError,
    ValidationError,
    error_from_response,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
#: The server's longest long-poll, in seconds.
MAX_WAIT_SECS = 60


@dataclass
class Permission:
    """A permission request as the server reports it. ``raw`` holds every field sent."""

    id: str
    status: str
    token: Optional[str] = None
    scope: Dict[str, Any] = field(default_factory=dict)
    uses_remaining: Optional[int] = None
    expires_at: Optional[str] = None
    approval_url: Optional[str] = None
    webhook_url: Optional[str] = None
    reason: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "Permission":
        return cls(
            id=str(data.get("id", "")),
            status=str(data.get("status", "")),
            token=data.get("token"),
            scope=dict(data.get("scope") or {}),
            uses_remaining=data.get("usesRemaining"),
            expires_at=data.get("expiresAt"),
            approval_url=data.get("approvalUrl"),
            webhook_url=data.get("webhookUrl"),
            reason=data.get("reason"),
            raw=dict(data),
        )

    def __repr__(self) -> str:  # never print the token
        token = "***" if self.token else None
        return f"Permission(id={self.id!r}, status={self.status!r}, token={token!r})"


@dataclass
class PendingApproval:
    """Given to ``on_pending_approval`` when a request waits for a human."""

    permission_id: str
    approval_url: str
    webhook_url: str
    expires_at: str


@dataclass
class Settings:
    api_key: str
    base_url: str
    timeout: float
    retry_attempts: int
    retry_delay: float
    max_retry_after: float


def settings(
    api_key: Optional[str],
    base_url: Optional[str],
    timeout: float,
    retry_attempts: int,
    retry_delay: float,
    max_retry_after: float,
    key_env: str = "AGENT_OTP_KEY",
    what: str = "API key",
    hint: str = "",
) -> Settings:
    """Resolves the key (argument, ``<key_env>``, ``<key_env>_FILE``) and base URL."""
    key = api_key or os.environ.get(key_env)
    key_file = os.environ.get(f"{key_env}_FILE")
    if not key and key_file:
        key = Path(key_file).read_text().strip()
    if not key:
        raise AuthenticationError(
            f"{what} is required: pass it or set {key_env} / {key_env}_FILE{hint}"
        )
    url = (base_url or os.environ.get("AGENT_OTP_URL") or DEFAULT_BASE_URL).rstrip("/")
    return Settings(key.strip(), url, timeout, retry_attempts, retry_delay, max_retry_after)


def url(base: str, *segments: str) -> str:
    for s in segments:
        if s in ("", ".", ".."):
            raise ValidationError(f"invalid permission id {s!r}", details={"id": "invalid"})
    # Each segment is percent-encoded, so an id cannot walk to another route.
    return base + "/api/v1/" + "/".join(quote(s, safe="") for s in segments)


def request_body(
    action: str,
    resource: Optional[str],
    scope: Optional[Mapping[str, Any]],
    context: Optional[Mapping[str, Any]],
    ttl: Optional[int],
    uses: Optional[int],
    action_details: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"action": action}
    fields = (
        ("resource", resource), ("scope", scope), ("context", context), ("ttl", ttl), ("uses", uses),
        ("actionDetails", action_details),
    )
    for k, v in fields:
        if v is not None:
            body[k] = dict(v) if isinstance(v, Mapping) else v
    return body


def use_body(
    token: str,
    action_details: Optional[Mapping[str, Any]],
    action: Optional[str] = None,
    resource: Optional[str] = None,
) -> Dict[str, Any]:
    body: Dict[str, Any] = {"token": token}
    if action is not None:
        body["action"] = action
    if resource is not None:
        body["resource"] = resource
    if action_details is not None:
        body["actionDetails"] = dict(action_details)
    return body


def retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def read_envelope(response: httpx.Response) -> Any:
    """The envelope's ``data``, or the typed error: any non-2xx status or ``success`` that is
    not ``true`` is an error (the v0.1 rule)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        body = None
    if response.is_success and isinstance(body, dict) and body.get("success") is True:
        return body.get("data")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = error.get("message") or f"HTTP {response.status_code}: {response.text[:200]}"
    raise error_from_response(
        response.status_code, error.get("code"), message, error.get("details"), retry_after(response)
    )


def is_connect_error(exc: Exception) -> bool:
    """Nothing reached the server: safe to retry any call."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def denied(p: Permission) -> PermissionDeniedError:
    return PermissionDeniedError(p.reason or "permission denied", p.reason, p.id)


def settle(p: Permission, timed_out: bool) -> Optional[Permission]:
    """After a wait: the approved permission, a raised error, or None to keep waiting."""
    if p.status == "approved":
        if not p.token:
            raise InvalidTokenError(
                "approved, but its token was already delivered to an earlier read",
                code="TOKEN_ALREADY_ISSUED",
            )
        return p
    if p.status == "denied":
        raise denied(p)
    if p.status == "expired":
        raise PermissionExpiredError("permission request expired", p.id)
    if p.status == "revoked":
        by = p.raw.get("decidedBy")
        raise PermissionRevokedError(
            "permission request was revoked" + (f" by {by}" if by else ""), p.id, by
        )
    if p.status == "pending":
        if timed_out:
            raise TimeoutError("waiting for approval timed out", p.id)
        return None
    if p.status == "used":
        # Approved, its token delivered to another read, and used there.
        raise TokenUsedError("the permission was approved and its token already used")
    raise AgentOTPError(f"unexpected status {p.status!r} while waiting", code="UNEXPECTED_STATUS")


def wait_secs(deadline: float, now: float) -> int:
    left = deadline - now
    return max(0, min(MAX_WAIT_SECS, int(left) + (1 if left % 1 else 0)))

