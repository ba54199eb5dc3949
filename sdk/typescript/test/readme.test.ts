/**
 * The original Agent OTP v0.1 README example, as close to verbatim as this SDK allows, against
 * the real server. Changes from the original, each needed: the package name (`@agent-otp/sdk`,
 * imported here from the source), and the server's address (from `AGENT_OTP_URL`, which the
 * client reads when `baseUrl` is not given; the original pointed at its hosted service).
 * `sendEmail` is the README's own stand-in for the protected operation. A person approves "from
 * the side": a separate task finds the request in the admin API's pending list, by what the
 * agent wrote as its reason, and approves it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { AgentOTPClient } from '../src/index.js';
import { startServer, type TestServer } from './server.js';

let server: TestServer;

before(async () => {
  server = await startServer();
  process.env.AGENT_OTP_KEY = server.key;
  process.env.AGENT_OTP_URL = server.url;
});
after(async () => {
  delete process.env.AGENT_OTP_KEY;
  delete process.env.AGENT_OTP_URL;
  await server?.stop();
});

/** A human who watches the pending list and approves the request with this reason. */
async function approveFromTheSide(reason: string, signal: AbortSignal): Promise<string> {
  while (!signal.aborted) {
    const mine = (await server.pending()).find(
      (p) => (p.context as { reason?: string } | undefined)?.reason === reason,
    );
    if (mine) {
      await server.approve(mine.id);
      return mine.id;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the request never showed up as pending');
}

test('the v0.1 README example: wait, approve from the side, send, use; a second use is refused', async (t) => {
  const logged: string[] = [];
  t.mock.method(console, 'log', (line: string) => void logged.push(line));
  const sent: Array<{ to: string; subject: string; otpToken?: string }> = [];
  const sendEmail = async (email: { to: string; subject: string; otpToken?: string }) => {
    sent.push(email);
  };
  const stop = new AbortController();
  const human = approveFromTheSide('Sending monthly invoice to client', stop.signal);
  const timer = setTimeout(() => stop.abort(), 20_000);

  // ---- the README, verbatim apart from the import ----
  const otp = new AgentOTPClient({ apiKey: process.env.AGENT_OTP_KEY });
  const permission = await otp.requestPermission({
    action: 'gmail.send',
    resource: 'email:client@example.com',
    scope: { max_emails: 1, subject_pattern: '^Invoice.*' },
    context: { reason: 'Sending monthly invoice to client' },
    waitForApproval: true,
    onPendingApproval: (info) => {
      console.log(`Waiting for approval: ${info.approvalUrl}`);
    },
  });
  if (permission.status === 'approved') {
    await sendEmail({ to: 'client@example.com', subject: 'Invoice #123', otpToken: permission.token });
    await otp.useToken(permission.id, permission.token);
  }
  // ---- end of the README ----

  clearTimeout(timer);
  const approvedId = await human;
  assert.equal(approvedId, permission.id, 'the human approved this very request');
  assert.equal(permission.status, 'approved');
  assert.equal(logged.length, 1);
  assert.match(logged[0]!, new RegExp(`^Waiting for approval: http://.+/requests/${permission.id}$`));
  assert.equal(sent.length, 1);
  assert.match(sent[0]!.otpToken ?? '', /^otp_/);
  // The README's use (no actionDetails) consumed the token.
  assert.equal((await otp.getPermissionStatus(permission.id)).status, 'used');
  const again = await otp.useToken(permission.id, permission.token);
  assert.equal(again.success, false);
  assert.equal(again.code, 'TOKEN_USED');
});
