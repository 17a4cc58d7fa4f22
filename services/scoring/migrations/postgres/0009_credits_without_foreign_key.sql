-- A credit row is written only in the transaction that inserts its win, from the wins that
-- insert returned, and no win is ever deleted. The foreign key checked that again for every
-- credit with a row lock on the win: at saturation its check was PostgreSQL's most frequent
-- statement (five a win) and the largest share of its time.
ALTER TABLE credits DROP CONSTRAINT IF EXISTS credits_win_id_fkey;
