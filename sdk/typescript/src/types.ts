/** Wire types of the agent-otp API (`/api/v1`), camelCase as sent. */

/** Where a permission request is in its life. */
export type PermissionStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'used' | 'revoked';

/** Settings of an {@link AgentOTPClient}. */
export interface AgentOTPClientConfig {
  /** Agent key, `ak_…` (from `agent-otp agent create NAME`). @default process.env.AGENT_OTP_KEY */
  apiKey?: string;
  /** Base URL of your server. @default process.env.AGENT_OTP_URL ?? 'http://127.0.0.1:8787' */
  baseUrl?: string;
  /** Time allowed for one HTTP exchange, in ms, on top of any long-poll wait. @default 30000 */
  timeout?: number;
  /** Retries after a refused connection (any call), a broken one (reads only) or a 429. @default 3 */
  retryAttempts?: number;
  /** First pause between network retries, in ms (doubles each time). @default 1000 */
  retryDelay?: number;
  /** Longest `Retry-After` honoured before a 429 is thrown as {@link RateLimitError}, in ms. @default 60000 */
  maxRetryAfter?: number;
  /** A `fetch` implementation (tests, proxies). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What to ask for. */
export interface RequestPermissionInput {
  /** What the agent wants to do, e.g. `gmail.send`. */
  action: string;
  /** What it acts on, e.g. `email:client@example.com`. */
  resource?: string;
  /** Constraints asked for; the granted scope can only be narrower. */
  scope?: Record<string, unknown>;
  /** Why, shown to the human. */
  context?: Record<string, unknown>;
  /** Lifetime in seconds (30–3600). @default 300 (server side) */
  ttl?: number;
  /** How many times the token may be used (1–100). @default 1 (server side) */
  uses?: number;
  /**
   * The exact details the agent will perform, when it knows them: the human sees them in full,
   * and the token is bound to their canonical SHA-256 (every use must present the same details).
   * A policy rule with `bind: exact` requires them.
   */
  actionDetails?: Record<string, unknown>;
}

/** {@link RequestPermissionInput} plus how to wait for a human. */
export interface RequestPermissionOptions extends RequestPermissionInput {
  /** Wait while a human decides (long-poll). @default false */
  waitForApproval?: boolean;
  /** Longest wait for the decision, in ms. @default 60000 */
  timeout?: number;
  /** Called once when the request needs a human, before waiting. */
  onPendingApproval?: (info: PendingApprovalInfo) => void;
  /** Accepted for v0.1 compatibility and ignored: the SDK long-polls instead of polling. */
  pollingInterval?: number;
}

/** A request that waits for a human. */
export interface PendingApprovalInfo {
  permissionId: string;
  /** The human's approval page (needs a human login; grants the agent nothing). */
  approvalUrl: string;
  /** Where the agent can long-poll for the decision. */
  webhookUrl: string;
  expiresAt: string;
}

/** A permission request as the server reports it. */
export interface PermissionResult {
  id: string;
  status: PermissionStatus;
  /** Present once: in the answer that approved it (or the first read after a human approval). */
  token?: string;
  /** The granted scope (may be narrower than asked). */
  scope?: Record<string, unknown>;
  usesRemaining?: number;
  approvalUrl?: string;
  webhookUrl?: string;
  expiresAt: string;
  reason?: string | null;
  action?: string;
  resource?: string | null;
  context?: Record<string, unknown>;
  decidedBy?: string | null;
  decidedAt?: string | null;
  createdAt?: string;
  tokenIssued?: boolean;
  [key: string]: unknown;
}

/** A permission that was approved and carries its token (as `requestPermission` returns it). */
export type ApprovedPermission = PermissionResult & { status: 'approved'; token: string };

/**
 * What `requestPermission` returns: approved with its token, or (without `waitForApproval`)
 * still pending. A denial, revocation, expiry or timeout is thrown instead.
 */
export type RequestedPermission = ApprovedPermission | (PermissionResult & { status: 'pending' });

/** The answer of `verify`. */
export interface TokenVerificationResult {
  valid: boolean;
  /** The request's id, action and resource the token is bound to (when valid). */
  id?: string;
  action?: string;
  resource?: string | null;
  agentId?: string;
  agentName?: string;
  /** Who approved: `policy` or `human:<name>`. */
  approvedBy?: string | null;
  scope?: Record<string, unknown>;
  usesRemaining?: number;
  expiresAt?: string;
  /** A use must carry `actionDetails`. */
  requireActionDetails?: boolean;
  /** SHA-256 of the exact `actionDetails` every use must present, when bound. */
  detailsDigest?: string;
  reason?: string;
  [key: string]: unknown;
}

/** The answer of `use`. */
export interface TokenUsageResult {
  success: boolean;
  usesRemaining: number;
  /**
   * On success: whether `actionDetails` were checked against the scope (`true`) or the use was
   * recorded without details, unchecked (`false`).
   */
  checked?: boolean;
  reason?: string;
  /**
   * Why it was refused: `TOKEN_USED`, `TOKEN_EXPIRED`, `TOKEN_REVOKED`, `INVALID_TOKEN`,
   * `NOT_APPROVED`, `SCOPE_VIOLATION`, `DETAILS_REQUIRED`, `DETAILS_MISMATCH`, and for services
   * `ACTION_MISMATCH`, `RESOURCE_MISMATCH`.
   */
  code?: string;
}

/** Extra input of `useToken`. */
export interface UseTokenInput {
  /** What is being done, checked against the granted scope (and an exact binding). */
  actionDetails?: Record<string, unknown>;
  /** The action being performed; refused (`ACTION_MISMATCH`) unless it is the token's. */
  action?: string;
  /** What it acts on; refused (`RESOURCE_MISMATCH`) unless it is the token's. */
  resource?: string;
}

/**
 * {@link RequestPermissionOptions} for `executeWithPermission`. Its `actionDetails` are sent with
 * the request (so the human sees them and the token is bound to them) and again with the use.
 */
export interface ExecuteWithPermissionOptions extends RequestPermissionOptions {
  actionDetails?: Record<string, unknown>;
}

/** Settings of an {@link AgentOTPService} (a protected service's client). */
export interface AgentOTPServiceConfig {
  /** Service key, `sk_…` (from `agent-otp service create NAME --actions 'gmail.*'`). @default process.env.AGENT_OTP_SERVICE_KEY */
  serviceKey?: string;
  /** Base URL of your server. @default process.env.AGENT_OTP_URL ?? 'http://127.0.0.1:8787' */
  baseUrl?: string;
  /** Time allowed for one HTTP exchange, in ms. @default 30000 */
  timeout?: number;
  /** Retries after a refused connection (any call), a broken one (introspect only) or a 429. @default 3 */
  retryAttempts?: number;
  /** First pause between network retries, in ms (doubles each time). @default 1000 */
  retryDelay?: number;
  /** Longest `Retry-After` honoured before a 429 is thrown as {@link RateLimitError}, in ms. @default 60000 */
  maxRetryAfter?: number;
  /** A `fetch` implementation (tests, proxies). @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What `introspect` says of a live token this service may act on. */
export interface ActiveToken {
  active: true;
  /** The permission request's id. */
  id: string;
  action: string;
  resource?: string | null;
  agentId: string;
  agentName: string;
  /** Who approved: `policy` or `human:<name>`. */
  approvedBy?: string | null;
  /** What the token allows (the request narrowed by the policy and the human). */
  scope: Record<string, unknown>;
  usesRemaining: number;
  expiresAt: string;
  /** A use must carry `actionDetails`. */
  requireActionDetails?: boolean;
  /** SHA-256 of the exact `actionDetails` the token is bound to, when it is. */
  detailsDigest?: string;
  [key: string]: unknown;
}

/**
 * What `introspect` says of any other token: unknown, for another service's action, expired,
 * used or revoked all look alike apart from `reason`.
 */
export interface InactiveToken {
  active: false;
  reason: string;
  [key: string]: unknown;
}

/** The answer of `POST /tokens/introspect`. */
export type TokenIntrospection = ActiveToken | InactiveToken;

/** What a protected service says it is doing when it uses a token. */
export interface ServiceUseInput {
  /** The action being performed (required): refused (`ACTION_MISMATCH`) unless it is the token's. */
  action: string;
  /** What it acts on; refused (`RESOURCE_MISMATCH`) unless it is the token's. */
  resource?: string;
  /** What is really being done, checked against the granted scope (and an exact binding). */
  actionDetails?: Record<string, unknown>;
}

/** {@link ServiceUseInput} for `guard`: the action and the real details are required. */
export interface GuardInput extends ServiceUseInput {
  action: string;
  actionDetails: Record<string, unknown>;
}

/** A successful use, as `guard` hands it to the operation. */
export interface AcceptedUse {
  success: true;
  usesRemaining: number;
  /** `true`: agent-otp checked the details against the scope. */
  checked: boolean;
}
