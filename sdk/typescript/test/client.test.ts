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
  PermissionRevokedError,
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
    // No actionDetails: consumed, and the answer says agent-otp did not check the scope.
    assert.deepEqual(await otp.useToken(p.id, p.token!), {
      success: true,
      usesRemaining: 0,
      checked: false,
    });
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

  test('revoked while waiting, or before the token was read → PermissionRevokedError, not a timeout', async () => {
    const started = Date.now();
    await assert.rejects(
      otp.requestPermission({
        action: 'db.truncate',
        waitForApproval: true,
        timeout: 30_000,
        onPendingApproval: (info) => void setTimeout(() => void server.revoke(info.permissionId), 300),
      }),
      (e: unknown) => {
        assert.ok(e instanceof PermissionRevokedError, `got ${String(e)}`);
        assert.ok(e instanceof PermissionDeniedError, 'handled wherever a denial is');
        assert.equal(e.code, 'PERMISSION_REVOKED');
        assert.ok(e.permissionId);
        assert.match(e.revokedBy ?? '', /^human:/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5_000, 'woke on the revocation, did not wait out the timeout');

    // Approved, then revoked before the agent read its token: the wait reports the revocation.
    const p = await otp.requestPermission({ action: 'db.reindex' });
    assert.equal(p.status, 'pending');
    await server.approve(p.id);
    await server.revoke(p.id);
    await assert.rejects(otp.waitForPermission(p.id, { timeout: 5_000 }), PermissionRevokedError);

    // Revoked by the agent itself (another of its processes) while this one waits.
    const q = await otp.requestPermission({ action: 'db.analyze' });
    setTimeout(() => void otp.revokeToken(q.id), 300);
    await assert.rejects(
      otp.waitForPermission(q.id, { timeout: 30_000 }),
      (e: unknown) => e instanceof PermissionRevokedError && !(e instanceof TimeoutError),
    );
  });

  test('waiting after the token went to another read and was used → TokenUsedError', async () => {
    const p = await otp.requestPermission({ action: 'db.export' });
    await server.approve(p.id);
    const first = await otp.getPermissionStatus(p.id); // this read gets the token, once
    assert.equal((await otp.useToken(p.id, first.token!)).success, true);
    await assert.rejects(otp.waitForPermission(p.id, { timeout: 5_000 }), TokenUsedError);
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

  test('executeWithPermission without actionDetails: the use consumes, the operation runs once', async () => {
    let token = '';
    let permissionId = '';
    const result = await otp.executeWithPermission(
      {
        action: 'gmail.send',
        resource: 'email:client@example.com',
        scope: { max_emails: 1 },
        timeout: 30_000,
        onPendingApproval: (info) => {
          permissionId = info.permissionId;
          void server.approve(info.permissionId);
        },
      },
      async (t) => {
        token = t;
        return 'sent';
      },
    );
    assert.equal(result, 'sent');
    assert.equal((await otp.getPermissionStatus(permissionId)).status, 'used');
    const again = await otp.useToken(permissionId, token);
    assert.deepEqual([again.success, again.code], [false, 'TOKEN_USED']);
  });

  test('verify names what the token is for; a use naming another action or resource is refused', async () => {
    const p = await otp.requestPermission({ action: 'file.read', resource: '/tmp/b' });
    assert.equal(p.status, 'approved');
    const v = await otp.verifyToken(p.id, p.token);
    assert.deepEqual([v.action, v.resource, v.agentName, v.approvedBy], ['file.read', '/tmp/b', 'ts-agent', 'policy']);
    const other = await otp.useToken(p.id, p.token, { action: 'file.write' });
    assert.deepEqual([other.success, other.code], [false, 'ACTION_MISMATCH']);
    const elsewhere = await otp.useToken(p.id, p.token, { action: 'file.read', resource: '/etc/shadow' });
    assert.deepEqual([elsewhere.success, elsewhere.code], [false, 'RESOURCE_MISMATCH']);
    const used = await otp.useToken(p.id, p.token, { action: 'file.read', resource: '/tmp/b' });
    assert.equal(used.success, true, 'the refusals consumed nothing');
  });

  test('exact binding: executeWithPermission sends the details with the request and the use', async () => {
    const details = { amount: 40, currency: 'EUR', to: 'DE89 3704 0044 0532 0130 00' };
    // A `bind: exact` rule refuses a request without its details.
    await assert.rejects(otp.requestPermission({ action: 'invoice.pay' }), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.ok(e.details && 'actionDetails' in e.details);
      return true;
    });
    let ran = 0;
    await otp.executeWithPermission({ action: 'invoice.pay', actionDetails: details }, async () => ran++);
    assert.equal(ran, 1);
    // The token is bound: the same grant used with one changed value is refused, consuming nothing.
    const p = await otp.requestPermission({ action: 'invoice.pay', actionDetails: details });
    assert.equal(p.status, 'approved');
    const v = await otp.verifyToken(p.id, p.token);
    assert.match(String(v.detailsDigest), /^[0-9a-f]{64}$/);
    const changed = await otp.useToken(p.id, p.token, { actionDetails: { ...details, amount: 41 } });
    assert.deepEqual([changed.success, changed.code], [false, 'DETAILS_MISMATCH']);
    const same = await otp.useToken(p.id, p.token, { actionDetails: details });
    assert.deepEqual([same.success, same.checked], [true, true]);
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
