/**
 * Typed errors. Every error the SDK throws is an {@link AgentOTPError}; the subclass says what
 * happened, and `code` carries the server's machine code (or the SDK's own for local failures).
 */

/** Base class of every SDK error. */
export class AgentOTPError extends Error {
  constructor(
    message: string,
    /** Machine code: the server's `error.code`, or one of the SDK's (e.g. `TIMEOUT`). */
    public readonly code: string,
    /** The server's `error.details` (for validation errors: one entry per bad field). */
    public readonly details?: Record<string, unknown>,
    /** HTTP status, when the server answered. */
    public readonly statusCode?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The agent key is missing, unknown or revoked (401). */
export class AuthenticationError extends AgentOTPError {
  constructor(message = 'Authentication failed', statusCode = 401) {
    super(message, 'UNAUTHORIZED', undefined, statusCode);
  }
}

/** The key is valid but may not do this (403). */
export class ForbiddenError extends AgentOTPError {
  constructor(message = 'Access denied', statusCode = 403) {
    super(message, 'FORBIDDEN', undefined, statusCode);
  }
}

/** No such permission request, or not this agent's (404). */
export class NotFoundError extends AgentOTPError {
  constructor(message = 'Resource not found', statusCode = 404) {
    super(message, 'NOT_FOUND', undefined, statusCode);
  }
}

/** The input was refused (400); `details` names each bad field. */
export class ValidationError extends AgentOTPError {
  constructor(message = 'Validation failed', details?: Record<string, unknown>, statusCode = 400) {
    super(message, 'VALIDATION_ERROR', details, statusCode);
  }
}

/** The request is no longer in a state that allows this, e.g. it was already decided (409). */
export class ConflictError extends AgentOTPError {
  constructor(message = 'Conflict', statusCode = 409) {
    super(message, 'CONFLICT', undefined, statusCode);
  }
}

/** The body was too large (413). */
export class PayloadTooLargeError extends AgentOTPError {
  constructor(message = 'Payload too large', statusCode = 413) {
    super(message, 'PAYLOAD_TOO_LARGE', undefined, statusCode);
  }
}

/** Too many requests (429), still refused after the configured retries. */
export class RateLimitError extends AgentOTPError {
  constructor(
    message = 'Rate limit exceeded',
    /** Seconds the server asked to wait (`Retry-After`). */
    public readonly retryAfter?: number,
  ) {
    super(message, 'RATE_LIMITED', { retryAfter }, 429);
  }
}

/** The server failed (5xx). */
export class ServerError extends AgentOTPError {
  constructor(message = 'Server error', statusCode = 500) {
    super(message, 'SERVER_ERROR', undefined, statusCode);
  }
}

/** The server could not be reached, or the connection broke. */
export class NetworkError extends AgentOTPError {
  constructor(message = 'Network request failed', cause?: unknown) {
    super(message, 'NETWORK_ERROR', { cause: cause instanceof Error ? cause.message : cause });
  }
}

/** Waiting (for an HTTP answer or for a human) took longer than allowed. */
export class TimeoutError extends AgentOTPError {
  constructor(
    message = 'Request timed out',
    /** The request still pending, when waiting for approval timed out. */
    public readonly permissionId?: string,
  ) {
    super(message, 'TIMEOUT', permissionId ? { permissionId } : undefined);
  }
}

/** The policy or a human denied the request. */
export class PermissionDeniedError extends AgentOTPError {
  constructor(
    message = 'Permission denied',
    public readonly reason?: string,
    public readonly permissionId?: string,
    code = 'PERMISSION_DENIED',
  ) {
    super(message, code, { reason, permissionId });
  }
}

/**
 * The request was revoked (by a human, or by the agent itself) while the SDK waited for the
 * decision, or after approval before its token was delivered. A subclass of
 * {@link PermissionDeniedError}, so code that handles "not allowed" also handles it; test for this
 * class first to tell the two apart.
 */
export class PermissionRevokedError extends PermissionDeniedError {
  constructor(
    message = 'Permission request was revoked',
    permissionId?: string,
    /** Who revoked it (`human:<name>` or the agent's id), as the server reports it. */
    public readonly revokedBy?: string,
  ) {
    super(message, undefined, permissionId, 'PERMISSION_REVOKED');
  }
}

/** The request expired before it was approved (or before its token was used). */
export class PermissionExpiredError extends AgentOTPError {
  constructor(
    message = 'Permission request expired',
    public readonly permissionId?: string,
  ) {
    super(message, 'PERMISSION_EXPIRED', permissionId ? { permissionId } : undefined);
  }
}

/** A token was refused at use: wrong token, used up, revoked, expired or outside its scope. */
export class InvalidTokenError extends AgentOTPError {
  constructor(message = 'Invalid or consumed token', code = 'INVALID_TOKEN') {
    super(message, code);
  }
}

/** The token has no uses left. */
export class TokenUsedError extends InvalidTokenError {
  constructor(message = 'Token has already been used') {
    super(message, 'TOKEN_USED');
  }
}

/** The permission was revoked. */
export class TokenRevokedError extends InvalidTokenError {
  constructor(message = 'Token has been revoked') {
    super(message, 'TOKEN_REVOKED');
  }
}

/** The token expired. */
export class TokenExpiredError extends InvalidTokenError {
  constructor(message = 'Token has expired') {
    super(message, 'TOKEN_EXPIRED');
  }
}

/** What the action details asked for is outside the granted scope. */
export class ScopeViolationError extends InvalidTokenError {
  constructor(message = 'Outside the granted scope') {
    super(message, 'SCOPE_VIOLATION');
  }
}

/**
 * The use named another action or resource than the token's (`ACTION_MISMATCH`,
 * `RESOURCE_MISMATCH`), or other details than the exact ones approved (`DETAILS_MISMATCH`).
 */
export class TokenMismatchError extends InvalidTokenError {
  constructor(message = 'The token is for something else', code = 'ACTION_MISMATCH') {
    super(message, code);
  }
}

/** The error for an error answer, chosen by the server's code first, then by HTTP status. */
export function errorFromResponse(
  status: number,
  code: string | undefined,
  message: string,
  details?: Record<string, unknown>,
  retryAfter?: number,
): AgentOTPError {
  switch (code) {
    case 'VALIDATION_ERROR':
      return new ValidationError(message, details, status);
    case 'UNAUTHORIZED':
      return new AuthenticationError(message, status);
    case 'FORBIDDEN':
      return new ForbiddenError(message, status);
    case 'NOT_FOUND':
      return new NotFoundError(message, status);
    case 'CONFLICT':
      return new ConflictError(message, status);
    case 'PAYLOAD_TOO_LARGE':
      return new PayloadTooLargeError(message, status);
    case 'RATE_LIMITED':
      return new RateLimitError(message, retryAfter);
    case 'INTERNAL_ERROR':
      return new ServerError(message, status);
  }
  return errorFromStatus(status, message, details, retryAfter);
}

/** The v0.1 mapping by HTTP status alone (kept for callers that used it). */
export function errorFromStatus(
  status: number,
  message: string,
  details?: Record<string, unknown>,
  retryAfter?: number,
): AgentOTPError {
  switch (status) {
    case 400:
    case 422:
      return new ValidationError(message, details, status);
    case 401:
      return new AuthenticationError(message, status);
    case 403:
      return new ForbiddenError(message, status);
    case 404:
      return new NotFoundError(message, status);
    case 409:
      return new ConflictError(message, status);
    case 413:
      return new PayloadTooLargeError(message, status);
    case 429:
      return new RateLimitError(message, retryAfter);
  }
  if (status >= 500) return new ServerError(message, status);
  return new AgentOTPError(message, 'API_ERROR', { status, ...details }, status);
}

/** The error for a refused token use (`{success: false, code, reason}`). */
export function tokenError(code: string | undefined, reason: string | undefined): InvalidTokenError {
  const message = reason ?? 'The token was refused';
  switch (code) {
    case 'TOKEN_USED':
      return new TokenUsedError(message);
    case 'TOKEN_REVOKED':
      return new TokenRevokedError(message);
    case 'TOKEN_EXPIRED':
      return new TokenExpiredError(message);
    case 'SCOPE_VIOLATION':
      return new ScopeViolationError(message);
    case 'ACTION_MISMATCH':
    case 'RESOURCE_MISMATCH':
    case 'DETAILS_MISMATCH':
      return new TokenMismatchError(message, code);
    default:
      return new InvalidTokenError(message, code ?? 'INVALID_TOKEN');
  }
}
