"""The clients: :class:`AgentOTPClient` (blocking) and :class:`AsyncAgentOTPClient` (asyncio),
with the same methods. Waiting for a human uses the server's long-poll. A refused connection is
retried for every call, other transport failures only for reads (repeating a ``use`` whose answer
was lost could act twice), and a 429 after its ``Retry-After``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, Mapping, Optional, TypeVar

import httpx

from . import _core
from ._core import PendingApproval, Permission
from .errors import NetworkError, PermissionDeniedError, RateLimitError, TimeoutError, token_error

T = TypeVar("T")
S = TypeVar("S", bound="_SyncBase")
A = TypeVar("A", bound="_AsyncBase")
JSON = Mapping[str, Any]


class _Base:
    #: Where the key comes from when it is not passed, and how to name it in an error.
    _key_env = "AGENT_OTP_KEY"
    _key_what = "API key (api_key)"
    _key_hint = ""

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retry_attempts: int = 3,
        retry_delay: float = 1.0,
        max_retry_after: float = 60.0,
    ) -> None:
        self._s = _core.settings(
            api_key, base_url, timeout, retry_attempts, retry_delay, max_retry_after,
            key_env=self._key_env, what=self._key_what, hint=self._key_hint,
        )
        self._headers = {"Authorization": f"Bearer {self._s.api_key}", "Content-Type": "application/json"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._s.base_url!r})"

    def _pause(self, exc: Exception, attempt: int, idempotent: bool) -> Optional[float]:
        """Seconds to wait before trying again, or None to give up (and raise)."""
        if attempt >= self._s.retry_attempts:
            return None
        if isinstance(exc, RateLimitError):
            pause = exc.retry_after if exc.retry_after is not None else self._s.retry_delay
            return pause if pause <= self._s.max_retry_after else None
        if isinstance(exc, httpx.TransportError) and (idempotent or _core.is_connect_error(exc)):
            return self._s.retry_delay * (2**attempt)
        return None

    def _fail(self, exc: Exception) -> Exception:
        if isinstance(exc, httpx.TimeoutException) and not _core.is_connect_error(exc):
            return TimeoutError(f"no answer from the server: {exc}")
        if isinstance(exc, httpx.TransportError):
            return NetworkError(f"cannot reach {self._s.base_url}: {exc!r}")
        return exc

    @staticmethod
    def _pending_info(p: Permission) -> Optional[PendingApproval]:
        if p.approval_url and p.webhook_url:
            return PendingApproval(p.id, p.approval_url, p.webhook_url, p.expires_at or "")
        return None


class _SyncBase(_Base):
    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, **kw: Any) -> None:
        super().__init__(api_key, base_url, **kw)
        self._http = httpx.Client(headers=self._headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self: "S") -> "S":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, *segments: str, body: Optional[JSON] = None, wait: int = 0) -> Any:
        target = _core.url(self._s.base_url, *segments)
        params = {"wait": wait} if wait else None
        idempotent = method == "GET"
        attempt = 0
        while True:
            try:
                resp = self._http.request(
                    method, target, params=params, json=body, timeout=self._s.timeout + wait
                )
                return _core.read_envelope(resp)
            except (httpx.TransportError, RateLimitError) as exc:
                pause = self._pause(exc, attempt, idempotent)
                if pause is None:
                    raise self._fail(exc) from exc
                time.sleep(pause)
                attempt += 1


class AgentOTPClient(_SyncBase):
    """A blocking client for one agent (one key) on one server.

    The key comes from ``api_key`` or ``AGENT_OTP_KEY`` / ``AGENT_OTP_KEY_FILE``; the server from
    ``base_url`` or ``AGENT_OTP_URL`` (default ``http://127.0.0.1:8787``).
    """

    def request_permission(
        self,
        action: str,
        resource: Optional[str] = None,
        scope: Optional[JSON] = None,
        context: Optional[JSON] = None,
        ttl: Optional[int] = None,
        uses: Optional[int] = None,
        *,
        action_details: Optional[JSON] = None,
        wait_for_approval: bool = False,
        timeout: float = 60.0,
        on_pending_approval: Optional[Callable[[PendingApproval], None]] = None,
    ) -> Permission:
        """Asks for a permission. Approved: returned with its token. Denied: raises
        :class:`PermissionDeniedError`. Pending: returned as is, or with ``wait_for_approval``
        waits until a human decides: approved (returned, with its token), denied
        (:class:`PermissionDeniedError`), revoked (:class:`PermissionRevokedError`), expired
        (:class:`PermissionExpiredError`), or ``timeout`` seconds pass (:class:`TimeoutError`).

        ``action_details``: the exact details the agent will perform, when it knows them; the
        human sees them in full and the token is bound to them (every use must present the same).
        A policy rule with ``bind: exact`` requires them."""
        body = _core.request_body(action, resource, scope, context, ttl, uses, action_details)
        p = Permission.from_wire(self._call("POST", "permissions", "request", body=body))
        if p.status == "denied":
            raise _core.denied(p)
        if p.status != "pending" or not wait_for_approval:
            return p
        info = self._pending_info(p)
        if on_pending_approval and info:
            on_pending_approval(info)
        return self.wait_for_permission(p.id, timeout=timeout)

    def wait_for_permission(self, permission_id: str, timeout: float = 60.0) -> Permission:
        """Long-polls until the request is decided; returns it approved, with its token. Raises
        :class:`PermissionDeniedError`, :class:`PermissionRevokedError` (revoked before its token
        reached this read), :class:`PermissionExpiredError`, :class:`TokenUsedError` (the token
        went to an earlier read and was used) or :class:`TimeoutError` (still pending)."""
        deadline = time.monotonic() + timeout
        while True:
            p = self.get_permission_status(permission_id, wait=_core.wait_secs(deadline, time.monotonic()))
            done = _core.settle(p, timed_out=time.monotonic() >= deadline)
            if done:
                return done

    def get_permission_status(self, permission_id: str, wait: int = 0) -> Permission:
        """Reads a request; with ``wait`` (seconds, ≤ 60) the server answers once it is decided."""
        wait = max(0, min(_core.MAX_WAIT_SECS, int(wait)))
        return Permission.from_wire(self._call("GET", "permissions", permission_id, wait=wait))

    def verify_token(self, permission_id: str, token: str) -> Dict[str, Any]:
        """``{"valid": true, "scope", "usesRemaining", "expiresAt"}`` or ``{"valid": false, "reason"}``."""
        return self._call("POST", "permissions", permission_id, "verify", body={"token": token})

    def use_token(
        self,
        permission_id: str,
        token: str,
        action_details: Optional[JSON] = None,
        *,
        action: Optional[str] = None,
        resource: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Uses the token once: ``{"success": True, "usesRemaining", "checked"}`` or
        ``{"success": False, "code", "reason", "usesRemaining"}`` (nothing consumed).
        ``action_details`` are checked against the scope; without them the use is recorded
        unchecked (``checked: False``). ``action``/``resource``, when given, must be the token's."""
        body = _core.use_body(token, action_details, action, resource)
        return self._call("POST", "permissions", permission_id, "use", body=body)

    def revoke_token(self, permission_id: str) -> Permission:
        """Revokes a request; its token stops working at once."""
        return Permission.from_wire(self._call("POST", "permissions", permission_id, "revoke"))

    @contextlib.contextmanager
    def permission(
        self,
        action: str,
        resource: Optional[str] = None,
        scope: Optional[JSON] = None,
        context: Optional[JSON] = None,
        ttl: Optional[int] = None,
        uses: Optional[int] = None,
        *,
        action_details: Optional[JSON] = None,
        wait_for_approval: bool = True,
        timeout: float = 300.0,
        on_pending_approval: Optional[Callable[[PendingApproval], None]] = None,
    ) -> Iterator[Permission]:
        """``with otp.permission("email.send", ...) as p:`` — asks (waiting for a human), uses the
        token once, and only then runs the block.

        Order: the token is used *before* the block runs. The use is the server's atomic gate (a
        1-use token gives exactly one success however many callers race) and where a revoked,
        expired or out-of-scope token is refused; a use after the block could only report a
        refusal once the email is already sent. The price: if the block fails after the use, the
        token is spent and a retry needs a new request (fail closed).

        Anything but a successful use raises before the block runs: a refused use raises the
        token's error (:class:`InvalidTokenError` or a subclass such as
        :class:`ScopeViolationError`); a denial, revocation, expiry or timeout raises as
        :meth:`request_permission` does; a lost answer raises :class:`NetworkError` (the use is
        never repeated). ``action_details`` go with the request (the human sees them; the token is
        bound to them) and with the use (checked against the scope); without them the use is
        recorded unchecked (strict checks belong to the protected service)."""
        p = self.request_permission(
            action, resource, scope, context, ttl, uses, action_details=action_details,
            wait_for_approval=wait_for_approval, timeout=timeout, on_pending_approval=on_pending_approval,
        )
        _ensure_approved(p)
        used = self.use_token(p.id, p.token or "", action_details)
        _ensure_used(used)
        yield p

    def execute_with_permission(self, operation: Callable[[str, Dict[str, Any]], T], action: str, **kw: Any) -> T:
        """Asks, uses the token, then runs ``operation(token, scope)`` (the v0.1 helper, in the
        safe order)."""
        with self.permission(action, **kw) as p:
            return operation(p.token or "", p.scope)


class _AsyncBase(_Base):
    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, **kw: Any) -> None:
        super().__init__(api_key, base_url, **kw)
        self._http = httpx.AsyncClient(headers=self._headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self: "A") -> "A":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, *segments: str, body: Optional[JSON] = None, wait: int = 0) -> Any:
        target = _core.url(self._s.base_url, *segments)
        params = {"wait": wait} if wait else None
        idempotent = method == "GET"
        attempt = 0
        while True:
            try:
                resp = await self._http.request(
                    method, target, params=params, json=body, timeout=self._s.timeout + wait
                )
                return _core.read_envelope(resp)
            except (httpx.TransportError, RateLimitError) as exc:
                pause = self._pause(exc, attempt, idempotent)
                if pause is None:
                    raise self._fail(exc) from exc
                await asyncio.sleep(pause)
                attempt += 1


class AsyncAgentOTPClient(_AsyncBase):
    """The asyncio twin of :class:`AgentOTPClient`: the same methods, awaited."""

    async def request_permission(
        self,
        action: str,
        resource: Optional[str] = None,
        scope: Optional[JSON] = None,
        context: Optional[JSON] = None,
        ttl: Optional[int] = None,
        uses: Optional[int] = None,
        *,
        action_details: Optional[JSON] = None,
        wait_for_approval: bool = False,
        timeout: float = 60.0,
        on_pending_approval: Optional[Callable[[PendingApproval], Any]] = None,
    ) -> Permission:
        """See :meth:`AgentOTPClient.request_permission`. ``on_pending_approval`` may be async."""
        body = _core.request_body(action, resource, scope, context, ttl, uses, action_details)
        p = Permission.from_wire(await self._call("POST", "permissions", "request", body=body))
        if p.status == "denied":
            raise _core.denied(p)
        if p.status != "pending" or not wait_for_approval:
            return p
        info = self._pending_info(p)
        if on_pending_approval and info:
            result = on_pending_approval(info)
            if inspect.isawaitable(result):
                await result
        return await self.wait_for_permission(p.id, timeout=timeout)

    async def wait_for_permission(self, permission_id: str, timeout: float = 60.0) -> Permission:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            p = await self.get_permission_status(permission_id, wait=_core.wait_secs(deadline, loop.time()))
            done = _core.settle(p, timed_out=loop.time() >= deadline)
            if done:
                return done

    async def get_permission_status(self, permission_id: str, wait: int = 0) -> Permission:
        wait = max(0, min(_core.MAX_WAIT_SECS, int(wait)))
        return Permission.from_wire(await self._call("GET", "permissions", permission_id, wait=wait))

    async def verify_token(self, permission_id: str, token: str) -> Dict[str, Any]:
        return await self._call("POST", "permissions", permission_id, "verify", body={"token": token})

    async def use_token(
        self,
        permission_id: str,
        token: str,
        action_details: Optional[JSON] = None,
        *,
        action: Optional[str] = None,
        resource: Optional[str] = None,
    ) -> Dict[str, Any]:
        body = _core.use_body(token, action_details, action, resource)
        return await self._call("POST", "permissions", permission_id, "use", body=body)

    async def revoke_token(self, permission_id: str) -> Permission:
        return Permission.from_wire(await self._call("POST", "permissions", permission_id, "revoke"))

    @contextlib.asynccontextmanager
    async def permission(
        self,
        action: str,
        resource: Optional[str] = None,
        scope: Optional[JSON] = None,
        context: Optional[JSON] = None,
        ttl: Optional[int] = None,
        uses: Optional[int] = None,
        *,
        action_details: Optional[JSON] = None,
        wait_for_approval: bool = True,
        timeout: float = 300.0,
        on_pending_approval: Optional[Callable[[PendingApproval], Any]] = None,
    ) -> AsyncIterator[Permission]:
        """``async with otp.permission(...) as p:`` — see :meth:`AgentOTPClient.permission`."""
        p = await self.request_permission(
            action, resource, scope, context, ttl, uses, action_details=action_details,
            wait_for_approval=wait_for_approval, timeout=timeout, on_pending_approval=on_pending_approval,
        )
        _ensure_approved(p)
        used = await self.use_token(p.id, p.token or "", action_details)
        _ensure_used(used)
        yield p

    async def execute_with_permission(
        self, operation: Callable[[str, Dict[str, Any]], Awaitable[T]], action: str, **kw: Any
    ) -> T:
        async with self.permission(action, **kw) as p:
            return await operation(p.token or "", p.scope)


def _ensure_used(used: Any) -> None:
    """Anything but an explicit ``success: true`` is a refusal: never run the operation on doubt."""
    if not isinstance(used, Mapping) or used.get("success") is not True:
        used = used if isinstance(used, Mapping) else {}
        raise token_error(used.get("code"), used.get("reason"))


def _ensure_approved(p: Permission) -> None:
    if p.status != "approved" or not p.token:
        raise PermissionDeniedError(f"permission not approved (status {p.status})", p.reason, p.id)
