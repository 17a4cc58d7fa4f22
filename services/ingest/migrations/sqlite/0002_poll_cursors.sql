-- Where the ServiceNow Table API poller got to, per instance and table: the sys_updated_on (epoch
-- milliseconds, one-second resolution as ServiceNow keeps it) and sys_id of the last row handled.
CREATE TABLE poll_cursors (
    instance    TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    updated_on  INTEGER NOT NULL,
    sys_id      TEXT NOT NULL,
    saved_at    INTEGER NOT NULL,
    PRIMARY KEY (instance, table_name)
);
