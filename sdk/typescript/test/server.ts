/**
 * Starts the real release binary for a test run: temp data dir, the shared test policy, an
 * agent key and an admin token (made with the operator commands), `serve` on 127.0.0.1:0, and
 * the bound address read from its start-up log line.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sdkDir = resolve(here, '..', '..');
const bin = process.env.AGENT_OTP_BIN ?? resolve(sdkDir, '..', 'target', 'release', 'agent-otp');

export interface TestServer {
  url: string;
  key: string;
  admin: string;
  /** Creates another agent; returns its key. */
  agent(name: string): string;
  /** Creates a protected service for these action patterns (`gmail.*,calendar.read`); returns its `sk_…` key. */
  service(name: string, actions: string): string;
  /** `agent-otp service revoke NAME`. */
  revokeService(name: string): void;
  approve(id: string): Promise<void>;
  deny(id: string, reason?: string): Promise<void>;
  /** Revokes a request as a human (admin API). */
  revoke(id: string): Promise<void>;
  /** The pending requests, as a human sees them (admin API). */
  pending(): Promise<Array<Record<string, unknown> & { id: string }>>;
  stop(): Promise<void>;
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' };
  for (const k of Object.keys(env)) if (k.startsWith('AGENT_OTP_')) delete env[k];
  return env;
}

export async function startServer(): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-otp-ts-'));
  const dataDir = join(dir, 'data');
  const operator = (...args: string[]): string => {
    const out = execFileSync(bin, [...args, '--data-dir', dataDir], { env: cleanEnv() });
    return out.toString().trim().split('\n').pop() ?? '';
  };
  const service = (name: string, actions: string): string => {
    const out = execFileSync(bin, ['service', 'create', name, '--actions', actions, '--data-dir', dataDir], {
      env: cleanEnv(),
    }).toString();
    const line = out.split('\n').map((l) => l.trim()).find((l) => l.startsWith('sk_'));
    if (!line) throw new Error(`no sk_ key in the output of service create:\n${out}`);
    return line;
  };
  // Operator commands never create a database: `init` makes it, as a newcomer's first step.
  execFileSync(bin, ['init', '--data-dir', dataDir], { env: cleanEnv() });
  const key = operator('agent', 'create', 'ts-agent');
  const admin = operator('admin', 'token', 'create');

  const child = spawn(
    bin,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--policies', join(sdkDir, 'testdata', 'policies.yaml')],
    { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const url = await new Promise<string>((resolveUrl, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${seen}`)), 15_000);
    child.on('exit', (code) => reject(new Error(`server exited (${code}):\n${seen}`)));
    child.stderr!.on('data', (chunk: Buffer) => {
      // eslint-disable-next-line no-control-regex
      seen += chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
      const m = /agent-otp listening.*?addr=(\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolveUrl(`http://${m[1]}`);
      }
    });
  });
  child.stderr!.resume();

  const decide = async (id: string, verdict: 'approve' | 'deny' | 'revoke', body: object): Promise<void> => {
    const res = await fetch(`${url}/api/v1/admin/permissions/${id}/${verdict}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`${verdict} failed: ${res.status} ${await res.text()}`);
  };

  return {
    url,
    key,
    admin,
    agent: (name) => operator('agent', 'create', name),
    service,
    revokeService: (name) => void operator('service', 'revoke', name),
    approve: (id) => decide(id, 'approve', {}),
    deny: (id, reason) => decide(id, 'deny', reason ? { reason } : {}),
    revoke: (id) => decide(id, 'revoke', {}),
    pending: async () => {
      const res = await fetch(`${url}/api/v1/admin/permissions?status=pending&limit=100`, {
        headers: { Authorization: `Bearer ${admin}` },
      });
      if (res.status !== 200) throw new Error(`list failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { data: Array<Record<string, unknown> & { id: string }> }).data;
    },
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
