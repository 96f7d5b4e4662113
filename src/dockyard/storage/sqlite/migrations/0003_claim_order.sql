-- Runnable jobs in the order a claim takes them, so that a claim from every queue walks this index
-- and stops after LIMIT jobs instead of sorting all runnable jobs (O(backlog) per claim).
CREATE INDEX jobs_claim_order ON jobs (priority DESC, seq) WHERE state = 'RUNNABLE';
-- The next due time (an idle worker's sleep) is the first entry here that heads its group.
CREATE INDEX jobs_runnable_due ON jobs (not_before) WHERE state = 'RUNNABLE';
