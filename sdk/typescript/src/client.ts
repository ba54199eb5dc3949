/**
 * AgentOTPClient: the v0.1 surface over a self-hosted agent-otp server, with v0.1's defects
 * fixed — it long-polls instead of polling every 2 s, maps errors by the server's code, never
 * retries a write whose answer was lost, honours `Retry-After`, reports a revocation while
 * waiting as {@link PermissionRevokedError}, and `executeWithPermission` uses the token
 * (atomically, on the server) *before* running the operation and throws when the use is refused.
 */

import {
  AgentOTPError,
  AuthenticationError,
  InvalidTokenError,
  PermissionDeniedError,
  PermissionExpiredError,
  PermissionRevokedError,
  TimeoutError,
  TokenUsedError,
  tokenError,
} from './errors.js';
import { Transport, env, type CallOptions } from './http.js';
import type {
  AgentOTPClientConfig,
  ApprovedPermission,
  RequestedPermission,
  ExecuteWithPermissionOptions,
  PermissionResult,
  RequestPermissionOptions,
  TokenUsageResult,
  TokenVerificationResult,
  UseTokenInput,
} from './types.js';

/** The server's longest long-poll, in seconds. */
const MAX_WAIT_SECS = 60;

/** A client for one agent (one key) on one server. */
export class AgentOTPClient {
  private readonly http: Transport;

  constructor(config: AgentOTPClientConfig = {}) {
    const apiKey = config?.apiKey ?? env('AGENT_OTP_KEY');
    if (!apiKey) {
      throw new AuthenticationError('API key is required: pass apiKey or set AGENT_OTP_KEY');
    }
    this.http = new Transport(apiKey, config);
  }

  /**
   * Asks for a permission. Approved → returns it with its token. Denied → throws
   * {@link PermissionDeniedError}. Pending → returns it as is, or with `waitForApproval` calls
   * `onPendingApproval` and waits (long-poll) until a human decides: approved (returned, with its
   * token), denied ({@link PermissionDeniedError}), revoked ({@link PermissionRevokedError}),
   * expired ({@link PermissionExpiredError}), or `timeout` ms pass ({@link TimeoutError}).
   */
  async requestPermission(options: RequestPermissionOptions): Promise<RequestedPermission> {
    const { action, resource, scope, context, ttl, uses, actionDetails } = options;
    const result = await this.call<PermissionResult>('POST', ['permissions', 'request'], {
      body: { action, resource, scope, context, ttl, uses, actionDetails },
    });
    if (result.status === 'denied') {
      throw denied(result);
    }
    if (result.status === 'approved') {
      if (!result.token) {
        throw new InvalidTokenError('Approved, but the answer carries no token', 'TOKEN_MISSING');
      }
      return result as ApprovedPermission;
    }
    if (result.status !== 'pending') {
      throw new AgentOTPError(`Unexpected status ${JSON.stringify(result.status)}`, 'UNEXPECTED_STATUS');
    }
    if (!options.waitForApproval) {
      return result as RequestedPermission;
    }
    if (options.onPendingApproval && result.approvalUrl && result.webhookUrl) {
      options.onPendingApproval({
        permissionId: result.id,
        approvalUrl: result.approvalUrl,
        webhookUrl: result.webhookUrl,
        expiresAt: result.expiresAt,
      });
    }
    return this.waitForPermission(result.id, { timeout: options.timeout ?? 60_000 });
  }

  /**
   * Waits (long-poll) for a pending request's decision and returns it once approved, with the
   * token. Throws {@link PermissionDeniedError} (denied), {@link PermissionRevokedError} (revoked
   * before its token reached this read), {@link PermissionExpiredError}, {@link TokenUsedError}
   * (the token went to an earlier read and was used) or {@link TimeoutError} (after `timeout` ms,
   * default 60 s; the request stays pending).
   */
  async waitForPermission(
    permissionId: string,
    options: { timeout?: number } = {},
  ): Promise<ApprovedPermission> {
    const deadline = Date.now() + (options.timeout ?? 60_000);
    for (;;) {
      const left = deadline - Date.now();
      const waitSecs = Math.max(0, Math.min(MAX_WAIT_SECS, Math.ceil(left / 1000)));
      const status = await this.getPermissionStatus(permissionId, { wait: waitSecs });
      switch (status.status) {
        case 'approved':
          if (!status.token) {
            throw new InvalidTokenError(
              'Approved, but its token was already delivered to an earlier read',
              'TOKEN_ALREADY_ISSUED',
            );
          }
          return status as ApprovedPermission;
        case 'denied':
          throw denied(status);
        case 'pending':
          if (Date.now() >= deadline) {
            throw new TimeoutError('Waiting for approval timed out', permissionId);
          }
          break;
        case 'expired':
          throw new PermissionExpiredError('Permission request expired', permissionId);
        case 'revoked':
          throw new PermissionRevokedError(
            `Permission request was revoked${status.decidedBy ? ` by ${status.decidedBy}` : ''}`,
            permissionId,
            status.decidedBy ?? undefined,
          );
        case 'used':
          // Approved, its token delivered to another read, and used there.
          throw new TokenUsedError('The permission was approved and its token already used');
        default:
          throw new AgentOTPError(
            `Unexpected status ${JSON.stringify(status.status)} while waiting`,
            'UNEXPECTED_STATUS',
          );
      }
    }
  }

  /**
   * Reads a request. With `wait` (seconds, ≤ 60) the server answers as soon as it leaves
   * `pending`. The first read after a human approval carries the token, once.
   */
  async getPermissionStatus(
    permissionId: string,
    options: { wait?: number } = {},
  ): Promise<PermissionResult> {
    const waitSecs = Math.max(0, Math.min(MAX_WAIT_SECS, Math.floor(options.wait ?? 0)));
    return this.call<PermissionResult>('GET', ['permissions', permissionId], { waitSecs });
  }

  /** Checks a token without consuming it. */
  async verifyToken(permissionId: string, token: string): Promise<TokenVerificationResult> {
    return this.call('POST', ['permissions', permissionId, 'verify'], { body: { token } });
  }

  /**
   * Uses a token once (atomically on the server): `{success: true, usesRemaining, checked}`, or
   * `{success: false, code, reason}` when refused (nothing consumed). `actionDetails` are checked
   * against the granted scope; without them the use is recorded unchecked (`checked: false`).
   * `action`/`resource`, when given, must be the token's.
   */
  async useToken(
    permissionId: string,
    token: string,
    input?: UseTokenInput,
  ): Promise<TokenUsageResult> {
    return this.call('POST', ['permissions', permissionId, 'use'], {
      body: { token, action: input?.action, resource: input?.resource, actionDetails: input?.actionDetails },
    });
  }

  /** Revokes a request; its token stops working at once. */
  async revokeToken(permissionId: string): Promise<PermissionResult> {
    return this.call('POST', ['permissions', permissionId, 'revoke'], {});
  }

  /**
   * Requests permission (waiting for a human by default), uses the token, and only then runs
   * `operation(token, scope)`; returns what the operation returns.
   *
   * Order: the token is used *before* the operation runs. The use is the server's atomic gate
   * (a 1-use token gives exactly one success however many callers race), and it is where a
   * revoked, expired or out-of-scope token is refused; asking after the operation could only
   * report a refusal once the email is already sent. The price: if the operation itself fails
   * after the use, the token is spent and a retry needs a new request (fail closed).
   *
   * Anything but a successful use throws and the operation does not run: a refused use throws
   * the token's error ({@link InvalidTokenError} or a subclass such as
   * {@link ScopeViolationError}, {@link TokenRevokedError}); a denial, revocation, expiry or
   * timeout while waiting throws as {@link requestPermission} does; a lost answer throws
   * {@link NetworkError} (the use is never repeated). `actionDetails` go with the request (the
   * human sees them; the token is bound to them) and with the use (checked against the scope);
   * without them the use is recorded unchecked (strict checks belong to the protected service).
   */
  async executeWithPermission<T>(
    options: ExecuteWithPermissionOptions,
    operation: (token: string, scope: Record<string, unknown>) => Promise<T>,
  ): Promise<T> {
    const { actionDetails } = options;
    // The details go with the request too: the human sees exactly what will be done, and the
    // token is bound to it (a `bind: exact` rule requires that).
    const permission = await this.requestPermission({
      ...options,
      waitForApproval: options.waitForApproval ?? true,
    });
    if (permission.status !== 'approved') {
      throw new PermissionDeniedError(
        `Permission not approved yet (status ${permission.status}; waitForApproval is false)`,
        undefined,
        permission.id,
      );
    }
    const used = await this.useToken(permission.id, permission.token, { actionDetails });
    if (used?.success !== true) {
      throw tokenError(used?.code, used?.reason);
    }
    return operation(permission.token, permission.scope ?? {});
  }

  private call<T>(method: string, segments: string[], opts: CallOptions): Promise<T> {
    return this.http.call<T>(method, segments, opts);
  }
}

function denied(result: PermissionResult): PermissionDeniedError {
  const reason = result.reason ?? undefined;
  return new PermissionDeniedError(reason ?? 'Permission denied', reason, result.id);
}

