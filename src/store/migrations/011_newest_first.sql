-- The request list is newest first (issue 20). It was ordered by `created_at, rowid`, which no
-- index gave without a filter, so SQLite read and sorted every request ever made for each page:
-- about 0.5 s per page at 300,000 requests, growing with the table. It is now ordered by rowid,
-- the order in which requests were stored (`store::permissions::page`): the table itself gives
-- that order, and an index on `agent_id` alone gives it for one agent, since its entries end in
-- the rowid. An index on `created_at` would have cost every request one more index insert
-- (3% of an auto-approval, counted by bench/callgrind.sh).
DROP INDEX permissions_by_agent;
CREATE INDEX permissions_by_agent ON permissions(agent_id);
