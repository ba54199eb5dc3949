"""The asyncio client against the real server (each test runs its own event loop)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agent_otp import (
    AsyncAgentOTPClient,
    AuthenticationError,
    PendingApproval,
    PermissionDeniedError,
    PermissionRevokedError,
    ScopeViolationError,
    TimeoutError,
)


def test_async_auto_approve_and_use(server):
    async def main():
        async with AsyncAgentOTPClient(server.key, server.url) as otp:
            p = await otp.request_permission("file.read")
            assert p.status == "approved"
            assert (await otp.use_token(p.id, p.token))["success"] is True
            assert (await otp.get_permission_status(p.id)).status == "used"

    asyncio.run(main())


def test_async_human_approval_while_waiting(server):
    async def main():
        async with AsyncAgentOTPClient(server.key, server.url) as otp, httpx.AsyncClient() as admin:

            async def approve(info: PendingApproval) -> None:
                async def later():
                    await asyncio.sleep(0.3)
                    r = await admin.post(
                        f"{server.url}/api/v1/admin/permissions/{info.permission_id}/approve",
                        headers={"Authorization": f"Bearer {server.admin}"},
                        json={},
                    )
                    assert r.status_code == 200, r.text

                asyncio.get_running_loop().create_task(later())

            p = await otp.request_permission(
                "gmail.send", wait_for_approval=True, timeout=30, on_pending_approval=approve
            )
            assert p.status == "approved" and p.token
            async with otp.permission("email.send", action_details={"recipients": ["a@x"]}) as q:
                assert q.status == "approved"
            assert (await otp.use_token(p.id, p.token))["success"] is True
            with pytest.raises(ScopeViolationError):
                async with otp.permission("email.send", action_details={"recipients": ["a", "b", "c"]}):
                    raise AssertionError("must not run")

    asyncio.run(main())


def test_async_denied_timeout_and_wrong_key(server):
    async def main():
        async with AsyncAgentOTPClient(server.key, server.url) as otp:
            with pytest.raises(PermissionDeniedError):
                await otp.request_permission("shell.rm")
            with pytest.raises(TimeoutError):
                await otp.request_permission("db.backup", wait_for_approval=True, timeout=1)
        async with AsyncAgentOTPClient("ak_wrong", server.url) as bad:
            with pytest.raises(AuthenticationError):
                await bad.request_permission("file.read")

    asyncio.run(main())


def test_async_revoked_while_waiting(server):
    async def main():
        async with AsyncAgentOTPClient(server.key, server.url) as otp:

            async def revoke_soon(info: PendingApproval) -> None:
                async def later():
                    await asyncio.sleep(0.3)
                    await otp.revoke_token(info.permission_id)  # the agent's other process

                asyncio.get_running_loop().create_task(later())

            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(PermissionRevokedError) as e:
                await otp.request_permission(
                    "db.truncate", wait_for_approval=True, timeout=30, on_pending_approval=revoke_soon
                )
            assert loop.time() - started < 5, "woke on the revocation, not at the timeout"
            assert e.value.code == "PERMISSION_REVOKED" and e.value.permission_id

    asyncio.run(main())
