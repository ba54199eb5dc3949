/**
 * AgentOTPService (the protected service's side) against the real server: a service key made
 * by `agent-otp service create mailer --actions 'gmail.*'` introspects and uses tokens by the
 * token alone, with the real details; the original README's `sendEmail({ otpToken })` done the
 * way docs/services.md shows it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  AgentOTPClient,
  AgentOTPService,
  AuthenticationError,
  ForbiddenError,
  InvalidTokenError,
  ScopeViolationError,
  TokenMismatchError,
  TokenRevokedError,
  TokenUsedError,
  type AgentOTPError,
} from '../src/index.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer;
let agent: AgentOTPClient;
let mailer: AgentOTPService;

/** What the agent holds after a human approved `gmail.send` as the original README asks. */
async function approvedInvoiceToken(to = 'client@example.com'): Promise<{ id: string; token: string }> {
  const p = await agent.requestPermission({
    action: 'gmail.send',
    resource: `email:${to}`,
    scope: { max_emails: 1, subject_pattern: '^Invoice.*' },
    context: { reason: 'Sending monthly invoice to client' },
    waitForApproval: true,
    timeout: 30_000,
    onPendingApproval: (info) => void server.approve(info.permissionId),
  });
  assert.equal(p.status, 'approved');
  return { id: p.id, token: p.token };
}

const isAuthRefusal = (e: unknown): boolean =>
  e instanceof AuthenticationError || e instanceof ForbiddenError;

describe('AgentOTPService against the real server', { concurrency: true }, () => {
  before(async () => {
    server = await startServer();
    agent = new AgentOTPClient({ apiKey: server.key, baseUrl: server.url });
    mailer = new AgentOTPService({ serviceKey: server.service('mailer', 'gmail.*'), baseUrl: server.url });
  });
  after(async () => {
    await server?.stop();
  });

  test('docs/services.md: sendEmail({ otpToken }) guarded by the service', async () => {
    const outbox: Array<{ to: string; subject: string }> = [];
    const smtp = { send: async (m: { to: string; subject: string; body?: string }) => void outbox.push(m) };

    // ---- as in docs/services.md ----
    const otp = mailer; // new AgentOTPService({ serviceKey: process.env.AGENT_OTP_SERVICE_KEY })
    async function sendEmail({ to, subject, body, otpToken }: {
      to: string; subject: string; body?: string; otpToken?: string;
    }): Promise<void> {
      await otp.guard(
        otpToken,
        { action: 'gmail.send', resource: `email:${to}`, actionDetails: { emails: 1, to, subject } },
        () => smtp.send({ to, subject, body }),
      );
    }
    // ---- end ----

    const permission = await approvedInvoiceToken();
    await sendEmail({ to: 'client@example.com', subject: 'Invoice #123', otpToken: permission.token });
    assert.deepEqual(outbox, [{ to: 'client@example.com', subject: 'Invoice #123', body: undefined }]);
    assert.equal((await agent.getPermissionStatus(permission.id)).status, 'used');
    // The original README's last line, left in the agent: the service's use already consumed the
    // token, so it is a harmless refusal (docs/services.md says to drop it).
    const readmeUse = await agent.useToken(permission.id, permission.token);
    assert.deepEqual([readmeUse.success, readmeUse.code], [false, 'TOKEN_USED']);

    // The same token again: refused, nothing sent.
    await assert.rejects(
      sendEmail({ to: 'client@example.com', subject: 'Invoice #123', otpToken: permission.token }),
      TokenUsedError,
    );
    // What the agent did not get approved, with a fresh token each time: refused, nothing sent,
    // and the token is still good for what was approved.
    const fresh = await approvedInvoiceToken();
    await assert.rejects(
      sendEmail({ to: 'client@example.com', subject: 'Password reset', otpToken: fresh.token }),
      ScopeViolationError,
    );
    await assert.rejects(
      sendEmail({ to: 'boss@example.com', subject: 'Invoice #123', otpToken: fresh.token }),
      (e: unknown) => e instanceof TokenMismatchError && e.code === 'RESOURCE_MISMATCH',
    );
    await assert.rejects(
      sendEmail({ to: 'client@example.com', subject: 'Invoice #124' }),
      (e: unknown) => e instanceof InvalidTokenError && e.code === 'TOKEN_MISSING',
    );
    assert.equal(outbox.length, 1);
    await sendEmail({ to: 'client@example.com', subject: 'Invoice #124', otpToken: fresh.token });
    assert.equal(outbox.length, 2);
  });

  test('introspect says what a live token allows and consumes nothing', async () => {
    const { id, token } = await approvedInvoiceToken();
    const info = await mailer.introspect(token);
    assert.equal(info.active, true);
    if (!info.active) return;
    assert.equal(info.id, id);
    assert.equal(info.action, 'gmail.send');
    assert.equal(info.resource, 'email:client@example.com');
    assert.equal(info.agentName, 'ts-agent');
    assert.match(info.approvedBy ?? '', /^human:/);
    assert.equal(info.scope.max_emails, 1);
    assert.equal(info.scope.subject_pattern, '^Invoice.*');
    assert.equal(info.usesRemaining, 1);
    assert.ok(Date.parse(info.expiresAt) > Date.now());
    assert.equal((await mailer.introspect(token)).active, true, 'still active: nothing consumed');

    const used = await mailer.useToken(token, {
      action: 'gmail.send',
      resource: 'email:client@example.com',
      actionDetails: { emails: 1, to: 'client@example.com', subject: 'Invoice #1' },
    });
    assert.deepEqual(used, { success: true, usesRemaining: 0, checked: true });
    const after = await mailer.introspect(token);
    assert.equal(after.active, false);
    assert.ok(!after.active && after.reason);
  });

  test('introspect: an unknown token and another service\'s token look alike (inactive)', async () => {
    const unknown = await mailer.introspect('otp_' + 'x'.repeat(40));
    assert.equal(unknown.active, false);
    const read = await agent.requestPermission({ action: 'file.read', resource: '/tmp/a' });
    assert.equal(read.status, 'approved');
    const foreign = await mailer.introspect(read.token!);
    assert.equal(foreign.active, false, 'file.read is not one of gmail.*');
    assert.deepEqual(Object.keys(foreign).sort(), Object.keys(unknown).sort(), 'no more said of it');
    const use = await mailer.useToken(read.token!, { action: 'file.read', actionDetails: {} });
    assert.equal(use.success, false);
    assert.equal((await agent.useToken(read.id, read.token!)).success, true, 'the refusal consumed nothing');
  });

  test('useToken: another action or resource is refused and consumes nothing', async () => {
    const { token } = await approvedInvoiceToken();
    const details = { emails: 1, to: 'client@example.com', subject: 'Invoice #9' };
    const wrongAction = await mailer.useToken(token, { action: 'gmail.delete', actionDetails: details });
    assert.deepEqual([wrongAction.success, wrongAction.code], [false, 'ACTION_MISMATCH']);
    const wrongResource = await mailer.useToken(token, {
      action: 'gmail.send',
      resource: 'email:boss@example.com',
      actionDetails: details,
    });
    assert.deepEqual([wrongResource.success, wrongResource.code], [false, 'RESOURCE_MISMATCH']);
    assert.equal(wrongResource.usesRemaining, 1);
    const ok = await mailer.useToken(token, { action: 'gmail.send', resource: 'email:client@example.com', actionDetails: details });
    assert.equal(ok.success, true);
  });

  test('guard: concurrent guards of a 1-use token run the operation exactly once', async () => {
    const { token } = await approvedInvoiceToken();
    let ran = 0;
    const input = {
      action: 'gmail.send',
      resource: 'email:client@example.com',
      actionDetails: { emails: 1, to: 'client@example.com', subject: 'Invoice #5' },
    };
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => mailer.guard(token, input, async (use) => {
        ran++;
        assert.deepEqual(use, { success: true, usesRemaining: 0, checked: true });
      })),
    );
    assert.equal(ran, 1);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof TokenUsedError, String(r.reason));
    }
  });

  test('a revoked token is TokenRevokedError; a revoked service key is AuthenticationError', async () => {
    const { id, token } = await approvedInvoiceToken();
    await agent.revokeToken(id);
    const details = { emails: 1, to: 'client@example.com', subject: 'Invoice #3' };
    let ran = 0;
    await assert.rejects(
      mailer.guard(token, { action: 'gmail.send', resource: 'email:client@example.com', actionDetails: details }, () => ran++),
      TokenRevokedError,
    );
    const gone = new AgentOTPService({ serviceKey: server.service('mailer-gone', 'gmail.*'), baseUrl: server.url });
    assert.equal((await gone.introspect('otp_' + 'z'.repeat(40))).active, false, 'works before the revocation');
    server.revokeService('mailer-gone');
    await assert.rejects(gone.introspect('otp_' + 'z'.repeat(40)), AuthenticationError);
    assert.equal(ran, 0);
  });

  test('guard refuses to run without an action or real details, before asking the server', async () => {
    let calls = 0;
    const counting = new AgentOTPService({
      serviceKey: 'sk_unused',
      baseUrl: server.url,
      fetch: async (i, init) => {
        calls++;
        return fetch(i, init);
      },
    });
    const noDetails = { action: 'gmail.send' } as unknown as Parameters<AgentOTPService['guard']>[1];
    await assert.rejects(counting.guard('otp_x', noDetails, () => 1), (e: unknown) => (e as AgentOTPError).code === 'VALIDATION_ERROR');
    await assert.rejects(counting.guard(undefined, { action: 'gmail.send', actionDetails: {} }, () => 1), InvalidTokenError);
    assert.equal(calls, 0);
  });

  test('keys stay on their side: agent key and admin token cannot introspect, a service key cannot act as agent or human', async () => {
    const { token } = await approvedInvoiceToken();
    const asAgent = new AgentOTPService({ serviceKey: server.key, baseUrl: server.url });
    await assert.rejects(asAgent.introspect(token), isAuthRefusal);
    await assert.rejects(asAgent.useToken(token, { action: 'gmail.send', actionDetails: {} }), isAuthRefusal);
    const asAdmin = new AgentOTPService({ serviceKey: server.admin, baseUrl: server.url });
    await assert.rejects(asAdmin.introspect(token), isAuthRefusal);

    const serviceKey = server.service('mailer-2', 'gmail.*');
    const serviceAsAgent = new AgentOTPClient({ apiKey: serviceKey, baseUrl: server.url });
    await assert.rejects(serviceAsAgent.requestPermission({ action: 'gmail.send' }), isAuthRefusal);
    const admin = await fetch(`${server.url}/api/v1/admin/permissions`, {
      headers: { Authorization: `Bearer ${serviceKey}` },
    });
    assert.ok([401, 403].includes(admin.status), `admin route answered ${admin.status}`);
    await admin.body?.cancel();
    assert.equal((await mailer.introspect(token)).active, true, 'none of that touched the token');
  });
});
