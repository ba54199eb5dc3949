/**
 * The transport both clients share (agent and service): one key, one server, the envelope rule
 * and the retry rules — a refused connection is retried for any call, other network failures
 * only for reads (repeating a `use` whose answer was lost could act twice), and a 429 after its
 * `Retry-After`.
 */

import { AgentOTPError, NetworkError, TimeoutError, errorFromResponse } from './errors.js';

/** Errors from Node's fetch (undici) that mean the request never reached the server. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const DEFAULT_BASE_URL = 'http://127.0.0.1:8787';

interface Envelope<T> {
  success?: boolean;
  data?: T;
  error?: { code?: string; message?: string; details?: Record<string, unknown> };
}

export interface CallOptions {
  body?: unknown;
  /** Seconds the server may hold the answer (long-poll). */
  waitSecs?: number;
}

/** Transport settings (the shared part of both clients' configs). */
export interface TransportConfig {
  baseUrl?: string;
  timeout?: number;
  retryAttempts?: number;
  retryDelay?: number;
  maxRetryAfter?: number;
  fetch?: typeof fetch;
}

/** Reads an environment variable without Node's types (the package also runs in Deno, Bun, browsers). */
export function env(name: string): string | undefined {
  const e = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return e?.[name];
}

export class Transport {
  readonly baseUrl: string;
  private readonly timeout: number;
  private readonly retryAttempts: number;
  private readonly retryDelay: number;
  private readonly maxRetryAfter: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    private readonly key: string,
    config: TransportConfig,
  ) {
    this.baseUrl = (config.baseUrl ?? env('AGENT_OTP_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.timeout = config.timeout ?? 30_000;
    this.retryAttempts = config.retryAttempts ?? 3;
    this.retryDelay = config.retryDelay ?? 1_000;
    this.maxRetryAfter = config.maxRetryAfter ?? 60_000;
    this.fetchFn = config.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** One API call with the retry rules; returns the envelope's `data`. */
  async call<T>(method: string, segments: string[], opts: CallOptions): Promise<T> {
    const query = opts.waitSecs ? `?wait=${opts.waitSecs}` : '';
    const url = `${this.baseUrl}/api/v1/${segments.map(pathSegment).join('/')}${query}`;
    const idempotent = method === 'GET';
    const timeoutMs = this.timeout + (opts.waitSecs ?? 0) * 1000;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.fetchFn(url, {
          method,
          headers: {
            'Content-Type': 'application/json',
            Authorization: `Bearer ${this.key}`,
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        if (isAbort(error)) {
          throw new TimeoutError(`No answer from the server within ${timeoutMs} ms`);
        }
        // A refused connection reached nothing: always safe to retry. Anything else may have
        // reached the server, so only reads are repeated.
        const retry = attempt < this.retryAttempts && (idempotent || isConnectError(error));
        if (!retry) {
          throw new NetworkError(`Cannot reach ${this.baseUrl}: ${describe(error)}`, error);
        }
        await sleep(this.retryDelay * 2 ** attempt);
        continue;
      }
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      if (response.status === 429 && attempt < this.retryAttempts) {
        const pause = (retryAfter ?? this.retryDelay / 1000) * 1000;
        if (pause <= this.maxRetryAfter) {
          await response.body?.cancel();
          await sleep(pause);
          continue;
        }
      }
      return readEnvelope<T>(response, retryAfter);
    }
  }
}

async function readEnvelope<T>(response: Response, retryAfter?: number): Promise<T> {
  const text = await response.text();
  let json: Envelope<T> | undefined;
  try {
    json = JSON.parse(text) as Envelope<T>;
  } catch {
    json = undefined;
  }
  if (response.ok && json?.success === true) {
    return json.data as T;
  }
  const message =
    json?.error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200) || 'no body'}`;
  throw errorFromResponse(
    response.status,
    json?.error?.code,
    message,
    json?.error?.details,
    retryAfter,
  );
}

/** One encoded path segment: an id cannot walk to another route. */
export function pathSegment(s: string): string {
  if (s === '' || s === '.' || s === '..') {
    throw new AgentOTPError(`Invalid permission id ${JSON.stringify(s)}`, 'VALIDATION_ERROR');
  }
  return encodeURIComponent(s);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const secs = Number(value.trim());
  if (Number.isFinite(secs) && secs >= 0) return secs;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

function isConnectError(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } } | undefined)?.cause;
  return typeof cause?.code === 'string' && CONNECT_ERRORS.has(cause.code);
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
