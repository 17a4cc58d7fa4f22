-- What each counted (or withdrawn) win adds to the rollups and totals, appended by the lanes that
-- count wins and folded into the shared rows by one writer. Every win adds to the same week's and
-- month's rows (its label's totals, its team's and service's rollups), so lanes updating those rows
-- in their own transactions waited on each other's row locks; appending takes none. No index:
-- the rows are only ever read all at once, by the fold that deletes them.
CREATE TABLE rollup_deltas (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    scope        TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    value_cents  BIGINT NOT NULL,
    hours_milli  BIGINT NOT NULL,
    wins         BIGINT NOT NULL
);
CREATE TABLE total_deltas (
    period       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    label        TEXT NOT NULL,
    value_cents  BIGINT NOT NULL,
    hours_milli  BIGINT NOT NULL,
    people       BIGINT NOT NULL,
    wins         BIGINT NOT NULL
);
