-- Verified outcomes (GUIDE §5): a win's credit is provisional until its hold-back window has passed
-- with no reopen, rollback or related incident; a signal inside the window revokes it, whenever and
-- in whatever order it arrives.

-- Where each win is. Wins recorded before verification existed were published at once: confirmed.
ALTER TABLE wins ADD COLUMN status TEXT NOT NULL DEFAULT 'confirmed';
-- The outcome's own time (resolved_at, else occurred_at), the end of the hold-back and of the
-- revocation window.
ALTER TABLE wins ADD COLUMN outcome_at BIGINT;
ALTER TABLE wins ADD COLUMN confirm_at BIGINT;
ALTER TABLE wins ADD COLUMN revocable_until BIGINT;
ALTER TABLE wins ADD COLUMN configuration_item TEXT;
ALTER TABLE wins ADD COLUMN status_reason TEXT;
ALTER TABLE wins ADD COLUMN status_at BIGINT;
-- 1 while the current status still has to be published (an outbox: a crash between the commit and
-- the publish is repaired by the confirmer's next pass).
ALTER TABLE wins ADD COLUMN publish_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX wins_due ON wins (status, confirm_at);
CREATE INDEX wins_by_service ON wins (business_service, outcome_at);
CREATE INDEX wins_unpublished ON wins (publish_pending);

-- Events that can withdraw credit (reopens, failed changes, incidents on a service or CI, SLA
-- breaches), kept so an outcome that arrives after its own reopen is revoked on arrival.
CREATE TABLE signals (
    event_id           TEXT PRIMARY KEY,
    source             TEXT NOT NULL,
    kind               TEXT NOT NULL,
    record_number      TEXT NOT NULL,
    at                 BIGINT NOT NULL,
    business_service   TEXT,
    configuration_item TEXT
);
CREATE INDEX signals_by_record ON signals (source, record_number, at);
CREATE INDEX signals_by_service ON signals (business_service, at);
CREATE INDEX signals_by_ci ON signals (configuration_item, at);

-- Append-only: every credit (provisional), confirmation and revocation, in order.
CREATE TABLE ledger (
    seq BIGSERIAL PRIMARY KEY,
    win_id  TEXT NOT NULL,
    entry   TEXT NOT NULL,
    at      BIGINT NOT NULL,
    amount  DOUBLE PRECISION NOT NULL,
    reason  TEXT
);
CREATE INDEX ledger_by_win ON ledger (win_id, seq);

-- Scheduled work that one replica at a time does (confirming due wins).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
