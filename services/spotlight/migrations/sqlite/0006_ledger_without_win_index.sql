-- Nothing reads spotlight's ledger by win: `herald ledger rebuild` recomputes the figures from the
-- wins still counted, and a win's history is read from scoring's ledger. The index took an entry
-- for every win counted, at a random place of its b-tree (a page written, and written again at
-- the checkpoint, for each win in `herald up`), and was never read.
DROP INDEX IF EXISTS ledger_by_win;
