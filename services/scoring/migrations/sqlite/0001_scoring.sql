-- Times are epoch milliseconds (INTEGER), the same on PostgreSQL and SQLite.

-- Every event scoring has seen, with what became of it: the idempotency record for redelivery.
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    record_number TEXT NOT NULL,
    occurred_at   INTEGER,
    scored_at     INTEGER NOT NULL,
    -- 'win' (it produced win_id), 'same_outcome' (another event already credited this outcome,
    -- win_id names that win) or 'no_value' (note says why).
    outcome       TEXT NOT NULL,
    win_id        TEXT,
    note          TEXT
);
CREATE INDEX events_by_win ON events (win_id);

-- One row per credited outcome. The published Win is kept byte for byte for re-publishing.
CREATE TABLE wins (
    id               TEXT PRIMARY KEY,
    outcome_key      TEXT NOT NULL UNIQUE,
    event_id         TEXT NOT NULL,
    source           TEXT NOT NULL,
    kind             TEXT NOT NULL,
    record_number    TEXT NOT NULL,
    occurred_at      INTEGER,
    business_service TEXT,
    team             TEXT,
    label            TEXT NOT NULL,
    amount           REAL NOT NULL,
    currency         TEXT NOT NULL,
    hours            REAL NOT NULL,
    headline         TEXT NOT NULL,
    payload          BLOB NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE credits (
    win_id     TEXT NOT NULL REFERENCES wins (id),
    subject    TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    role       TEXT NOT NULL,
    share      REAL NOT NULL,
    amount     REAL NOT NULL,
    PRIMARY KEY (win_id, subject, subject_id)
);
CREATE INDEX credits_by_subject ON credits (subject, subject_id);
