/**
 * agent-otp SDK: ask a self-hosted agent-otp server for permission before a sensitive action,
 * wait for a human if the policy says so, and use the short-lived token once; and, for the
 * protected service that receives the token, check and use it with the real details
 * ({@link AgentOTPService}).
 */
export { AgentOTPClient } from './client.js';
export { AgentOTPService } from './service.js';
export * from './errors.js';
export type * from './types.js';
