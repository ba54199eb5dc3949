"""The blocking client against the real server."""

from __future__ import annotations

import builtins
import socket
import threading
import time

import httpx
import pytest

from agent_otp import (
    AgentOTPClient,
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PendingApproval,
    PermissionDeniedError,
    PermissionExpiredError,
    PermissionRevokedError,
    RateLimitError,
    TokenUsedError,
    ScopeViolationError,
    TimeoutError,
    ValidationError,
)


@pytest.fixture()
def otp(server):
    with AgentOTPClient(server.key, server.url) as c:
        yield c


def test_auto_approve_verify_then_use_once(otp):
    p = otp.request_permission("file.read", resource="/tmp/a")
    assert p.status == "approved" and p.token.startswith("otp_")
    assert "otp_" not in repr(p), "repr never shows the token"
    v = otp.verify_token(p.id, p.token)
    assert v["valid"] is True and v["usesRemaining"] == 1
    # No action_details: consumed, and the answer says agent-otp did not check the scope.
    assert otp.use_token(p.id, p.token) == {"success": True, "usesRemaining": 0, "checked": False}
    again = otp.use_token(p.id, p.token)
    assert again["success"] is False and again["code"] == "TOKEN_USED"
    assert otp.get_permission_status(p.id).status == "used"


def test_human_approval_while_waiting_then_use(otp, server):
    seen: list[PendingApproval] = []

    def pending(info: PendingApproval) -> None:
        seen.append(info)
        server.approve_later(info.permission_id)

    started = time.monotonic()
    p = otp.request_permission(
        "gmail.send",
        resource="email:client@example.com",
        scope={"max_emails": 1},
        context={"reason": "monthly invoice"},
        wait_for_approval=True,
        timeout=30,
        on_pending_approval=pending,
    )
    assert time.monotonic() - started < 5, "the long-poll wakes on the approval"
    assert seen and seen[0].permission_id == p.id
    assert seen[0].approval_url.endswith(f"/requests/{p.id}")
    assert p.status == "approved" and p.token
    assert otp.use_token(p.id, p.token, {"emails": 1, "to": "client@example.com"})["success"] is True
    later = otp.get_permission_status(p.id)
    assert later.token is None and later.raw["tokenIssued"] is True


def test_denied_by_policy_and_by_a_human(otp, server):
    with pytest.raises(PermissionDeniedError) as e:
        otp.request_permission("shell.exec")
    assert "deny-shell" in e.value.reason

    def deny(info: PendingApproval) -> None:
        server.decide(info.permission_id, "deny", {"reason": "not today"})

    with pytest.raises(PermissionDeniedError) as e:
        otp.request_permission("db.drop", wait_for_approval=True, timeout=30, on_pending_approval=deny)
    assert e.value.reason == "not today"


def test_revoked_while_waiting_or_before_the_token_was_read(otp, server):
    started = time.monotonic()
    with pytest.raises(PermissionRevokedError) as e:
        otp.request_permission(
            "db.truncate", wait_for_approval=True, timeout=30,
            on_pending_approval=lambda info: server.approve_later(info.permission_id, verdict="revoke"),
        )
    assert isinstance(e.value, PermissionDeniedError), "handled wherever a denial is"
    assert e.value.code == "PERMISSION_REVOKED" and e.value.permission_id
    assert e.value.revoked_by.startswith("human:")
    assert time.monotonic() - started < 5, "woke on the revocation, did not wait out the timeout"

    # Approved, then revoked before the agent read its token.
    p = otp.request_permission("db.reindex")
    assert p.status == "pending"
    server.decide(p.id, "approve")
    server.decide(p.id, "revoke")
    with pytest.raises(PermissionRevokedError):
        otp.wait_for_permission(p.id, timeout=5)


def test_waiting_after_the_token_went_elsewhere_and_was_used(otp, server):
    p = otp.request_permission("db.export")
    server.decide(p.id, "approve")
    first = otp.get_permission_status(p.id)  # this read gets the token, once
    assert otp.use_token(p.id, first.token)["success"] is True
    with pytest.raises(TokenUsedError):
        otp.wait_for_permission(p.id, timeout=5)


def test_readme_flow(otp, server):
    """The original README's flow in Python: wait, a person approves from the side (finding the
    request in the pending list by its reason), send, use without details; a second use is
    refused."""
    reason = "Sending monthly invoice to client (python)"
    found: list[str] = []

    def human() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            mine = [p for p in server.pending() if p["context"].get("reason") == reason]
            if mine:
                server.decide(mine[0]["id"], "approve")
                found.append(mine[0]["id"])
                return
            time.sleep(0.1)

    threading.Thread(target=human, daemon=True).start()
    printed: list[str] = []
    sent: list[dict] = []
    permission = otp.request_permission(
        "gmail.send",
        resource="email:client@example.com",
        scope={"max_emails": 1, "subject_pattern": "^Invoice.*"},
        context={"reason": reason},
        wait_for_approval=True,
        on_pending_approval=lambda info: printed.append(f"Waiting for approval: {info.approval_url}"),
    )
    if permission.status == "approved":
        sent.append({"to": "client@example.com", "subject": "Invoice #123", "otp_token": permission.token})
        otp.use_token(permission.id, permission.token)

    assert found == [permission.id]
    assert len(printed) == 1 and printed[0].startswith("Waiting for approval: http")
    assert printed[0].endswith(f"/requests/{permission.id}")
    assert sent and sent[0]["otp_token"].startswith("otp_")
    assert otp.get_permission_status(permission.id).status == "used"
    again = otp.use_token(permission.id, permission.token)
    assert (again["success"], again["code"]) == (False, "TOKEN_USED")


def test_expiry_while_waiting(otp):
    with pytest.raises(PermissionExpiredError) as e:
        otp.request_permission("db.vacuum", ttl=30, wait_for_approval=True, timeout=50)
    assert e.value.permission_id


def test_waiting_longer_than_timeout(otp):
    started = time.monotonic()
    with pytest.raises(TimeoutError) as e:
        otp.request_permission("db.backup", wait_for_approval=True, timeout=1.5)
    assert e.value.permission_id
    assert isinstance(e.value, builtins.TimeoutError), "also the built-in TimeoutError"
    assert time.monotonic() - started < 5


def test_wrong_key_and_bad_input(server, otp):
    with AgentOTPClient("ak_wrong", server.url) as bad:
        with pytest.raises(AuthenticationError):
            bad.request_permission("file.read")
    with pytest.raises(ValidationError) as e:
        otp.request_permission("file.read", ttl=5)
    assert e.value.status_code == 400 and "ttl" in e.value.details
    with pytest.raises(NotFoundError):
        otp.get_permission_status("../admin/audit")


def test_key_from_the_environment(server, monkeypatch, tmp_path):
    monkeypatch.delenv("AGENT_OTP_KEY", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text(server.key + "\n")
    monkeypatch.setenv("AGENT_OTP_KEY_FILE", str(key_file))
    monkeypatch.setenv("AGENT_OTP_URL", server.url)
    with AgentOTPClient() as c:
        assert c.request_permission("file.read").status == "approved"
    monkeypatch.delenv("AGENT_OTP_KEY_FILE")
    with pytest.raises(AuthenticationError):
        AgentOTPClient()


def test_permission_context_manager_uses_the_token_before_the_block(otp):
    with otp.permission("email.send", action_details={"recipients": ["a@x.org"]}) as p:
        assert p.scope["max_recipients_count"] == 2
        assert otp.verify_token(p.id, p.token)["valid"] is False, "already used"
    ran = []
    with pytest.raises(ScopeViolationError):
        with otp.permission("email.send", action_details={"recipients": ["a@x", "b@x", "c@x"]}):
            ran.append(1)
    assert ran == []
    assert otp.execute_with_permission(lambda token, scope: token[:4], "file.read") == "otp_"


def test_permission_without_details_consumes(otp, server):
    def approve(info: PendingApproval) -> None:
        server.decide(info.permission_id, "approve")

    ran = []
    with otp.permission("gmail.send", resource="email:client@example.com", scope={"max_emails": 1},
                        timeout=30, on_pending_approval=approve) as p:
        ran.append(p.id)
    assert otp.get_permission_status(p.id).status == "used"
    assert ran == [p.id]
    assert otp.use_token(p.id, p.token)["code"] == "TOKEN_USED"


def test_verify_names_the_grant_and_use_checks_action_and_resource(otp):
    p = otp.request_permission("file.read", resource="/tmp/b")
    v = otp.verify_token(p.id, p.token)
    assert (v["action"], v["resource"], v["agentName"], v["approvedBy"]) == ("file.read", "/tmp/b", "py-agent", "policy")
    assert otp.use_token(p.id, p.token, action="file.write")["code"] == "ACTION_MISMATCH"
    assert otp.use_token(p.id, p.token, action="file.read", resource="/etc/shadow")["code"] == "RESOURCE_MISMATCH"
    assert otp.use_token(p.id, p.token, action="file.read", resource="/tmp/b")["success"] is True


def test_exact_binding_through_permission(otp):
    details = {"amount": 40, "currency": "EUR", "to": "DE89 3704 0044 0532 0130 00"}
    with pytest.raises(ValidationError) as e:
        otp.request_permission("invoice.pay")
    assert "actionDetails" in e.value.details
    with otp.permission("invoice.pay", action_details=details) as p:
        assert otp.verify_token(p.id, p.token)["valid"] is False, "already used, with the bound details"
    q = otp.request_permission("invoice.pay", action_details=details)
    assert otp.use_token(q.id, q.token, {**details, "amount": 41})["code"] == "DETAILS_MISMATCH"
    assert otp.use_token(q.id, q.token, details)["success"] is True


def test_revoke(otp):
    p = otp.request_permission("file.read")
    assert otp.revoke_token(p.id).status == "revoked"
    used = otp.use_token(p.id, p.token)
    assert (used["success"], used["code"]) == (False, "TOKEN_REVOKED")


def _limited(server, retry_after: str, times: int):
    calls = {"n": 0}
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= times:
            return httpx.Response(
                429,
                headers={"Retry-After": retry_after},
                json={"success": False, "error": {"code": "RATE_LIMITED", "message": "slow down"}},
            )
        return real.handle_request(request)

    return httpx.MockTransport(handler), calls


def test_429_is_retried_after_retry_after(server):
    transport, calls = _limited(server, "1", 1)
    c = AgentOTPClient(server.key, server.url)
    c._http = httpx.Client(transport=transport, headers=c._headers)
    started = time.monotonic()
    assert c.request_permission("file.read").status == "approved"
    assert calls["n"] == 2 and time.monotonic() - started >= 0.9

    transport, calls = _limited(server, "3600", 99)
    c._http = httpx.Client(transport=transport, headers=c._headers)
    with pytest.raises(RateLimitError) as e:
        c.request_permission("file.read")
    assert e.value.retry_after == 3600 and calls["n"] == 1


def test_network_errors_are_retried_then_raised():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = AgentOTPClient("ak_x", f"http://127.0.0.1:{port}", retry_attempts=2, retry_delay=0.01)
    calls = {"n": 0}
    real = httpx.HTTPTransport()

    def counting(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return real.handle_request(request)

    c._http = httpx.Client(transport=httpx.MockTransport(counting), headers=c._headers)
    with pytest.raises(NetworkError):
        c.request_permission("file.read")
    assert calls["n"] == 3, "a refused connection is retried even for a POST"
