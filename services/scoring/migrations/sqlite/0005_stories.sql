-- What scoring keeps beside wins: requesters' praise (attached to the win of the ticket it rates,
-- whichever arrives first) and the deliveries and merges counted for delivery metrics.

CREATE TABLE praise (
    event_id      TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    record_number TEXT NOT NULL,
    quote         TEXT NOT NULL,
    requester     TEXT NOT NULL,
    score         TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX praise_by_record ON praise (source, record_number, at);

CREATE TABLE delivery_metrics (
    event_id      TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    service       TEXT,
    repository    TEXT,
    at            INTEGER NOT NULL,
    environment   TEXT,
    production    INTEGER NOT NULL,
    linked_change TEXT,
    automated     INTEGER NOT NULL
);
CREATE INDEX delivery_metrics_by_time ON delivery_metrics (kind, at);
