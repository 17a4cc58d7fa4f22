-- A win's id is made from its outcome key (the first 64 bits of the key's SHA-256, see
-- `score::win_id`), so the primary key already keeps an outcome from being credited twice, and
-- every lookup by outcome now reads the win by that id and compares the key it stored. The unique
-- index on the key itself was the largest of scoring's (long text keys at random places of its
-- b-tree, a page written for every win) and nothing needed it any more. The column stays: it is
-- what a lookup compares.
ALTER TABLE wins DROP CONSTRAINT IF EXISTS wins_outcome_key_key;
