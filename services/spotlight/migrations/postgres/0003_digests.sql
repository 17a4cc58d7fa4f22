-- Each digest is built once, by the replica that claims it: the row is the claim (its id is the
-- digest's announcement id), the lease lets another replica take over when the claimer died
-- before publishing, and 'published' makes a restart or a second replica skip it.
CREATE TABLE digests (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    period_start TEXT NOT NULL,
    status       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    lease_until  BIGINT NOT NULL,
    payload      BYTEA,
    created_at   BIGINT NOT NULL,
    published_at BIGINT
);
