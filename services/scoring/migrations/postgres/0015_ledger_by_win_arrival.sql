-- A win's ledger lines are found by when the win arrived, then by its id. The index on the id
-- alone (a hash) took each line at a random place of its b-tree: a page written for every line,
-- and written again at the checkpoint, for a few dozen bytes (about a quarter of what scoring
-- wrote for a win in `herald up`). A new win's lines now go to the end of the index, and a later
-- confirmation, which comes in the order wins arrived, beside the lines of wins that arrived
-- with it. `win_at` is the win's `created_at`, which is written once and never changed.
ALTER TABLE ledger ADD COLUMN win_at BIGINT;
UPDATE ledger SET win_at = (SELECT created_at FROM wins WHERE wins.id = ledger.win_id);
DROP INDEX IF EXISTS ledger_by_win;
CREATE INDEX ledger_by_win_arrival ON ledger (win_at, win_id, seq);
