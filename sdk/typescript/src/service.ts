/**
 * AgentOTPService: the protected service's side. The service that actually sends the email (or
 * moves the money) receives an `otp_…` token from the agent and checks it itself, with its own
 * service key and the details of what it really does — the agent's word is never taken for it.
 *
 * ```ts
 * const otp = new AgentOTPService({ serviceKey: process.env.AGENT_OTP_SERVICE_KEY });
 * await otp.guard(otpToken, { action: 'gmail.send', resource: `email:${to}`,
 *                             actionDetails: { emails: 1, to, subject } }, () => smtp.send(...));
 * ```
 */

import { AgentOTPError, AuthenticationError, InvalidTokenError, tokenError } from './errors.js';
import { Transport, env } from './http.js';
import type {
  AcceptedUse,
  AgentOTPServiceConfig,
  GuardInput,
  ServiceUseInput,
  TokenIntrospection,
  TokenUsageResult,
} from './types.js';

/** A client for one protected service (one service key) on one server. */
export class AgentOTPService {
  private readonly http: Transport;

  constructor(config: AgentOTPServiceConfig = {}) {
    const key = config?.serviceKey ?? env('AGENT_OTP_SERVICE_KEY');
    if (!key) {
      throw new AuthenticationError(
        'Service key is required: pass serviceKey or set AGENT_OTP_SERVICE_KEY ' +
          "(made by `agent-otp service create NAME --actions 'gmail.*'`)",
      );
    }
    this.http = new Transport(key, config);
  }

  /**
   * Reads what a token allows, without consuming it: `{active: true, action, resource, agentName,
   * approvedBy, scope, usesRemaining, …}` for a live token for one of this service's actions, or
   * `{active: false, reason}` for anything else. For showing or logging; the decision to act is
   * {@link useToken} (or {@link guard}), which is atomic.
   */
  async introspect(token: string): Promise<TokenIntrospection> {
    requireToken(token);
    return this.http.call('POST', ['tokens', 'introspect'], { body: { token } });
  }

  /**
   * Uses a token once, atomically, as this service: `{success: true, usesRemaining, checked}` or
   * `{success: false, code, reason, usesRemaining}` (nothing consumed). `action` (required) and
   * `resource` are compared with the token's, and `actionDetails` — what you really do — are
   * checked against the scope; without details the use is recorded unchecked. Never repeated
   * when its answer is lost ({@link NetworkError}).
   */
  async useToken(token: string, input: ServiceUseInput): Promise<TokenUsageResult> {
    requireToken(token);
    const { action, resource, actionDetails } = input;
    return this.http.call('POST', ['tokens', 'use'], {
      body: { token, action, resource, actionDetails },
    });
  }

  /**
   * Uses the token for exactly this action, resource and these real details, and runs
   * `operation` only when agent-otp accepted the use (checked against the scope). Otherwise
   * throws and `operation` does not run: a refused use throws the token's error
   * ({@link InvalidTokenError} or a subclass: {@link ScopeViolationError},
   * {@link TokenMismatchError}, {@link TokenUsedError}, …), a missing token throws
   * {@link InvalidTokenError} `TOKEN_MISSING` without asking the server.
   *
   * The use comes first, for the reason `executeWithPermission` gives: it is the atomic gate.
   * If `operation` then fails, the token is spent. Validate your own input before calling.
   */
  async guard<T>(
    token: string | undefined | null,
    input: GuardInput,
    operation: (use: AcceptedUse) => Promise<T> | T,
  ): Promise<T> {
    requireToken(token);
    if (!input?.action) {
      throw new AgentOTPError('guard needs the action being performed', 'VALIDATION_ERROR');
    }
    if (!isObject(input.actionDetails)) {
      throw new AgentOTPError(
        'guard needs the real actionDetails (an object; {} when there are none)',
        'VALIDATION_ERROR',
      );
    }
    const used = await this.useToken(token, input);
    if (used?.success !== true) {
      throw tokenError(used?.code, used?.reason);
    }
    if (used.checked !== true) {
      // Details were sent, so the server must have checked them; anything else is not a yes.
      throw new InvalidTokenError('The use was recorded but not checked against the scope', 'NOT_CHECKED');
    }
    return operation({ success: true, usesRemaining: used.usesRemaining, checked: true });
  }
}

function requireToken(token: string | undefined | null): asserts token is string {
  if (typeof token !== 'string' || token === '') {
    throw new InvalidTokenError('No agent-otp token was given', 'TOKEN_MISSING');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
