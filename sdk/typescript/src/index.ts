/**
 * agent-otp SDK: ask a self-hosted agent-otp server for permission before a sensitive action,
 * wait for a human if the policy says so, and use the short-lived token once.
 */
export { AgentOTPClient } from './client.js';
export * from './errors.js';
export type * from './types.js';
