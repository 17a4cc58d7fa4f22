-- Spotlight's `ledger` repeated what its `wins` rows already say: a 'counted' line at the time the
-- win's row was written (`counted_at`), a 'revoked' line at the time its row was taken out
-- (`revoked_at`, with `status_reason`). Nothing read it: `herald ledger rebuild` recomputes the
-- figures from the wins still counted, and a win's history of credit, confirmation and withdrawal
-- is scoring's ledger. Its line for every win counted, with a sequence number, was two of the
-- thirty log records a backfilled win wrote on PostgreSQL (BENCHMARKS.md, forty-second sitting).
-- The wins are the ledger from here on.
DROP TABLE IF EXISTS ledger;
