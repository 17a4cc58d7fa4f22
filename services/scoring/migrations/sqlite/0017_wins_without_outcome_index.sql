-- A win's id is made from its outcome key (the first 64 bits of the key's SHA-256, see
-- `score::win_id`), so the primary key already keeps an outcome from being credited twice, and
-- every lookup by outcome now reads the win by that id and compares the key it stored. The unique
-- index on the key itself was the largest of scoring's (long text keys at random places of its
-- b-tree, a page written for every win) and nothing needed it any more. The column stays: it is
-- what a lookup compares.
-- SQLite cannot drop a column's UNIQUE: the table is rebuilt without it, its rows in their order.
CREATE TABLE wins_kept (
    id                 TEXT PRIMARY KEY,
    outcome_key        TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    source             TEXT NOT NULL,
    kind               TEXT NOT NULL,
    record_number      TEXT NOT NULL,
    occurred_at        INTEGER,
    business_service   TEXT,
    team               TEXT,
    label              TEXT NOT NULL,
    amount             REAL NOT NULL,
    currency           TEXT NOT NULL,
    hours              REAL NOT NULL,
    headline           TEXT NOT NULL,
    payload            BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'confirmed',
    outcome_at         INTEGER,
    confirm_at         INTEGER,
    revocable_until    INTEGER,
    configuration_item TEXT,
    status_reason      TEXT,
    status_at          INTEGER
);
INSERT INTO wins_kept (id, outcome_key, event_id, source, kind, record_number, occurred_at,
                       business_service, team, label, amount, currency, hours, headline, payload,
                       created_at, status, outcome_at, confirm_at, revocable_until,
                       configuration_item, status_reason, status_at)
    SELECT id, outcome_key, event_id, source, kind, record_number, occurred_at, business_service,
           team, label, amount, currency, hours, headline, payload, created_at, status, outcome_at,
           confirm_at, revocable_until, configuration_item, status_reason, status_at
    FROM wins ORDER BY rowid;
DROP TABLE wins;
ALTER TABLE wins_kept RENAME TO wins;
CREATE INDEX wins_by_record ON wins (record_number);
CREATE INDEX wins_due ON wins (confirm_at) WHERE status = 'provisional';
CREATE INDEX wins_open_by_service ON wins (business_service, revocable_until)
    WHERE kind = 'change_implemented';
CREATE INDEX wins_open_by_ci ON wins (configuration_item, revocable_until)
    WHERE kind = 'change_implemented';
