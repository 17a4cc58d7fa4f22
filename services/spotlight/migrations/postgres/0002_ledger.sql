-- Revocable credit (GUIDE §5): every figure is kept in whole units (cents, thousandths of an hour,
-- whole people), so taking a withdrawn win out restores every total exactly, and the figures can
-- be rebuilt from the wins counted and compared with the live ones.

-- 'counted' wins are in every rollup; 'revoked' ones were taken out again (or arrived withdrawn,
-- so a late confirmation is never counted).
ALTER TABLE wins ADD COLUMN status TEXT NOT NULL DEFAULT 'counted';
ALTER TABLE wins ADD COLUMN revoked_at BIGINT;
ALTER TABLE wins ADD COLUMN status_reason TEXT;

CREATE TABLE rollups_exact (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    scope        TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    value_cents  BIGINT NOT NULL,
    hours_milli  BIGINT NOT NULL,
    wins         BIGINT NOT NULL,
    PRIMARY KEY (period, period_start, scope, subject_id)
);
INSERT INTO rollups_exact (period, period_start, scope, subject_id, value_cents, hours_milli, wins)
SELECT period, period_start, scope, subject_id, CAST(ROUND(value * 100) AS BIGINT),
       CAST(ROUND(hours * 1000) AS BIGINT), wins
FROM rollups;
DROP TABLE rollups;
ALTER TABLE rollups_exact RENAME TO rollups;
CREATE INDEX rollups_ranked ON rollups (period, period_start, scope, value_cents DESC);

CREATE TABLE totals_exact (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    label        TEXT NOT NULL,
    value_cents  BIGINT NOT NULL,
    hours_milli  BIGINT NOT NULL,
    people       BIGINT NOT NULL,
    wins         BIGINT NOT NULL,
    PRIMARY KEY (period, period_start, label)
);
INSERT INTO totals_exact (period, period_start, label, value_cents, hours_milli, people, wins)
SELECT period, period_start, label, CAST(ROUND(value * 100) AS BIGINT), CAST(ROUND(hours * 1000) AS BIGINT),
       CAST(ROUND(users) AS BIGINT), wins
FROM totals;
DROP TABLE totals;
ALTER TABLE totals_exact RENAME TO totals;

-- A correction names the announcement it corrects; it has no win of its own.
ALTER TABLE announcements ADD COLUMN corrects TEXT;

-- Append-only: every win counted and every win taken out again, in order.
CREATE TABLE ledger (
    seq BIGSERIAL PRIMARY KEY,
    win_id TEXT NOT NULL,
    entry  TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX ledger_by_win ON ledger (win_id, seq);
