"""ServiceClient / AsyncServiceClient (the protected service's side) against the real server,
with a service key from ``agent-otp service create mailer --actions 'gmail.*'``; the original
README's ``send_email(otp_token=...)`` done the way docs/services.md shows it."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from agent_otp import (
    AgentOTPClient,
    AsyncServiceClient,
    AuthenticationError,
    ForbiddenError,
    InvalidTokenError,
    PendingApproval,
    ScopeViolationError,
    ServiceClient,
    TokenMismatchError,
    TokenUsedError,
    ValidationError,
)


@pytest.fixture(scope="module")
def mailer_key(server):
    return server.service("py-mailer", "gmail.*")


@pytest.fixture()
def agent(server):
    with AgentOTPClient(server.key, server.url) as c:
        yield c


@pytest.fixture()
def svc(server, mailer_key):
    with ServiceClient(mailer_key, server.url) as c:
        yield c


def approved_invoice(agent, server, to="client@example.com"):
    def approve(info: PendingApproval) -> None:
        server.decide(info.permission_id, "approve")

    p = agent.request_permission(
        "gmail.send",
        resource=f"email:{to}",
        scope={"max_emails": 1, "subject_pattern": "^Invoice.*"},
        context={"reason": "Sending monthly invoice to client"},
        wait_for_approval=True,
        timeout=30,
        on_pending_approval=approve,
    )
    assert p.status == "approved" and p.token
    return p


def test_docs_send_email_guarded_by_the_service(agent, server, svc):
    outbox: list[dict] = []

    # ---- as in docs/services.md ----
    otp = svc  # ServiceClient()  (AGENT_OTP_URL, AGENT_OTP_SERVICE_KEY)

    def send_email(to: str, subject: str, body: str = "", otp_token: str | None = None) -> None:
        with otp.guard(otp_token, action="gmail.send", resource=f"email:{to}",
                       action_details={"emails": 1, "to": to, "subject": subject}):
            outbox.append({"to": to, "subject": subject})  # smtp.send(...)
    # ---- end ----

    p = approved_invoice(agent, server)
    send_email("client@example.com", "Invoice #123", otp_token=p.token)
    assert outbox == [{"to": "client@example.com", "subject": "Invoice #123"}]
    assert agent.get_permission_status(p.id).status == "used"
    with pytest.raises(TokenUsedError):
        send_email("client@example.com", "Invoice #123", otp_token=p.token)

    fresh = approved_invoice(agent, server)
    with pytest.raises(ScopeViolationError):
        send_email("client@example.com", "Password reset", otp_token=fresh.token)
    with pytest.raises(TokenMismatchError) as e:
        send_email("boss@example.com", "Invoice #123", otp_token=fresh.token)
    assert e.value.code == "RESOURCE_MISMATCH"
    with pytest.raises(InvalidTokenError) as e:
        send_email("client@example.com", "Invoice #124")
    assert e.value.code == "TOKEN_MISSING"
    assert len(outbox) == 1
    send_email("client@example.com", "Invoice #124", otp_token=fresh.token)
    assert len(outbox) == 2


def test_introspect_and_use(agent, server, svc):
    p = approved_invoice(agent, server)
    info = svc.introspect(p.token)
    assert info.active and info.id == p.id
    assert (info.action, info.resource, info.agent_name) == ("gmail.send", "email:client@example.com", "py-agent")
    assert info.approved_by.startswith("human:") and info.uses_remaining == 1
    assert info.scope == {"max_emails": 1, "subject_pattern": "^Invoice.*"}

    details = {"emails": 1, "to": "client@example.com", "subject": "Invoice #7"}
    wrong = svc.use_token(p.token, action="gmail.delete", action_details=details)
    assert (wrong["success"], wrong["code"], wrong["usesRemaining"]) == (False, "ACTION_MISMATCH", 1)
    ok = svc.use_token(p.token, action="gmail.send", resource="email:client@example.com", action_details=details)
    assert ok == {"success": True, "usesRemaining": 0, "checked": True}
    gone = svc.introspect(p.token)
    assert gone.active is False and gone.reason

    unknown = svc.introspect("otp_" + "x" * 40)
    foreign = svc.introspect(agent.request_permission("file.read").token)
    assert unknown.active is False and foreign.active is False
    assert sorted(unknown.raw) == sorted(foreign.raw), "another service's token looks unknown"


def test_concurrent_guards_run_once(agent, server, svc):
    p = approved_invoice(agent, server)
    ran: list[int] = []

    def attempt() -> str:
        try:
            with svc.guard(p.token, action="gmail.send", resource="email:client@example.com",
                           action_details={"emails": 1, "to": "client@example.com", "subject": "Invoice"}):
                ran.append(1)
            return "ran"
        except TokenUsedError:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(8)))
    assert sorted(outcomes) == ["ran"] + ["refused"] * 7
    assert ran == [1]


def test_keys_stay_on_their_side(agent, server, svc, mailer_key):
    p = approved_invoice(agent, server)
    for wrong in (server.key, server.admin):
        with ServiceClient(wrong, server.url) as c, pytest.raises((AuthenticationError, ForbiddenError)):
            c.introspect(p.token)
    with AgentOTPClient(mailer_key, server.url) as as_agent, pytest.raises((AuthenticationError, ForbiddenError)):
        as_agent.request_permission("gmail.send")
    assert svc.introspect(p.token).active, "none of that touched the token"


def test_service_key_from_the_environment(server, mailer_key, monkeypatch):
    monkeypatch.setenv("AGENT_OTP_SERVICE_KEY", mailer_key)
    monkeypatch.setenv("AGENT_OTP_URL", server.url)
    with ServiceClient() as c:
        assert c.introspect("otp_" + "y" * 40).active is False
    monkeypatch.delenv("AGENT_OTP_SERVICE_KEY")
    with pytest.raises(AuthenticationError) as e:
        ServiceClient()
    assert "service create" in str(e.value)


def test_guard_needs_action_and_real_details_before_asking():
    # Nothing listens on port 9: any request would fail with NetworkError, not these.
    with ServiceClient("sk_unused", "http://127.0.0.1:9", retry_attempts=0) as c:
        with pytest.raises(ValidationError):
            with c.guard("otp_x", action="gmail.send", action_details=None):  # type: ignore[arg-type]
                raise AssertionError("must not run")
        with pytest.raises(ValidationError):
            with c.guard("otp_x", action="", action_details={}):
                raise AssertionError("must not run")
        with pytest.raises(InvalidTokenError) as e:
            with c.guard(None, action="gmail.send", action_details={}):
                raise AssertionError("must not run")
        assert e.value.code == "TOKEN_MISSING"


def test_async_guard(agent, server, mailer_key):
    p = approved_invoice(agent, server)

    async def main():
        async with AsyncServiceClient(mailer_key, server.url) as svc:
            assert (await svc.introspect(p.token)).active
            with pytest.raises(ScopeViolationError):
                async with svc.guard(p.token, action="gmail.send", resource="email:client@example.com",
                                     action_details={"emails": 2, "to": "client@example.com", "subject": "Invoice"}):
                    raise AssertionError("must not run")
            async with svc.guard(p.token, action="gmail.send", resource="email:client@example.com",
                                 action_details={"emails": 1, "to": "client@example.com", "subject": "Invoice"}) as use:
                assert use == {"success": True, "usesRemaining": 0, "checked": True}
            with pytest.raises(TokenUsedError):
                async with svc.guard(p.token, action="gmail.send", resource="email:client@example.com",
                                     action_details={"emails": 1, "to": "client@example.com", "subject": "Invoice"}):
                    raise AssertionError("must not run")

    asyncio.run(main())
