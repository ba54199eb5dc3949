/**
 * AgentOTPClient against the real release server (see server.ts). The tests share one server
 * and run concurrently, so the 30-second expiry test overlaps the others.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  AgentOTPClient,
  AuthenticationError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  PermissionExpiredError,
  RateLimitError,
  ScopeViolationError,
  TimeoutError,
  TokenUsedError,
  ValidationError,
  type PendingApprovalInfo,
} from '../src/index.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer;
let otp: AgentOTPClient;

describe('AgentOTPClient against the real server', { concurrency: true }, () => {
  before(async () => {
    server = await startServer();
    otp = new AgentOTPClient({ apiKey: server.key, baseUrl: server.url });
  });
  after(async () => {
    await server?.stop();
  });

  test('auto-approve → verify does not consume → use once', async () => {
    const p = await otp.requestPermission({ action: 'file.read', resource: '/tmp/a' });
    assert.equal(p.status, 'approved');
    assert.match(p.token!, /^otp_/);
    const v = await otp.verifyToken(p.id, p.token!);
    assert.equal(v.valid, true);
    assert.equal(v.usesRemaining, 1);
    assert.deepEqual(await otp.useToken(p.id, p.token!), { success: true, usesRemaining: 0 });
    const again = await otp.useToken(p.id, p.token!);
    assert.equal(again.success, false);
    assert.equal(again.code, 'TOKEN_USED');
    assert.equal((await otp.getPermissionStatus(p.id)).status, 'used');
  });

  test('require approval → a human approves while the client waits → token → use', async () => {
    let pending: PendingApprovalInfo | undefined;
    let approvedAt = 0;
    const p = await otp.requestPermission({
      action: 'gmail.send',
      resource: 'email:client@example.com',
      scope: { max_emails: 1 },
      context: { reason: 'monthly invoice' },
      waitForApproval: true,
      timeout: 30_000,
      onPendingApproval: (info) => {
        pending = info;
        // Approve a little later, so the client is already in its long-poll.
        setTimeout(() => {
          approvedAt = Date.now();
          void server.approve(info.permissionId);
        }, 300);
      },
    });
    const wokeAfter = Date.now() - approvedAt;
    assert.ok(pending, 'onPendingApproval was called');
    assert.equal(pending.permissionId, p.id);
    assert.match(pending.approvalUrl, new RegExp(`/requests/${p.id}$`));
    assert.match(pending.webhookUrl, /\/api\/v1\/permissions\/.+\?wait=/);
    assert.equal(p.status, 'approved');
    assert.ok(wokeAfter < 2_000, `long-poll woke ${wokeAfter} ms after the approval`);
    const used = await otp.useToken(p.id, p.token!, {
      actionDetails: { emails: 1, to: 'client@example.com' },
    });
    assert.equal(used.success, true);
    // The token was delivered once: a later read shows only that it was issued.
    const later = await otp.getPermissionStatus(p.id);
    assert.equal(later.token, undefined);
    assert.equal(later.tokenIssued, true);
  });

  test('deny by policy and by a human → PermissionDeniedError', async () => {
    await assert.rejects(otp.requestPermission({ action: 'shell.exec' }), (e: unknown) => {
      assert.ok(e instanceof PermissionDeniedError);
      assert.match(e.reason ?? '', /deny-shell/);
      return true;
    });
    await assert.rejects(
      otp.requestPermission({
        action: 'db.drop',
        waitForApproval: true,
        timeout: 30_000,
        onPendingApproval: (info) => void server.deny(info.permissionId, 'not today'),
      }),
      (e: unknown) => e instanceof PermissionDeniedError && e.reason === 'not today',
    );
  });

  test('expiry while waiting → PermissionExpiredError', { timeout: 60_000 }, async () => {
    await assert.rejects(
      otp.requestPermission({ action: 'db.vacuum', ttl: 30, waitForApproval: true, timeout: 50_000 }),
      PermissionExpiredError,
    );
  });

  test('waiting longer than `timeout` → TimeoutError naming the request', async () => {
    const started = Date.now();
    await assert.rejects(
      otp.requestPermission({ action: 'db.backup', waitForApproval: true, timeout: 1_500 }),
      (e: unknown) => {
        assert.ok(e instanceof TimeoutError);
        assert.ok(e.permissionId);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000);
  });

  test('without waitForApproval a pending request is returned as is', async () => {
    const p = await otp.requestPermission({ action: 'db.migrate' });
    assert.equal(p.status, 'pending');
    assert.ok(p.approvalUrl && p.webhookUrl);
  });

  test('wrong key → AuthenticationError; bad input → ValidationError with details', async () => {
    const bad = new AgentOTPClient({ apiKey: 'ak_wrong', baseUrl: server.url });
    await assert.rejects(bad.requestPermission({ action: 'file.read' }), AuthenticationError);
    await assert.rejects(otp.requestPermission({ action: 'file.read', ttl: 5 }), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.statusCode, 400);
      assert.ok(e.details && 'ttl' in e.details);
      return true;
    });
    await assert.rejects(otp.getPermissionStatus('../admin/audit'), NotFoundError);
    assert.throws(() => new AgentOTPClient({ apiKey: '' }), AuthenticationError);
  });

  test('executeWithPermission uses the token before the operation runs', async () => {
    let ran = 0;
    const result = await otp.executeWithPermission(
      { action: 'email.send', actionDetails: { recipients: ['a@x.org'] } },
      async (token, scope) => {
        ran++;
        assert.match(token, /^otp_/);
        assert.equal(scope.max_recipients_count, 2);
        return 'sent';
      },
    );
    assert.equal(result, 'sent');
    // Outside the granted scope: refused by the server, and the operation never runs.
    await assert.rejects(
      otp.executeWithPermission(
        { action: 'email.send', actionDetails: { recipients: ['a@x.org', 'b@x.org', 'c@x.org'] } },
        async () => {
          ran++;
        },
      ),
      ScopeViolationError,
    );
    assert.equal(ran, 1);
  });

  test('revokeToken stops the token at once', async () => {
    const p = await otp.requestPermission({ action: 'file.read' });
    const revoked = await otp.revokeToken(p.id);
    assert.equal(revoked.status, 'revoked');
    const used = await otp.useToken(p.id, p.token!);
    assert.deepEqual([used.success, used.code], [false, 'TOKEN_REVOKED']);
  });

  test('a 429 is retried after Retry-After; too long a wait throws RateLimitError', async () => {
    let calls = 0;
    const limited = (retryAfter: string, times: number): typeof fetch =>
      async (input, init) => {
        calls++;
        if (calls <= times) {
          return new Response(
            JSON.stringify({ success: false, error: { code: 'RATE_LIMITED', message: 'slow down' } }),
            { status: 429, headers: { 'Retry-After': retryAfter, 'Content-Type': 'application/json' } },
          );
        }
        return fetch(input, init);
      };
    const patient = new AgentOTPClient({ apiKey: server.key, baseUrl: server.url, fetch: limited('1', 1) });
    const started = Date.now();
    const p = await patient.requestPermission({ action: 'file.read' });
    assert.equal(p.status, 'approved');
    assert.equal(calls, 2);
    assert.ok(Date.now() - started >= 900, 'waited for Retry-After');

    calls = 0;
    const impatient = new AgentOTPClient({
      apiKey: server.key,
      baseUrl: server.url,
      fetch: limited('3600', 99),
    });
    await assert.rejects(impatient.requestPermission({ action: 'file.read' }), (e: unknown) => {
      assert.ok(e instanceof RateLimitError);
      assert.equal(e.retryAfter, 3600);
      return true;
    });
    assert.equal(calls, 1);
  });

  test('network errors are retried, then NetworkError', async () => {
    // Find a port nothing listens on: the one a just-stopped listener had.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((r) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls++;
      return fetch(input, init);
    };
    const dead = new AgentOTPClient({
      apiKey: 'ak_x',
      baseUrl: `http://127.0.0.1:${port}`,
      retryAttempts: 2,
      retryDelay: 10,
      fetch: counting,
    });
    await assert.rejects(dead.requestPermission({ action: 'file.read' }), NetworkError);
    assert.equal(calls, 3, 'a refused connection is retried even for a POST');
  });

  test('a lost answer to a POST is not repeated', async () => {
    let calls = 0;
    const broken: typeof fetch = async () => {
      calls++;
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) });
    };
    const c = new AgentOTPClient({ apiKey: server.key, baseUrl: server.url, retryDelay: 1, fetch: broken });
    await assert.rejects(c.useToken('x', 'otp_y'), NetworkError);
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(c.getPermissionStatus('x'), NetworkError);
    assert.equal(calls, 4, 'reads are retried');
  });
});
