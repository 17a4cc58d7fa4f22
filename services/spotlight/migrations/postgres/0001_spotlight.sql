-- Times are epoch milliseconds (BIGINT) and dates ISO text, the same on PostgreSQL and SQLite.

-- Every win spotlight has counted: the idempotency record for the rollups.
CREATE TABLE wins (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    business_service TEXT,
    team             TEXT,
    label            TEXT NOT NULL,
    amount           DOUBLE PRECISION NOT NULL,
    hours            DOUBLE PRECISION NOT NULL,
    users            DOUBLE PRECISION NOT NULL,
    headline         TEXT NOT NULL,
    payload          BYTEA NOT NULL,
    counted_at       BIGINT NOT NULL
);
CREATE INDEX wins_by_time ON wins (occurred_at DESC);

-- Value per person, team and business service, per week and month (local dates, YYYY-MM-DD).
CREATE TABLE rollups (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    scope        TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    hours        DOUBLE PRECISION NOT NULL,
    wins         BIGINT NOT NULL,
    PRIMARY KEY (period, period_start, scope, subject_id)
);
CREATE INDEX rollups_ranked ON rollups (period, period_start, scope, value DESC);

-- Totals per period and value label.
CREATE TABLE totals (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    label        TEXT NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    hours        DOUBLE PRECISION NOT NULL,
    users        DOUBLE PRECISION NOT NULL,
    wins         BIGINT NOT NULL,
    PRIMARY KEY (period, period_start, label)
);

-- Announcements decided here, kept byte for byte for re-publishing.
CREATE TABLE announcements (
    id         TEXT PRIMARY KEY,
    win_id     TEXT UNIQUE,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    payload    BYTEA NOT NULL
);
