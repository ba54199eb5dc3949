-- Counting an agent's pending requests (the per-agent cap) without scanning its history.
CREATE INDEX permissions_pending_by_agent ON permissions(agent_id, expires_at)
    WHERE status = 'pending';
