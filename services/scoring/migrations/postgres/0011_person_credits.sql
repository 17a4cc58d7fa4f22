-- Credits become what the daily cap reads, and nothing more. The table held five rows a win (the
-- team and every person, each share's role and fraction) with two indexes on random keys: at
-- saturation its insert was a third of PostgreSQL's statement time. Nothing read it but the cap's
-- per-person sum for a day and a problem's revaluation, and the win's payload keeps every share.
-- Now one row per person credited, keyed by person and outcome time, so the cap's sum is a range
-- of one index whatever the history holds (it read all of a person's credits before).
CREATE TABLE person_credits (
    person     TEXT NOT NULL,
    outcome_at BIGINT NOT NULL,
    win_id     TEXT NOT NULL,
    amount     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (person, outcome_at, win_id)
);
-- Wins recorded before outcome times were kept never counted towards a day, and still do not.
INSERT INTO person_credits (person, outcome_at, win_id, amount)
    SELECT c.subject_id, w.outcome_at, c.win_id, c.amount
    FROM credits c JOIN wins w ON w.id = c.win_id
    WHERE c.subject = 'person' AND w.outcome_at IS NOT NULL;
DROP TABLE credits;

-- The confirmer reads only provisional wins; a win confirmed on arrival (no hold-back) or
-- settled since has no business in its index.
DROP INDEX wins_due;
CREATE INDEX wins_due ON wins (confirm_at) WHERE status = 'provisional';
